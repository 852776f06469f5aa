//! API keys: creation, revocation, and authentication, from an in-process
//! cache of resolved keys that the credential epoch keeps honest.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};

use entity::{api_key, org};

use crate::domain::api_key as secret;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::permission::{join_permissions, Permission, Role};
use crate::domain::principal::{grants, Principal};
use crate::domain::time::{now_micros, MICROS_PER_MINUTE};
use crate::domain::viewer::ViewerToken;

pub struct NewKey {
    pub org_id: String,
    pub role: Option<Role>,
    pub permissions: BTreeSet<Permission>,
    pub user_id: Option<String>,
    pub name: Option<String>,
}

pub struct CreatedKey {
    pub id: String,
    pub prefix: String,
    /// Shown once, to whoever created the key; only its hash is stored.
    pub secret: String,
}

pub async fn create(db: &DatabaseConnection, new: NewKey) -> AppResult<CreatedKey> {
    if org::Entity::find_by_id(new.org_id.clone())
        .one(db)
        .await?
        .is_none()
    {
        return Err(AppError::not_found("org", new.org_id));
    }
    if let Some(user_id) = &new.user_id {
        crate::service::directory::user_in_org(db, &new.org_id, user_id).await?;
    }
    // A key with neither role nor permissions would grant nothing: default to viewer.
    let role = match (new.role, new.permissions.is_empty()) {
        (None, true) => Some(Role::Viewer),
        (role, _) => role,
    };
    let name = new.name.unwrap_or_else(|| "api key".to_owned());
    if name.chars().count() > 200 {
        return Err(AppError::invalid(
            InvalidInput::new(
                &["name"],
                "string_too_long",
                "String should have at most 200 characters",
                name,
            )
            .with_ctx(serde_json::json!({ "max_length": 200 })),
        ));
    }
    let secret_text = secret::generate_secret();
    let id = new_id(IdKind::Key);
    let prefix = secret::display_prefix(&secret_text);
    api_key::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(new.org_id),
        user_id: Set(new.user_id),
        name: Set(name),
        prefix: Set(prefix.clone()),
        secret_hash: Set(secret::hash_secret(&secret_text)),
        role: Set(role.map(|r| r.as_str().to_owned())),
        permissions: Set(join_permissions(&new.permissions)),
        created_at: Set(now_micros()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        expires_at: Set(None),
        viewer: Set(None),
    }
    .insert(db)
    .await?;
    Ok(CreatedKey {
        id,
        prefix,
        secret: secret_text,
    })
}

/// Revokes a key; revoking twice keeps the first revocation time.
pub async fn revoke(db: &DatabaseConnection, key_id: &str) -> AppResult<()> {
    let key = api_key::Entity::find_by_id(key_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("api_key", key_id))?;
    if key.revoked_at.is_none() {
        let mut active: api_key::ActiveModel = key.into();
        active.revoked_at = Set(Some(now_micros()));
        active.update(db).await?;
    }
    Ok(())
}

/// How often a gateway reads the credential epoch: a key revoked, deleted
/// or narrowed anywhere (another replica, the CLI, plain SQL) is refused by
/// every gateway within this time plus one read of the epoch.
pub const EPOCH_CHECK: Duration = Duration::from_millis(250);
/// Resolved keys kept per gateway; the least recently used go first.
const CACHED_KEYS: usize = 10_000;

/// Keys this gateway resolved, each tagged with the credential epoch read
/// before its row was. A key is served from here only while that epoch is
/// the latest one read, and the epoch is read at most every [`EPOCH_CHECK`],
/// so a request needs no query for its credential most of the time.
pub struct KeyCache {
    keys: Mutex<lru::LruCache<String, (i64, api_key::Model)>>,
    /// The latest epoch read, and when the read began.
    seen: Mutex<Option<(i64, Instant)>>,
    /// One read of the epoch at a time.
    reading: tokio::sync::Mutex<()>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::with_capacity(CACHED_KEYS)
    }
}

