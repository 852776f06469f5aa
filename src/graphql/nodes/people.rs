//! Users, and the viewer: who is asking.

use async_graphql::{Context, Object, ID};
use sea_orm::DatabaseConnection;

use crate::auth::Principal;
use crate::domain::feed::Scope;
use crate::graphql::activity::{
    activity_connection, activity_summary, ActivityConnection, ActivityFilterInput, ActivitySummary,
};
use crate::graphql::error::{GqlResult, IntoGql};
use crate::graphql::guard::Gate;
use crate::service::directory;
use crate::views::SessionSearchOut;

use crate::graphql::sessions::{session_page, SessionFilterInput, SortOrder};

use super::Org;
use super::{page_cost, SUMMARY_COST};

pub struct User(pub entity::user::Model);

#[Object]
impl User {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `admin`, `member` or `viewer`.
    async fn role(&self) -> &str {
        &self.0.role
    }
    /// This user's sessions (the history of one profile). Needs `session:read`.
    #[graphql(
        guard = "Gate(\"User.sessions\")",
        complexity = "page_cost(page_size, child_complexity)"
    )]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        filter: Option<SessionFilterInput>,
        page: Option<i32>,
        page_size: Option<i32>,
        sort_order: Option<SortOrder>,
    ) -> GqlResult<SessionSearchOut> {
        session_page(ctx, Some(&self.0.id), filter, page, page_size, sort_order).await
    }
    #[graphql(
        guard = "Gate(\"User.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(ctx, Scope::User(self.0.id.clone()), first, after, filter).await
    }
    #[graphql(
        guard = "Gate(\"User.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::User(self.0.id.clone()), hours, filter).await
    }
}

/// The caller: who it is, what it may do, and where.
pub struct Viewer(pub Principal);

#[Object]
impl Viewer {
    /// The user id, or the key id for a key that belongs to no user.
    async fn principal_id(&self) -> ID {
        ID(self.0.principal_id.clone())
    }
    /// `user`, `api_key` or `mcp_agent`.
    async fn principal_type(&self) -> &str {
        self.0.principal_type
    }
    /// `api_key` or `jwt`.
    async fn token_type(&self) -> &str {
        self.0.token_type
    }
    async fn permissions(&self) -> Vec<&'static str> {
        self.0.permission_names()
    }
    #[graphql(guard = "Gate(\"Viewer.org\")")]
    async fn org(&self, ctx: &Context<'_>) -> GqlResult<Org> {
        let db = ctx.data::<DatabaseConnection>()?;
        directory::org_of(db, &self.0.org_id, &self.0.org_id)
            .await
            .map(Org)
            .gql()
    }
    #[graphql(guard = "Gate(\"Viewer.user\")")]
    async fn user(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        let Some(user_id) = &self.0.user_id else {
            return Ok(None);
        };
        let db = ctx.data::<DatabaseConnection>()?;
        directory::user_in_org(db, &self.0.org_id, user_id)
            .await
            .map(|u| Some(User(u)))
            .gql()
    }
}
