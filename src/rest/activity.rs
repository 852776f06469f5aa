//! The 15 GET routes of `000_0fcf25ac362c8c00.txt`, with its parameters and
//! shapes exactly, and batch ingest. One handler for feeds and one for
//! summaries serve every level; the registry says where each is routed.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use entity::activity_event::Column;
use serde::Serialize;
use serde_json::Value;

use super::extract::Authorized;
use super::params::Params;
use crate::auth::Principal;
use crate::domain::error::{AppError, AppResult};
use crate::domain::feed::{ActivityFilter, Cursor, Status};
use crate::domain::paging::{Hours, PageSize};
use crate::domain::time::{format_micros, now_micros};
use crate::json::{Kind, Out};
use crate::operations::{activity_operations, ingest_operation, Operation, ParamIn, ORG_ROUTES};
use crate::service::activity::PageQuery;
use crate::service::scope::{check_exists, scope_of, Target};
use crate::service::{activity, ingest, summary};
use crate::state::AppState;

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

/// [`ActivityOut`]'s fields after `id` and `timestamp` (a page reads those
/// first), in its order, with the columns they are read from: a feed page is
/// written straight from its rows, without a model or a value per field.
const EVENT_FIELDS: [(&str, Column, Kind); 23] = [
    ("trace_id", Column::TraceId, Kind::OptionalText),
    ("user_id", Column::UserId, Kind::OptionalText),
    ("workspace_id", Column::WorkspaceId, Kind::OptionalText),
    ("app_id", Column::AppId, Kind::OptionalText),
    ("principal_type", Column::PrincipalType, Kind::OptionalText),
    ("principal_id", Column::PrincipalId, Kind::OptionalText),
    ("token_id", Column::TokenId, Kind::OptionalText),
    ("token_type", Column::TokenType, Kind::OptionalText),
    ("method", Column::Method, Kind::OptionalText),
    ("path", Column::Path, Kind::OptionalText),
    ("resource_type", Column::ResourceType, Kind::OptionalText),
    ("resource_id", Column::ResourceId, Kind::OptionalText),
    ("action", Column::Action, Kind::Text),
    ("status_code", Column::StatusCode, Kind::Int),
    ("success", Column::Success, Kind::Bool),
    ("error_code", Column::ErrorCode, Kind::OptionalText),
    ("duration_ms", Column::DurationMs, Kind::BigInt),
    ("execution_id", Column::ExecutionId, Kind::OptionalText),
    (
        "augmentation_id",
        Column::AugmentationId,
        Kind::OptionalText,
    ),
    (
        "stages_completed",
        Column::StagesCompleted,
        Kind::OptionalInt,
    ),
    ("total_stages", Column::TotalStages, Kind::OptionalInt),
    ("token_usage", Column::TokenUsage, Kind::Json),
    ("metadata", Column::Metadata, Kind::Json),
];

/// An [`ActivityList`]'s JSON, written from a page's rows (see
/// [`EVENT_FIELDS`]); `None` when a row does not hold what it should.
fn write_list(
    rows: &[sea_orm::QueryResult],
    total: u64,
    has_more: bool,
    next_cursor: Option<&str>,
) -> Option<Vec<u8>> {
    let mut out = Out::with_capacity(1024 + rows.len() * 768);
    out.open();
    out.key("total");
    out.number(total);
    out.key("has_more");
    out.bool(has_more);
    out.key("next_cursor");
    match next_cursor {
        Some(cursor) => out.string(cursor),
        None => out.null(),
    }
    out.key("activities");
    out.open_list();
    for row in rows {
        out.item();
        out.open();
        out.key("id");
        out.column(row, 1, Kind::Text)?;
        out.key("timestamp");
        out.column(row, 0, Kind::Timestamp)?;
        for (at, (key, _, kind)) in EVENT_FIELDS.iter().enumerate() {
            out.key(key);
            out.column(row, at + 2, *kind)?;
        }
        out.close();
    }
    out.close_list();
    out.close();
    Some(out.into_bytes())
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
/// The query parameters a feed reads beyond the window and the page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    WorkspaceId,
    Search,
}

