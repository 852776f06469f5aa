//! Who is calling: the principal a credential resolves to, which GraphQL,
//! REST and the services share.

use std::collections::BTreeSet;

use crate::domain::error::{AppError, AppResult};
use crate::domain::permission::{Permission, Role};

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
    /// Set for a viewer token: what its reads are confined to, and where
    /// it may be used from.
    pub viewer_token: Option<std::sync::Arc<crate::domain::viewer::ViewerToken>>,
}

impl Principal {
    /// The operator at the command line, acting in `org_id` with `permissions`.
    pub fn operator(org_id: &str, permissions: BTreeSet<Permission>) -> Self {
        Self {
            org_id: org_id.to_owned(),
            principal_type: "operator",
            principal_id: "cli".into(),
            user_id: None,
            token_id: None,
            token_type: "cli",
            permissions,
            mcp_client: None,
            viewer_token: None,
        }
    }

    /// `filter` confined to what the caller may read: unchanged for keys
    /// and users, narrowed by a viewer token's confinement (which no input
    /// can widen: it is ANDed with whatever the caller asked).
    pub fn confine(
        &self,
        mut filter: crate::domain::feed::ActivityFilter,
    ) -> crate::domain::feed::ActivityFilter {
        filter.confined = self
            .viewer_token
            .as_ref()
            .map(|token| token.confinement.clone());
        filter
    }

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

/// The permissions a key or token grants: explicit permissions win over a role.
pub fn grants(role: Option<&str>, permissions: &BTreeSet<Permission>) -> BTreeSet<Permission> {
    if !permissions.is_empty() {
        return permissions.clone();
    }
    role.and_then(Role::parse)
        .map(Role::permissions)
        .unwrap_or_default()
}
