//! Viewer tokens: made by an org's backend (`viewer:create`) for one of its
//! customers, read-only, short-lived, confined to part of the org's activity
//! and to the origins allowed to use them from a browser. Each is a row of
//! `api_keys` with an end and a confinement, so it is resolved, cached,
//! revoked and refused like any key, on every replica.

use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};

use entity::api_key;

use crate::domain::api_key as secret;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::feed::ActivityFilter;
use crate::domain::grant::{cap, Grant};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::permission::{join_permissions, Permission};
use crate::domain::time::now_micros;
use crate::domain::viewer::{
    normalized_origin, Confinement, ViewerToken, DEFAULT_TTL_SECONDS, MAX_ORIGINS, MAX_TTL_SECONDS,
    MAX_WORKSPACES, MIN_TTL_SECONDS,
};

/// A viewer token as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewViewerToken {
    pub ttl_seconds: Option<i64>,
    pub allowed_origins: Vec<String>,
    pub workspace_ids: Vec<String>,
    pub user_id: Option<String>,
    pub filter: ActivityFilter,
    /// `activity:export` too: exports of the events it may read.
    pub can_export: bool,
}

/// A token made: its secret is shown once, here, and never stored.
#[derive(Debug, Clone)]
pub struct CreatedViewerToken {
    pub id: String,
    pub token: String,
    /// Microseconds; the token is refused from this instant on.
    pub expires_at: i64,
}

