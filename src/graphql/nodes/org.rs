//! The org and what hangs off it: departments, retention, export jobs.

use async_graphql::{Context, Object, SimpleObject, ID};
use sea_orm::DatabaseConnection;

use crate::domain::feed::Scope;
use crate::graphql::activity::{
    activity_connection, activity_summary, ActivityConnection, ActivityFilterInput, ActivitySummary,
};
use crate::graphql::error::{GqlResult, IntoGql};
use crate::graphql::guard::Gate;
use crate::service::directory;
use crate::views::{SessionAnalyticsOut, SessionSearchOut};

use crate::graphql::sessions::{
    problem_connection, session_analytics, session_page, ProblemConnection, SessionFilterInput,
    SortOrder,
};

use super::{children, page_cost, Children, SUMMARY_COST};
use super::{User, Workspace};

pub struct Org(pub entity::org::Model);

#[Object]
impl Org {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// How long the org's raw events are kept. Feeds list events from
    /// `purgedBefore` on; summaries of earlier hours read the hourly rollups.
    #[graphql(guard = "Gate(\"Org.retention\")")]
    async fn retention(&self, ctx: &Context<'_>) -> GqlResult<Retention> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(crate::service::retention::of(db, &self.0.id)
            .await
            .gql()?
            .into())
    }
    /// The org's log streams, oldest first, with their health.
    #[graphql(guard = "Gate(\"Org.logStreams\")")]
    async fn log_streams(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<Vec<crate::graphql::streams::LogStream>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(crate::service::streams::list(db, &self.0.id)
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    /// The latest signed checkpoint of the org's verifiable log.
    #[graphql(guard = "Gate(\"Org.checkpoint\")")]
    async fn checkpoint(&self, ctx: &Context<'_>) -> GqlResult<crate::graphql::log::Checkpoint> {
        crate::graphql::log::checkpoint(ctx, &self.0.id).await
    }
    /// The consistency proof between two sizes of the org's tree:
    /// `1 <= from <= to <=` the latest checkpoint's size.
    #[graphql(guard = "Gate(\"Org.consistencyProof\")")]
    async fn consistency_proof(
        &self,
        ctx: &Context<'_>,
        from: i64,
        to: i64,
    ) -> GqlResult<crate::graphql::log::ConsistencyProof> {
        crate::graphql::log::consistency_proof(ctx, &self.0.id, from, to).await
    }
    #[graphql(
        guard = "Gate(\"Org.workspaces\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn workspaces(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<Workspace>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("workspaces|{id}"),
            first,
            after,
            async |db, org, after, n| directory::workspaces_of_org(db, org, &id, after, n).await,
            |m| m.id.clone(),
            Workspace,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Org.users\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<User>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("users|{id}"),
            first,
            after,
            async |db, org, after, n| directory::users_of_org(db, org, &id, after, n).await,
            |m| m.id.clone(),
            User,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Org.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(ctx, Scope::Org, first, after, filter).await
    }
    #[graphql(
        guard = "Gate(\"Org.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Org, hours, filter).await
    }
    /// Session analytics: the twin of `POST /api/v5/artifacts/activity/get`. Needs `session:read`.
    #[graphql(
        guard = "Gate(\"Org.sessionAnalytics\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn session_analytics(
        &self,
        ctx: &Context<'_>,
        filter: Option<SessionFilterInput>,
    ) -> GqlResult<SessionAnalyticsOut> {
        session_analytics(ctx, filter).await
    }
    /// The session history, by start (newest first unless `sortOrder: ASC`):
    /// the twin of `POST /api/v5/artifacts/activity/search`. Needs `session:read`.
    #[graphql(
        guard = "Gate(\"Org.sessions\")",
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
        session_page(ctx, None, filter, page, page_size, sort_order).await
    }
    /// The org's problems, newest first. Needs `activity:read`.
    #[graphql(
        guard = "Gate(\"Org.problems\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn problems(
        &self,
        ctx: &Context<'_>,
        resolved: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<ProblemConnection> {
        problem_connection(ctx, resolved, first, after).await
    }
}

/// A department of the org, as sessions are filtered by.
pub struct Department(pub entity::department::Model);

#[Object]
impl Department {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
}

/// An org's retention period.
#[derive(SimpleObject)]
pub struct Retention {
    /// Days the raw events are kept; null: forever.
    pub days: Option<i64>,
    /// Events before this time were purged (null: none ever were). Feeds
    /// list nothing older; summaries of earlier hours read the rollups.
    pub purged_before: Option<String>,
}

impl From<crate::service::retention::Retention> for Retention {
    fn from(r: crate::service::retention::Retention) -> Self {
        Self {
            days: r.days,
            purged_before: r.purged_before.map(crate::domain::time::format_micros),
        }
    }
}

/// An export job; once `done`, its ZIP is at
/// `GET /api/v5/artifacts/activity/exports/{id}`.
pub struct Export(pub entity::export::Model);

#[Object]
impl Export {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    /// `pending`, `running`, `done` or `failed`.
    async fn status(&self) -> &'static str {
        crate::service::export::jobs::JobStatus::of(&self.0).as_str()
    }
    /// Rows written over rows expected, from 0 to 1 (1 once done).
    async fn progress(&self) -> f64 {
        crate::service::export::jobs::progress(&self.0)
    }
    /// Rows written so far (published every few seconds while running).
    async fn rows_written(&self) -> i64 {
        self.0.rows_written
    }
    /// The rows the export will hold, known once it runs.
    async fn rows_expected(&self) -> i64 {
        self.0.rows_expected
    }
    /// The data rows of all its CSV files; 0 until done.
    async fn row_count(&self) -> i64 {
        self.0.row_count
    }
    async fn byte_size(&self) -> i64 {
        self.0.byte_size
    }
    /// Who made it: a user id, or a key id for a key of no user.
    async fn created_by(&self) -> Option<&str> {
        self.0.created_by.as_deref()
    }
    async fn created_at(&self) -> String {
        crate::domain::time::format_micros(self.0.created_at)
    }
    async fn finished_at(&self) -> Option<String> {
        self.0.finished_at.map(crate::domain::time::format_micros)
    }
    /// When it stops being downloadable.
    async fn expires_at(&self) -> Option<String> {
        self.0.expires_at.map(crate::domain::time::format_micros)
    }
}
