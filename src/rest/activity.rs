//! The 15 GET routes of `000_0fcf25ac362c8c00.txt`, with its parameters and
//! shapes exactly. Handlers name their target and parameters; the rest is shared.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::extract::Authorized;
use super::params::Params;
use crate::auth::Principal;
use crate::domain::error::AppResult;
use crate::domain::feed::{ActivityFilter, Cursor, Status};
use crate::domain::paging::{Hours, PageSize};
use crate::domain::time::{format_micros, now_micros};
use crate::service::scope::{check_exists, scope_of, Target};
use crate::service::{activity, ingest, summary};
use crate::state::AppState;
use crate::views::stored_json;

/// One event, field for field as the reference documents it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Activity)]
pub struct ActivityOut {
    pub id: String,
    pub timestamp: String,
    pub trace_id: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub app_id: Option<String>,
    pub principal_type: Option<String>,
    pub principal_id: Option<String>,
    pub token_id: Option<String>,
    pub token_type: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: String,
    pub status_code: i32,
    pub success: bool,
    pub error_code: Option<String>,
    pub duration_ms: i64,
    pub execution_id: Option<String>,
    pub augmentation_id: Option<String>,
    pub stages_completed: Option<i32>,
    pub total_stages: Option<i32>,
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub token_usage: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<entity::activity_event::Model> for ActivityOut {
    fn from(e: entity::activity_event::Model) -> Self {
        Self {
            timestamp: format_micros(e.ts),
            token_usage: stored_json(&e.token_usage),
            metadata: stored_json(&e.metadata),
            id: e.id,
            trace_id: e.trace_id,
            user_id: e.user_id,
            workspace_id: e.workspace_id,
            app_id: e.app_id,
            principal_type: e.principal_type,
            principal_id: e.principal_id,
            token_id: e.token_id,
            token_type: e.token_type,
            method: e.method,
            path: e.path,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            action: e.action,
            status_code: e.status_code,
            success: e.success,
            error_code: e.error_code,
            duration_ms: e.duration_ms,
            execution_id: e.execution_id,
            augmentation_id: e.augmentation_id,
            stages_completed: e.stages_completed,
            total_stages: e.total_stages,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivityList {
    pub total: u64,
    pub has_more: bool,
    pub next_cursor: Option<String>,
    pub activities: Vec<ActivityOut>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ActivitySummary)]
pub struct SummaryOut {
    pub total_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub avg_duration_ms: f64,
    pub total_tokens_used: i64,
    pub by_action: BTreeMap<String, i64>,
    pub by_resource: BTreeMap<String, i64>,
    pub start_time: String,
    pub end_time: String,
}

impl From<summary::Summary> for SummaryOut {
    fn from(s: summary::Summary) -> Self {
        Self {
            total_requests: s.totals.requests,
            successful_requests: s.totals.successes,
            failed_requests: s.totals.failures(),
            avg_duration_ms: s.totals.avg_duration_ms(),
            total_tokens_used: s.totals.tokens,
            by_action: s.by_action,
            by_resource: s.by_resource,
            start_time: format_micros(s.start),
            end_time: format_micros(s.end),
        }
    }
}

/// Which optional parameters a list route takes beyond the common ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    WorkspaceId,
    Search,
}

async fn list(
    state: &AppState,
    principal: &Principal,
    target: Target,
    query: Option<String>,
    extra: Extra,
) -> AppResult<Json<ActivityList>> {
    let mut params = Params::parse(query.as_deref());
    let mut filter = ActivityFilter {
        start_time: params.time("start_time"),
        end_time: params.time("end_time"),
        ..Default::default()
    };
    let limit = params
        .bounded("limit", PageSize::parse)
        .unwrap_or_default()
        .get();
    if extra == Extra::WorkspaceId {
        filter.workspace_id = params.string("workspace_id");
    }
    if extra == Extra::Search {
        filter.actions = params.string("action").into_iter().collect();
        filter.resource_types = params.string("resource_type").into_iter().collect();
        filter.user_ids = params.string("user_id").into_iter().collect();
        filter.status = params.choice("status", &["success", "error"]).map(|s| {
            if s == "success" {
                Status::Success
            } else {
                Status::Error
            }
        });
        filter.min_duration_ms = params.int("min_duration_ms", Some(0));
        filter.max_duration_ms = params.int("max_duration_ms", Some(0));
    }
    params.extend(filter.validate(&["query"]));
    let scope = scope_of(principal, &target);
    let org = principal.org_id.as_str();
    let key = state.cursors.get().await?;
    let cursor = match params.given("cursor") {
        None => None,
        Some(text) => match Cursor::decode(&text, key, org, &scope, &filter) {
            Ok(c) => Some(c),
            Err(e) => {
                params.report(e.to_input(&["query", "cursor"], &text));
                None
            }
        },
    };
    params.check()?;
    check_exists(&state.db, principal, &target).await?;
    let page = activity::page(&state.db, org, &scope, &filter, limit, cursor.as_ref()).await?;
    let total = activity::count(&state.db, org, &scope, &filter).await?;
    Ok(Json(ActivityList {
        total,
        has_more: page.has_more,
        next_cursor: page.next.map(|c| c.encode(key, org, &scope, &filter)),
        activities: page.events.into_iter().map(ActivityOut::from).collect(),
    }))
}

async fn summarize(
    state: &AppState,
    principal: &Principal,
    target: Target,
    query: Option<String>,
) -> AppResult<Json<SummaryOut>> {
    let mut params = Params::parse(query.as_deref());
    let hours = params.bounded("hours", Hours::parse);
    params.check()?;
    check_exists(&state.db, principal, &target).await?;
    let (start, end) = hours.unwrap_or_default().ending_at(now_micros());
    let scope = scope_of(principal, &target);
    let s = summary::summarize(
        &state.db,
        &principal.org_id,
        &scope,
        &ActivityFilter::default(),
        start,
        end,
    )
    .await?;
    Ok(Json(s.into()))
}

type Ctx = (State<AppState>, Authorized, RawQuery);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/activity",
            get(|(State(s), Authorized(p), RawQuery(q)): Ctx| async move {
                list(&s, &p, Target::Org, q, Extra::None).await
            })
            .post(ingest_activity),
        )
        .route(
            "/activity/summary",
            get(|(State(s), Authorized(p), RawQuery(q)): Ctx| async move {
                summarize(&s, &p, Target::Org, q).await
            }),
        )
        .route(
            "/workspaces/{workspace_id}/activity",
            get(workspace_activity),
        )
        .route(
            "/workspaces/{workspace_id}/activity/summary",
            get(workspace_summary),
        )
        .route("/users/{user_id}/activity", get(user_activity))
        .route("/users/{user_id}/activity/summary", get(user_summary))
        .route(
            "/workspaces/{workspace_id}/apps/{app_id}/activity",
            get(app_activity),
        )
        .route(
            "/workspaces/{workspace_id}/apps/{app_id}/endpoints/{endpoint_id}/activity",
            get(endpoint_activity),
        )
        .route(
            "/workspaces/{workspace_id}/apps/{app_id}/endpoints/{endpoint_id}/activity/summary",
            get(endpoint_summary),
        )
        .route(
            "/workspaces/{workspace_id}/augmentations/{augmentation_id}/activity",
            get(augmentation_activity),
        )
        .route(
            "/workspaces/{workspace_id}/activity/actions/{action}",
            get(action_activity),
        )
        .route(
            "/workspaces/{workspace_id}/resources/{resource_id}/activity",
            get(resource_activity),
        )
        .route(
            "/workspaces/{workspace_id}/activity/search",
            get(search_activity),
        )
        .route(
            "/me/activity",
            get(|(State(s), Authorized(p), RawQuery(q)): Ctx| async move {
                list(&s, &p, Target::Me, q, Extra::WorkspaceId).await
            }),
        )
        .route(
            "/me/activity/summary",
            get(|(State(s), Authorized(p), RawQuery(q)): Ctx| async move {
                summarize(&s, &p, Target::Me, q).await
            }),
        )
}

