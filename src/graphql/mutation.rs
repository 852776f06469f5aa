use super::guard::Gate;
use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use sea_orm::DatabaseConnection;
use serde::Serialize;

use async_graphql::ID;

use super::error::{GqlResult, IntoGql};
use super::sessions::Problem;
use crate::auth::Principal;
use crate::domain::error::AppError;
use crate::domain::time::format_micros;
use crate::service::export::jobs::ExportRunner;
use crate::service::ingest;
use crate::service::live::LiveFeed;
use crate::service::problems::{self, NewProblem};
use crate::service::rollups;
use crate::views::{ExportOut, RefreshOut};

/// One event to ingest: the fields of `Activity` (only `action` is required).
/// `timestamp` defaults to now, `statusCode` to 200, `success` to
/// `statusCode < 400`; an `endpointId` implies its app and workspace.
#[derive(InputObject, Serialize, Default)]
pub struct ActivityInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augmentation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_completed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_stages: Option<i32>,
    /// Token counts by kind, e.g. `{"prompt_tokens": 120}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<Json<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
pub struct IngestResult {
    pub received: u64,
    pub stored: u64,
    /// Events whose id was already stored: not stored twice.
    pub duplicates: u64,
    pub ids: Vec<String>,
}

#[derive(SimpleObject)]
pub struct CreateProblemResult {
    pub problem_id: ID,
    pub success: bool,
    pub message: String,
    pub problem: Problem,
}

#[derive(SimpleObject)]
pub struct ResolveProblemResult {
    pub problem_id: ID,
    pub resolved: bool,
    pub updated_at: String,
    pub problem: Problem,
}

/// Every mutation: the activity API's and the log streams'.
#[derive(async_graphql::MergedObject, Default)]
pub struct MutationRoot(
    ActivityMutations,
    super::streams::StreamMutations,
    super::viewer_tokens::ViewerTokenMutations,
);

#[derive(Default)]
pub struct ActivityMutations;

#[Object]
impl ActivityMutations {
    /// Creates a problem in the caller's org, optionally about one of its
    /// activities or sessions. Needs `problem:create`.
    #[graphql(guard = "Gate(\"createProblem\")")]
    async fn create_problem(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "type")] kind: String,
        message: String,
        activity_id: Option<ID>,
        session_id: Option<ID>,
    ) -> GqlResult<CreateProblemResult> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let new = NewProblem {
            kind,
            message,
            activity_id: activity_id.map(|i| i.0),
            session_id: session_id.map(|i| i.0),
        };
        let created = problems::create(db, principal.grant().gql()?, new)
            .await
            .gql()?;
        Ok(CreateProblemResult {
            problem_id: ID(created.id.clone()),
            success: true,
            message: "Problem created".into(),
            problem: Problem(created),
        })
    }

    /// Resolves (the default) or unresolves a problem. Needs `problem:resolve`.
    #[graphql(guard = "Gate(\"resolveProblem\")")]
    async fn resolve_problem(
        &self,
        ctx: &Context<'_>,
        problem_id: ID,
        #[graphql(default = true)] resolved: bool,
    ) -> GqlResult<ResolveProblemResult> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let problem = problems::set_resolved(db, principal.grant().gql()?, &problem_id, resolved)
            .await
            .gql()?;
        Ok(ResolveProblemResult {
            problem_id: ID(problem.id.clone()),
            resolved: problem.resolved,
            updated_at: format_micros(problem.updated_at),
            problem: Problem(problem),
        })
    }

    /// Folds every new event into the hourly rollups. Needs `activity:refresh`.
    #[graphql(guard = "Gate(\"refreshActivity\")")]
    async fn refresh_activity(&self, ctx: &Context<'_>) -> GqlResult<RefreshOut> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(rollups::refresh_for(db, principal.grant().gql()?)
            .await
            .gql()?
            .into())
    }

    /// Queues an export of the caller's org and answers at once (`status`
    /// `pending`, `rowCount` 0). Follow it with `node(id: uploadId) { ... on
    /// Export { status progress rowCount } }`; once `done`, download the ZIP
    /// from `GET /api/v5/artifacts/activity/exports/{uploadId}`. Needs
    /// `activity:export`.
    #[graphql(guard = "Gate(\"exportActivity\")")]
    async fn export_activity(&self, ctx: &Context<'_>) -> GqlResult<ExportOut> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let job = ctx
            .data::<ExportRunner>()?
            .request(db, principal.grant().gql()?)
            .await
            .gql()?;
        Ok(ExportOut::from(&job))
    }

    /// Sets how long the org's raw events are kept: `days` from 1 to 36,500,
    /// or null for forever. A purge (every few minutes, on one gateway at a
    /// time) then deletes older events, in whole hours, once they are folded
    /// into the hourly rollups. Needs `activity:retention`.
    #[graphql(guard = "Gate(\"setRetention\")")]
    async fn set_retention(
        &self,
        ctx: &Context<'_>,
        days: Option<i64>,
    ) -> GqlResult<super::nodes::Retention> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            crate::service::retention::set_for(db, principal.grant().gql()?, days)
                .await
                .gql()?
                .into(),
        )
    }

    /// Stores a batch of at most 10,000 events in the caller's org, whole or
    /// not at all; answers after the commit. Needs `activity:write`.
    #[graphql(guard = "Gate(\"ingestActivity\")")]
    async fn ingest_activity(
        &self,
        ctx: &Context<'_>,
        events: Vec<ActivityInput>,
    ) -> GqlResult<IngestResult> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        // Through the same JSON items as REST, so both validate alike.
        let items = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(AppError::internal)
            .gql()?;
        let parsed = ingest::parse_items(items)
            .map_err(|p| AppError::Invalid(p).located(&["events"]))
            .gql()?;
        let report = ingest::ingest(
            db,
            ctx.data::<LiveFeed>()?,
            principal.grant().gql()?,
            parsed,
        )
        .await
        .map_err(|e| e.located(&["events"]))
        .gql()?;
        Ok(IngestResult {
            received: report.received,
            stored: report.stored,
            duplicates: report.duplicates,
            ids: report.ids,
        })
    }
}
