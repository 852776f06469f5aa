//! API keys: creation, revocation, and authentication by one indexed lookup.

use std::collections::BTreeSet;

use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use entity::{api_key, org};

use crate::domain::api_key as secret;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::permission::{join_permissions, Permission, Role};
use crate::domain::principal::{grants, Principal};
use crate::domain::time::{now_micros, MICROS_PER_MINUTE};

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

/// The principal of a key secret, or 401 for an unknown or revoked key.
pub async fn authenticate(db: &DatabaseConnection, secret_text: &str) -> AppResult<Principal> {
    if !secret::is_well_formed(secret_text) {
        return Err(AppError::Unauthenticated);
    }
    let hash = secret::hash_secret(secret_text);
    let key = api_key::Entity::find()
        .filter(api_key::Column::SecretHash.eq(hash.as_str()))
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !secret::digests_match(&key.secret_hash, &hash) || key.revoked_at.is_some() {
        return Err(AppError::Unauthenticated);
    }
    touch(db, &key);
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