/// The answer to an ingest: how many events were received, stored, and
/// skipped as already stored, and every id of the batch in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = IngestResult)]
pub struct IngestOut {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub ids: Vec<String>,
}

impl From<ingest::IngestReport> for IngestOut {
    fn from(r: ingest::IngestReport) -> Self {
        Self {
            received: r.received,
            stored: r.stored,
            duplicates: r.duplicates,
            ids: r.ids,
        }
    }
}

async fn ingest_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Json<IngestOut>> {
    super::extract::require_json(&headers)?;
    let events = ingest::parse_body(&body).map_err(|e| e.located(&["body"]))?;
    let report = ingest::ingest(&s.db, &s.live, p.grant()?, events)
        .await
        .map_err(|e| e.located(&["body"]))?;
    Ok(Json(report.into()))
}

async fn workspace_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(&s, &p, Target::Workspace { workspace }, q, Extra::None).await
}

async fn workspace_summary(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<SummaryOut>> {
    summarize(&s, &p, Target::Workspace { workspace }, q).await
}

async fn user_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, user)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(&s, &p, Target::User { user }, q, Extra::WorkspaceId).await
}

async fn user_summary(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, user)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<SummaryOut>> {
    summarize(&s, &p, Target::User { user }, q).await
}

async fn app_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace, app)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(&s, &p, Target::App { workspace, app }, q, Extra::None).await
}

async fn endpoint_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace, app, endpoint)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(
        &s,
        &p,
        Target::Endpoint {
            workspace,
            app,
            endpoint,
        },
        q,
        Extra::None,
    )
    .await
}

async fn endpoint_summary(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace, app, endpoint)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<SummaryOut>> {
    summarize(
        &s,
        &p,
        Target::Endpoint {
            workspace,
            app,
            endpoint,
        },
        q,
    )
    .await
}

async fn augmentation_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace, augmentation)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(
        &s,
        &p,
        Target::Augmentation {
            workspace,
            augmentation,
        },
        q,
        Extra::None,
    )
    .await
}

async fn action_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace, action)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(&s, &p, Target::Action { workspace, action }, q, Extra::None).await
}

async fn resource_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace, resource_id)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(
        &s,
        &p,
        Target::Resource {
            workspace,
            resource_id,
        },
        q,
        Extra::None,
    )
    .await
}

async fn search_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path((_, workspace)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ActivityList>> {
    list(&s, &p, Target::Workspace { workspace }, q, Extra::Search).await
}
