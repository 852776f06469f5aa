//! The server's own secrets, kept in the database so that every gateway on
//! one database agrees on them. Today: the key that seals cursors.

use std::sync::Arc;

use rand::TryRngCore as _;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::OnceCell;

use super::statement;
use crate::domain::error::{AppError, AppResult};
use crate::domain::feed::CursorKey;
use crate::domain::time::now_micros;

const CURSOR_KEY: &str = "cursor_key";

/// The cursor key: the configured secret when there is one, else the one
/// stored in the database, created (from the OS's CSPRNG) on first use. Two
/// gateways starting at once agree: the first insert wins, both read it.
pub async fn cursor_key(db: &DatabaseConnection, configured: Option<&str>) -> AppResult<CursorKey> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        return Ok(CursorKey::from_secret(secret));
    }
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut fresh)
        .map_err(AppError::internal)?;
    db.execute_raw(statement(
        db,
        "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        vec![CURSOR_KEY.into(), hex::encode(fresh).into(), now_micros().into()],
    ))
    .await?;
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT value FROM server_secrets WHERE name = ?",
            vec![CURSOR_KEY.into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal_msg("the cursor key was not stored"))?;
    let stored: String = row.try_get("", "value")?;
    let bytes: [u8; 32] = hex::decode(&stored)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AppError::internal_msg("the stored cursor key is malformed"))?;
    Ok(CursorKey::from_bytes(bytes))
}

/// The cursor key, read once per process and then kept in memory.
#[derive(Clone)]
pub struct CursorKeys {
    db: DatabaseConnection,
    configured: Option<String>,
    key: Arc<OnceCell<CursorKey>>,
}

impl CursorKeys {
    pub fn new(db: DatabaseConnection, configured: Option<String>) -> Self {
        Self {
            db,
            configured,
            key: Arc::default(),
        }
    }

    pub async fn get(&self) -> AppResult<&CursorKey> {
        self.key
            .get_or_try_init(|| cursor_key(&self.db, self.configured.as_deref()))
            .await
    }
}