/// Makes a viewer token in the caller's org. Problems of the input are
/// answered at once, located under `at` (`["input"]` in GraphQL, `["body"]`
/// in REST); a workspace or user that is not the org's is a 404.
pub async fn create(
    db: &DatabaseConnection,
    grant: Grant<'_, cap::ViewerCreate>,
    new: NewViewerToken,
    at: &[&str],
) -> AppResult<CreatedViewerToken> {
    fn under<'a>(at: &[&'a str], field: &'a str) -> Vec<&'a str> {
        at.iter().copied().chain([field]).collect()
    }
    let loc = |field: &'static str| under(at, field);
    let mut problems = Vec::new();
    let ttl = new.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl) {
        problems.push(
            InvalidInput::new(
                &loc("ttl_seconds"),
                "ttl_range",
                format!("ttl_seconds should be from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}"),
                ttl,
            )
            .with_ctx(serde_json::json!({ "ge": MIN_TTL_SECONDS, "le": MAX_TTL_SECONDS })),
        );
    }
    let mut origins = Vec::new();
    for text in &new.allowed_origins {
        match normalized_origin(text) {
            Some(origin) if !origins.contains(&origin) => origins.push(origin),
            Some(_) => {}
            None => problems.push(InvalidInput::new(
                &loc("allowed_origins"),
                "origin_invalid",
                "an allowed origin should be http(s)://host[:port], without a path",
                text.as_str(),
            )),
        }
    }
    if origins.len() > MAX_ORIGINS {
        problems.push(
            InvalidInput::new(
                &loc("allowed_origins"),
                "too_long",
                format!("at most {MAX_ORIGINS} allowed origins"),
                origins.len(),
            )
            .with_ctx(serde_json::json!({ "max_length": MAX_ORIGINS })),
        );
    }
    if new.workspace_ids.len() > MAX_WORKSPACES {
        problems.push(
            InvalidInput::new(
                &loc("workspace_ids"),
                "too_long",
                format!("at most {MAX_WORKSPACES} workspaces"),
                new.workspace_ids.len(),
            )
            .with_ctx(serde_json::json!({ "max_length": MAX_WORKSPACES })),
        );
    }
    problems.extend(new.filter.validate(&loc("filter")));
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let org_id = grant.org_id.as_str();
    let mut workspace_ids = Vec::new();
    for workspace in &new.workspace_ids {
        super::directory::workspace_in_org(db, org_id, workspace).await?;
        if !workspace_ids.contains(workspace) {
            workspace_ids.push(workspace.clone());
        }
    }
    if let Some(user) = &new.user_id {
        super::directory::user_in_org(db, org_id, user).await?;
    }
    // A token may only ever narrow what its maker reads.
    let confinement = Confinement {
        workspace_ids,
        user_id: new.user_id,
        filter: grant.confine(new.filter),
    };
    let viewer = ViewerToken {
        confinement: Arc::new(confinement),
        allowed_origins: origins,
    };
    let mut permissions = std::collections::BTreeSet::from([Permission::ActivityRead]);
    if new.can_export {
        permissions.insert(Permission::ActivityExport);
    }
    let token = secret::generate_secret();
    let id = new_id(IdKind::Key);
    let now = now_micros();
    let expires_at = now + ttl * 1_000_000;
    let txn = db.begin().await?;
    api_key::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(org_id.to_owned()),
        user_id: Set(None),
        name: Set(format!("viewer token by {}", grant.principal_id)),
        prefix: Set(secret::display_prefix(&token)),
        secret_hash: Set(secret::hash_secret(&token)),
        role: Set(None),
        permissions: Set(join_permissions(&permissions)),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
        expires_at: Set(Some(expires_at)),
        viewer: Set(Some(
            serde_json::to_string(&viewer).map_err(AppError::internal)?,
        )),
    }
    .insert(&txn)
    .await?;
    for origin in &viewer.allowed_origins {
        txn.execute_raw(super::statement(
            &txn,
            "INSERT INTO viewer_origins (origin, token_id, expires_at) VALUES (?, ?, ?)",
            vec![
                origin.as_str().into(),
                id.as_str().into(),
                expires_at.into(),
            ],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(CreatedViewerToken {
        id,
        token,
        expires_at,
    })
}

/// Revokes a viewer token of the caller's org: refused by every replica
/// within the credential cache's window. Revoking twice keeps the first
/// time; an id that is not a viewer token of the org is a 404.
pub async fn revoke(
    db: &DatabaseConnection,
    grant: Grant<'_, cap::ViewerCreate>,
    id: &str,
) -> AppResult<()> {
    api_key::Entity::find_by_id(id.to_owned())
        .filter(api_key::Column::OrgId.eq(grant.org_id.as_str()))
        .filter(api_key::Column::Viewer.is_not_null())
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("viewer_token", id))?;
    // It is a key of the org: revoked as keys are.
    super::keys::revoke(db, id).await
}

/// The origins that may frame the viewer for the viewer token `id` (its
/// public id, not its secret): its allowed origins while it is live, else
/// none. What a page's `frame-ancestors` is built from.
pub async fn frame_origins(db: &DatabaseConnection, id: &str) -> AppResult<Vec<String>> {
    let token = api_key::Entity::find_by_id(id.to_owned())
        .filter(api_key::Column::Viewer.is_not_null())
        .filter(api_key::Column::RevokedAt.is_null())
        .filter(api_key::Column::ExpiresAt.gt(now_micros()))
        .one(db)
        .await?;
    let Some(viewer) = token.and_then(|t| t.viewer) else {
        return Ok(Vec::new());
    };
    let viewer: ViewerToken = serde_json::from_str(&viewer).map_err(AppError::internal)?;
    Ok(viewer.allowed_origins)
}

/// Whether a live viewer token allows `origin`: what a CORS preflight, which
/// carries no credential, is answered by. One indexed lookup.
pub async fn origin_is_allowed(db: &DatabaseConnection, origin: &str) -> AppResult<bool> {
    let row = db
        .query_one_raw(super::statement(
            db,
            "SELECT 1 FROM viewer_origins o JOIN api_keys k ON k.id = o.token_id \
             WHERE o.origin = ? AND o.expires_at > ? AND k.revoked_at IS NULL LIMIT 1",
            vec![origin.into(), now_micros().into()],
        ))
        .await?;
    Ok(row.is_some())
}

/// Drops the origins of expired viewer tokens (what a preflight reads), so
/// that the table holds live tokens only. Answers how many went.
pub async fn sweep_expired_origins(db: &DatabaseConnection) -> AppResult<u64> {
    let swept = db
        .execute_raw(super::statement(
            db,
            "DELETE FROM viewer_origins WHERE expires_at <= ?",
            vec![now_micros().into()],
        ))
        .await?;
    Ok(swept.rows_affected())
}
