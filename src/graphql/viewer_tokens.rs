//! Viewer tokens in GraphQL: `createViewerToken` and `revokeViewerToken`
//! (`viewer:create`). Thin: every check is the service's.

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use sea_orm::DatabaseConnection;

use super::activity::ActivityFilterInput;
use super::error::{GqlResult, IntoGql};
use super::guard::Gate;
use crate::auth::Principal;
use crate::domain::error::AppError;
use crate::domain::time::format_micros;
use crate::service::viewer_tokens;

/// A viewer token as asked for: read-only (`activity:read`), confined to
/// the given workspaces, user and filter, usable from the given origins.
#[derive(InputObject)]
pub struct ViewerTokenInput {
    /// Lifetime in seconds: 1 to 86,400 (default 900).
    pub ttl_seconds: Option<i64>,
    /// The web origins (`https://app.example.com`) whose pages may use the
    /// token; requests from any other origin are refused.
    pub allowed_origins: Vec<String>,
    /// Only these workspaces' events (any when absent).
    pub workspace_ids: Option<Vec<ID>>,
    /// Only this user's events.
    pub user_id: Option<ID>,
    /// A fixed feed filter the viewer can narrow but never widen.
    pub filter: Option<ActivityFilterInput>,
    /// `activity:export` too: exports of the events the token may read.
    #[graphql(default = false)]
    pub can_export: bool,
}

/// A viewer token made: `token` is shown once, here.
#[derive(SimpleObject)]
pub struct ViewerToken {
    pub id: ID,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
}

#[derive(Default)]
pub struct ViewerTokenMutations;

#[Object]
impl ViewerTokenMutations {
    /// Makes a short-lived, read-only token for one of the org's customers.
    /// Needs `viewer:create`.
    #[graphql(guard = "Gate(\"createViewerToken\")")]
    async fn create_viewer_token(
        &self,
        ctx: &Context<'_>,
        input: ViewerTokenInput,
    ) -> GqlResult<ViewerToken> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let mut problems = Vec::new();
        let filter = ActivityFilterInput::read(input.filter, &mut problems);
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems).located(&["input"])).gql();
        }
        let new = viewer_tokens::NewViewerToken {
            ttl_seconds: input.ttl_seconds,
            allowed_origins: input.allowed_origins,
            workspace_ids: input
                .workspace_ids
                .unwrap_or_default()
                .into_iter()
                .map(|id| id.0)
                .collect(),
            user_id: input.user_id.map(|id| id.0),
            filter,
            can_export: input.can_export,
        };
        let made = viewer_tokens::create(db, principal.grant().gql()?, new, &["input"])
            .await
            .gql()?;
        Ok(ViewerToken {
            id: ID(made.id),
            token: made.token,
            expires_at: format_micros(made.expires_at),
        })
    }

    /// Revokes a viewer token of the org (every replica refuses it within
    /// the credential cache's window). Needs `viewer:create`.
    #[graphql(guard = "Gate(\"revokeViewerToken\")")]
    async fn revoke_viewer_token(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        viewer_tokens::revoke(db, principal.grant().gql()?, &id)
            .await
            .gql()?;
        Ok(true)
    }
}
