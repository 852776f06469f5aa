use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::auth::Principal;
use crate::error::{AppError, GqlResult, IntoGql};
use crate::service::ingest;
use crate::service::live::LiveFeed;

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
    pub status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages_completed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_stages: Option<i64>,
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

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Stores a batch of at most 10,000 events in the caller's org, whole or
    /// not at all; answers after the commit. Needs `activity:write`.
    async fn ingest_activity(
        &self,
        ctx: &Context<'_>,
        events: Vec<ActivityInput>,
    ) -> GqlResult<IngestResult> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        principal
            .require(crate::domain::permission::Permission::ActivityWrite)
            .gql()?;
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
        let report = ingest::ingest(db, ctx.data::<LiveFeed>()?, principal, parsed)
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
