//! Credentials and principals. A request's credential is resolved once, in
//! [`resolve`], into a [`Principal`] that GraphQL and REST share.

pub mod jwt;

// The values this layer deals in live in `domain`, where services use them too.
pub use crate::domain::api_key;
pub use crate::domain::grant;
pub use crate::domain::principal::{grants, Principal};

use axum::http::HeaderMap;
use sea_orm::DatabaseConnection;

use crate::domain::error::{AppError, AppResult};
use crate::service;

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
    keys: &service::keys::KeyCache,
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
        Credential::ApiKey(secret) => service::keys::authenticate(db, keys, secret).await?,
        Credential::Jwt(token) => {
            let claims = jwt::verify(token, jwt_secret.ok_or(AppError::Unauthenticated)?)?;
            service::directory::principal_for_jwt(db, claims).await?
        }
    };
    if mcp_client.is_some() {
        principal.principal_type = "mcp_agent";
        principal.mcp_client = mcp_client;
    }
    if let Some(token) = &principal.viewer_token {
        if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !token.allows_origin(origin) && !same_origin(origin, headers) {
                return Err(AppError::OriginNotAllowed);
            }
        }
    }
    Ok(principal)
}

/// Whether a browser's `Origin` is the gateway itself (its own viewer page):
/// the origin's host and port are the request's `Host`.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    !host.is_empty()
        && origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}
