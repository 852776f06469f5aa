//! HS256 bearer tokens signed with `ACTIVITY_GATEWAY_JWT_SECRET`.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// `permissions` may be a list or one comma-separated string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PermissionClaim {
    List(Vec<String>),
    Text(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Claims {
    pub fn permission_text(&self) -> String {
        match &self.permissions {
            None => String::new(),
            Some(PermissionClaim::Text(t)) => t.clone(),
            Some(PermissionClaim::List(l)) => l.join(","),
        }
    }
}

/// Three base64url segments: how a JWT differs from an API key secret.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

pub fn verify(token: &str, secret: &[u8]) -> AppResult<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
        .map(|data| data.claims)
        .map_err(|e| {
            tracing::debug!(reason = %e, "JWT refused");
            AppError::Unauthenticated
        })
}

/// Signs claims; used by the tests and by anyone scripting against a dev server.
pub fn sign(claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of serialisable claims cannot fail")
}
