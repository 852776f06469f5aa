//! HS256 bearer tokens signed with `ACTIVITY_GATEWAY_JWT_SECRET`.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};

use crate::domain::error::{AppError, AppResult};

pub use crate::domain::claims::{Claims, PermissionClaim};

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
