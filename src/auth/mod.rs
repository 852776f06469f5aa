//! Credentials and principals. A request's credential is resolved once, in
//! [`resolve`], into a [`Principal`] that GraphQL and REST share.

pub mod api_key;
pub mod grant;
pub mod jwt;

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use sea_orm::DatabaseConnection;

use crate::domain::permission::{Permission, Role};
use crate::error::{AppError, AppResult};
use crate::service;

/// Who is calling, within which org, with which permissions.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org_id: String,
    /// `api_key`, `user` or `mcp_agent`.
    pub principal_type: &'static str,
    /// The user when there is one, else the key itself.
    pub principal_id: String,
    pub user_id: Option<String>,
    /// The key id (`key_…`) or, for a JWT, its `jti` when present.
    pub token_id: Option<String>,
    /// `api_key` or `jwt`.
    pub token_type: &'static str,
    pub permissions: BTreeSet<Permission>,
    /// The `X-MCP` header: the call comes from an AI agent through MCP.
    pub mcp_client: Option<String>,
}

impl Principal {
    /// Proof of a permission, or the 403 that names it.
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.permissions.contains(&permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                required_permission: permission.as_str(),
            })
        }
    }

    pub fn permission_names(&self) -> Vec<&'static str> {
        self.permissions.iter().map(|p| p.as_str()).collect()
    }
}

/// The shape of a credential before it is checked.
enum Credential<'a> {
    ApiKey(&'a str),
    Jwt(&'a str),
}

/// Reads the credential headers. Two credentials that disagree are refused, so
/// nobody can wonder which one was used.
fn credential(headers: &HeaderMap) -> AppResult<Credential<'_>> {
    let header = |name: &str| -> AppResult<Option<&str>> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim()))
                .map_err(|_| AppError::Unauthenticated),
        }
    };
    let api_key = header("x-api-key")?.filter(|s| !s.is_empty());
    let bearer = match header("authorization")? {
        None => None,
        Some(value) => {
            let (scheme, token) = value.split_once(' ').ok_or(AppError::Unauthenticated)?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(AppError::Unauthenticated);
            }
            Some(token.trim())
        }
    };
    match (api_key, bearer) {
        (Some(a), Some(b)) if a != b => Err(AppError::Unauthenticated),
        (Some(a), _) => Ok(Credential::ApiKey(a)),
        (None, Some(b)) if jwt::looks_like_jwt(b) => Ok(Credential::Jwt(b)),
        (None, Some(b)) => Ok(Credential::ApiKey(b)),
        (None, None) => Err(AppError::Unauthenticated),
    }
}

/// Whether the headers carry a credential at all (valid or not).
pub fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key("x-api-key") || headers.contains_key(axum::http::header::AUTHORIZATION)
}

/// Resolves the request's credential into a principal, or 401.
pub async fn resolve(
    db: &DatabaseConnection,
    jwt_secret: Option<&[u8]>,
    headers: &HeaderMap,
) -> AppResult<Principal> {
    let mcp_client = headers
        .get("x-mcp")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect::<String>());
    let mut principal = match credential(headers)? {
        Credential::ApiKey(secret) => service::keys::authenticate(db, secret).await?,
        Credential::Jwt(token) => {
            let claims = jwt::verify(token, jwt_secret.ok_or(AppError::Unauthenticated)?)?;
            service::directory::principal_for_jwt(db, claims).await?
        }
    };
    if mcp_client.is_some() {
        principal.principal_type = "mcp_agent";
        principal.mcp_client = mcp_client;
    }
    Ok(principal)
}

/// The permissions a key or token grants: explicit permissions win over a role.
pub fn grants(role: Option<&str>, permissions: &BTreeSet<Permission>) -> BTreeSet<Permission> {
    if !permissions.is_empty() {
        return permissions.clone();
    }
    role.and_then(Role::parse)
        .map(Role::permissions)
        .unwrap_or_default()
}