impl KeyCache {
    /// A cache of at most `keys` keys (at least one).
    pub fn with_capacity(keys: usize) -> Self {
        Self {
            keys: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(keys).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            seen: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh_epoch(&self) -> Option<i64> {
        let seen = super::unpoisoned(&self.seen);
        seen.filter(|(_, at)| at.elapsed() < EPOCH_CHECK)
            .map(|(epoch, _)| epoch)
    }

    /// The current credential epoch, read again when the last read is older
    /// than [`EPOCH_CHECK`]; a moved epoch empties the cache.
    async fn epoch(&self, db: &DatabaseConnection) -> AppResult<i64> {
        if let Some(epoch) = self.fresh_epoch() {
            return Ok(epoch);
        }
        let _reading = self.reading.lock().await;
        if let Some(epoch) = self.fresh_epoch() {
            return Ok(epoch);
        }
        let started = Instant::now();
        let row = db
            .query_one_raw(crate::service::statement(
                db,
                "SELECT epoch FROM credential_epoch WHERE id = 1",
                vec![],
            ))
            .await?
            .ok_or_else(|| AppError::internal_msg("the credential epoch row is missing"))?;
        let epoch: i64 = row.try_get_by_index(0)?;
        let mut seen = super::unpoisoned(&self.seen);
        if seen.is_none_or(|(last, _)| last != epoch) {
            super::unpoisoned(&self.keys).clear();
        }
        *seen = Some((epoch, started));
        Ok(epoch)
    }

    fn get(&self, hash: &str, epoch: i64) -> Option<api_key::Model> {
        let mut keys = super::unpoisoned(&self.keys);
        match keys.get(hash) {
            Some((tagged, key)) if *tagged == epoch => Some(key.clone()),
            _ => None,
        }
    }

    /// Keeps `key`, read after `epoch` was, unless the epoch moved since.
    fn put(&self, hash: String, epoch: i64, key: api_key::Model) {
        let seen = super::unpoisoned(&self.seen);
        if seen.is_some_and(|(latest, _)| latest == epoch) {
            super::unpoisoned(&self.keys).put(hash, (epoch, key));
        }
    }
}

/// The principal of a key secret, or 401 for an unknown or revoked key:
/// from `cache` while the credential epoch stands, else one indexed lookup.
pub async fn authenticate(
    db: &DatabaseConnection,
    cache: &KeyCache,
    secret_text: &str,
) -> AppResult<Principal> {
    if !secret::is_well_formed(secret_text) {
        return Err(AppError::Unauthenticated);
    }
    let hash = secret::hash_secret(secret_text);
    let epoch = cache.epoch(db).await?;
    let key = match cache.get(&hash, epoch) {
        Some(key) => key,
        None => {
            let key = api_key::Entity::find()
                .filter(api_key::Column::SecretHash.eq(hash.as_str()))
                .one(db)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            if key.revoked_at.is_none() {
                cache.put(hash.clone(), epoch, key.clone());
            }
            key
        }
    };
    if !secret::digests_match(&key.secret_hash, &hash)
        || key.revoked_at.is_some()
        || key.expires_at.is_some_and(|end| now_micros() >= end)
    {
        return Err(AppError::Unauthenticated);
    }
    touch(db, &key);
    if let Some(viewer) = &key.viewer {
        let token: ViewerToken = serde_json::from_str(viewer).map_err(AppError::internal)?;
        return Ok(Principal {
            org_id: key.org_id,
            principal_type: "viewer_token",
            principal_id: key.id.clone(),
            user_id: None,
            token_id: Some(key.id),
            token_type: "viewer_token",
            permissions: crate::domain::permission::parse_permissions(&key.permissions)
                .map_err(AppError::internal_msg)?,
            mcp_client: None,
            viewer_token: Some(std::sync::Arc::new(token)),
        });
    }
    let explicit = crate::domain::permission::parse_permissions(&key.permissions)
        .map_err(AppError::internal_msg)?;
    let permissions = grants(key.role.as_deref(), &explicit);
    Ok(Principal {
        org_id: key.org_id,
        principal_type: if key.user_id.is_some() {
            "user"
        } else {
            "api_key"
        },
        principal_id: key.user_id.clone().unwrap_or_else(|| key.id.clone()),
        user_id: key.user_id,
        token_id: Some(key.id),
        token_type: "api_key",
        permissions,
        mcp_client: None,
        viewer_token: None,
    })
}

/// When this process last tried to record a key's use. Kept in memory, not
/// read back from the row: while writes are slow the stored value lags, and
/// every request would otherwise start another blocked update.
static LAST_TOUCH: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, i64>>> =
    std::sync::LazyLock::new(Default::default);

/// Records `last_used_at` at most once a minute per key, off the request's path.
fn touch(db: &DatabaseConnection, key: &api_key::Model) {
    let now = now_micros();
    if key
        .last_used_at
        .is_some_and(|t| now - t < MICROS_PER_MINUTE)
    {
        return;
    }
    {
        let Ok(mut touched) = LAST_TOUCH.lock() else {
            return;
        };
        if touched
            .get(&key.id)
            .is_some_and(|t| now - t < MICROS_PER_MINUTE)
        {
            return;
        }
        touched.insert(key.id.clone(), now);
    }
    let db = db.clone();
    let id = key.id.clone();
    tokio::spawn(async move {
        let update = api_key::Entity::update_many()
            .col_expr(
                api_key::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_key::Column::Id.eq(id))
            .exec(&db)
            .await;
        if let Err(e) = update {
            tracing::debug!(error = %e, "could not record key use");
        }
    });
}