impl Extra {
    fn of(operation: &Operation) -> Self {
        let documents = |name: &str| {
            operation
                .params
                .iter()
                .any(|p| p.location == ParamIn::Query && p.name == name)
        };
        if documents("action") {
            Self::Search
        } else if documents("workspace_id") {
            Self::WorkspaceId
        } else {
            Self::None
        }
    }
}

async fn list(
    state: &AppState,
    principal: &Principal,
    target: Target,
    query: Option<String>,
    extra: Extra,
) -> AppResult<Response> {
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
    let filter = principal.confine(filter);
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
    // The page and its exact total: one statement when the page has rows.
    let columns = EVENT_FIELDS.map(|(_, column, _)| column);
    let page = PageQuery {
        org_id: org,
        scope: &scope,
        filter: &filter,
        limit,
        cursor: cursor.as_ref(),
        columns: &columns,
        related: &[],
    };
    let (rows, has_more, total) = activity::page_rows_and_count(state.summaries(), &page).await?;
    let next_cursor = match rows.last().filter(|_| has_more) {
        Some(row) => Some(activity::cursor_of(row)?.encode(key, org, &scope, &filter)),
        None => None,
    };
    let body = write_list(&rows, total, has_more, next_cursor.as_deref())
        .ok_or_else(|| AppError::internal_msg("a feed row did not hold an event's columns"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
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
        state.summaries(),
        &principal.org_id,
        &scope,
        &principal.confine(ActivityFilter::default()),
        start,
        end,
    )
    .await?;
    Ok(Json(s.into()))
}

/// The `/v1/orgs/{org_id}` routes, built from the operation registry: each
/// path is written once, there. A feed's target comes from the path's
/// parameters, its extra query parameters from what the registry documents.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for operation in activity_operations() {
        let Some(route) = operation.path.strip_prefix(ORG_ROUTES) else {
            unreachable!("{} is not under {ORG_ROUTES}", operation.path)
        };
        let me = route.starts_with("/me/");
        let extra = Extra::of(&operation);
        router = if route.ends_with("/summary") {
            router.route(
                route,
                get(
                    move |State(s): State<AppState>,
                          Authorized(p): Authorized,
                          Path(named): Path<Named>,
                          RawQuery(q): RawQuery| async move {
                        summarize(&s, &p, target_of(&named, me), q).await
                    },
                ),
            )
        } else {
            router.route(
                route,
                get(
                    move |State(s): State<AppState>,
                          Authorized(p): Authorized,
                          Path(named): Path<Named>,
                          RawQuery(q): RawQuery| async move {
                        list(&s, &p, target_of(&named, me), q, extra).await
                    },
                ),
            )
        };
    }
    let ingest = ingest_operation();
    let Some(route) = ingest.path.strip_prefix(ORG_ROUTES) else {
        unreachable!("{} is not under {ORG_ROUTES}", ingest.path)
    };
    router.route(route, post(ingest_activity))
}

type Named = HashMap<String, String>;

/// What a feed's path names, from its parameters' names (the registry's).
fn target_of(named: &Named, me: bool) -> Target {
    let get = |name: &str| named.get(name).cloned().unwrap_or_default();
    let workspace = get("workspace_id");
    if me {
        Target::Me
    } else if named.contains_key("endpoint_id") {
        Target::Endpoint {
            workspace,
            app: get("app_id"),
            endpoint: get("endpoint_id"),
        }
    } else if named.contains_key("app_id") {
        Target::App {
            workspace,
            app: get("app_id"),
        }
    } else if named.contains_key("augmentation_id") {
        Target::Augmentation {
            workspace,
            augmentation: get("augmentation_id"),
        }
    } else if named.contains_key("action") {
        Target::Action {
            workspace,
            action: get("action"),
        }
    } else if named.contains_key("resource_id") {
        Target::Resource {
            workspace,
            resource_id: get("resource_id"),
        }
    } else if named.contains_key("user_id") {
        Target::User {
            user: get("user_id"),
        }
    } else if named.contains_key("workspace_id") {
        Target::Workspace { workspace }
    } else {
        Target::Org
    }
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
