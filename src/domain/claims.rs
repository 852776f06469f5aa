//! What a JWT says: its claims, checked by `auth::jwt` and read by the
//! services that turn them into a principal.

use serde::{Deserialize, Serialize};

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
