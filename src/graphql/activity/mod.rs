//! Activity in GraphQL: the event type, its connection, and the resolver
//! every node's `activity` field shares (the summary: `summary.rs`).

use async_graphql::connection::PageInfo;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Json, SimpleObject, ID};
use sea_orm::DatabaseConnection;

use super::error::{GqlResult, IntoGql, ToGraphql};
use super::guard::Gate;
use super::loaders::{Loaders, Relations};
use super::nodes::{App, Augmentation, Endpoint, User, Workspace};
use crate::auth::Principal;
use crate::domain::error::{AppError, InvalidInput};
use crate::domain::feed::{ActivityFilter, Cursor, CursorKey, Scope, Status};
use crate::domain::paging::PageSize;
use crate::domain::time::{format_micros, parse_timestamp};
use crate::service::activity;
use crate::service::secrets::CursorKeys;
use crate::service::summary as service_summary;
use crate::views::stored_json;

mod summary;

pub use summary::{activity_summary, ActivitySummary};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ActivityStatus {
    Success,
    Error,
}

/// Narrows a feed or a summary. Times are ISO 8601; a naive time is UTC.
#[derive(InputObject, Default, Clone)]
pub struct ActivityFilterInput {
    /// Inclusive.
    pub start_time: Option<String>,
    /// Exclusive.
    pub end_time: Option<String>,
    pub actions: Option<Vec<String>>,
    pub resource_types: Option<Vec<String>>,
    pub resource_id: Option<String>,
    pub user_ids: Option<Vec<String>>,
    pub workspace_id: Option<String>,
    /// Only the events of this app.
    pub app_id: Option<String>,
    /// Only the events of this endpoint.
    pub endpoint_id: Option<String>,
    /// Free text, at most 200 characters: events whose action, method,
    /// path, resource type or id, user, principal, error code, trace or
    /// workspace, app or endpoint id contains it (ASCII letters in any
    /// case; an empty text matches every event).
    pub search: Option<String>,
    pub status: Option<ActivityStatus>,
    /// GraphQL's `Int` is 32-bit; durations are at most a day (86,400,000 ms).
    pub min_duration_ms: Option<i32>,
    pub max_duration_ms: Option<i32>,
}

impl ActivityFilterInput {
    /// The filter of a field's `filter` argument (absent: no filter); its
    /// problems are pushed, located under `filter`.
    pub(super) fn read(input: Option<Self>, problems: &mut Vec<InvalidInput>) -> ActivityFilter {
        input.unwrap_or_default().parse().unwrap_or_else(|mut p| {
            problems.append(&mut p);
            ActivityFilter::default()
        })
    }

    fn parse(self) -> Result<ActivityFilter, Vec<InvalidInput>> {
        let mut problems = Vec::new();
        let mut time = |name: &str, value: Option<String>| {
            value.and_then(|text| {
                let parsed = parse_timestamp(&text);
                if parsed.is_none() {
                    problems.push(InvalidInput::new(
                        &["filter", name],
                        "datetime_parsing",
                        format!("{name} should be a valid ISO 8601 datetime"),
                        text,
                    ));
                }
                parsed
            })
        };
        let filter = ActivityFilter {
            start_time: time("startTime", self.start_time),
            end_time: time("endTime", self.end_time),
            actions: self.actions.unwrap_or_default(),
            resource_types: self.resource_types.unwrap_or_default(),
            resource_id: self.resource_id,
            user_ids: self.user_ids.unwrap_or_default(),
            workspace_id: self.workspace_id,
            app_id: self.app_id,
            endpoint_id: self.endpoint_id,
            search: self.search,
            status: self.status.map(|s| {
                if s == ActivityStatus::Success {
                    Status::Success
                } else {
                    Status::Error
                }
            }),
            min_duration_ms: self.min_duration_ms.map(i64::from),
            max_duration_ms: self.max_duration_ms.map(i64::from),
            confined: None,
        };
        problems.extend(filter.validate(&["filter"]));
        if problems.is_empty() {
            Ok(filter)
        } else {
            Err(problems)
        }
    }
}

/// One recorded API call: the reference's fields in camelCase, and its
/// relations as objects (batched through DataLoaders, never one query per row).
/// Plain fields are computed once from the row; only relations resolve.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Activity {
    /// Resolved in the complex part, where the `Node` interface can call it.
    #[graphql(skip)]
    pub key: String,
    /// RFC 3339, UTC, microseconds.
    pub timestamp: String,
    pub trace_id: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub augmentation_id: Option<String>,
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
    pub stages_completed: Option<i32>,
    pub total_stages: Option<i32>,
    /// Token counts by kind, e.g. `{"prompt_tokens": 120, "completion_tokens": 40}`.
    pub token_usage: Json<serde_json::Value>,
    /// The sum of `tokenUsage`.
    pub tokens_total: i64,
    pub metadata: Json<serde_json::Value>,
    /// Its place in the org's verifiable log: 0, 1, 2, ... in commit order.
    pub log_index: i64,
}

impl From<entity::activity_event::Model> for Activity {
    fn from(e: entity::activity_event::Model) -> Self {
        Self {
            key: e.id,
            timestamp: format_micros(e.ts),
            trace_id: e.trace_id,
            user_id: e.user_id,
            workspace_id: e.workspace_id,
            app_id: e.app_id,
            endpoint_id: e.endpoint_id,
            augmentation_id: e.augmentation_id,
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
            stages_completed: e.stages_completed,
            total_stages: e.total_stages,
            token_usage: Json(stored_json(&e.token_usage)),
            tokens_total: e.tokens_total,
            metadata: Json(stored_json(&e.metadata)),
            log_index: e.log_index.unwrap_or(-1),
        }
    }
}

#[ComplexObject]
impl Activity {
    pub async fn id(&self) -> ID {
        ID(self.key.clone())
    }
    /// The event's inclusion proof in the org's tree of `treeSize` leaves
    /// (default: the latest checkpoint's; more than `logIndex`, at most the
    /// latest checkpoint's).
    #[graphql(guard = "Gate(\"Activity.inclusionProof\")")]
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        tree_size: Option<i64>,
    ) -> GqlResult<crate::graphql::log::InclusionProof> {
        let org = ctx.data::<Principal>()?.org_id.clone();
        crate::graphql::log::inclusion_proof(ctx, &org, &self.key, tree_size).await
    }
    #[graphql(guard = "Gate(\"Activity.user\")")]
    async fn user(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        let Some(id) = &self.user_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<std::sync::Arc<Loaders>>()?
            .users
            .load_one(id.clone())
            .await?
            .map(User))
    }
    #[graphql(guard = "Gate(\"Activity.workspace\")")]
    async fn workspace(&self, ctx: &Context<'_>) -> GqlResult<Option<Workspace>> {
        let Some(id) = &self.workspace_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<std::sync::Arc<Loaders>>()?
            .workspaces
            .load_one(id.clone())
            .await?
            .map(Workspace))
    }
    #[graphql(guard = "Gate(\"Activity.app\")")]
    async fn app(&self, ctx: &Context<'_>) -> GqlResult<Option<App>> {
        let Some(id) = &self.app_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<std::sync::Arc<Loaders>>()?
            .apps
            .load_one(id.clone())
            .await?
            .map(App))
    }
    #[graphql(guard = "Gate(\"Activity.endpoint\")")]
    async fn endpoint(&self, ctx: &Context<'_>) -> GqlResult<Option<Endpoint>> {
        let Some(id) = &self.endpoint_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<std::sync::Arc<Loaders>>()?
            .endpoints
            .load_one(id.clone())
            .await?
            .map(Endpoint))
    }
    #[graphql(guard = "Gate(\"Activity.augmentation\")")]
    async fn augmentation(&self, ctx: &Context<'_>) -> GqlResult<Option<Augmentation>> {
        let Some(id) = &self.augmentation_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<std::sync::Arc<Loaders>>()?
            .augmentations
            .load_one(id.clone())
            .await?
            .map(Augmentation))
    }
}

#[derive(SimpleObject)]
pub struct ActivityEdge {
    pub cursor: String,
    pub node: Activity,
}

/// A page of a feed. `totalCount` is exact and only computed when asked for.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ActivityConnection {
    pub edges: Vec<ActivityEdge>,
    pub page_info: PageInfo,
    #[graphql(skip)]
    feed: (String, Scope, ActivityFilter),
}

#[ComplexObject]
impl ActivityConnection {
    async fn nodes(&self) -> Vec<Activity> {
        self.edges.iter().map(|e| e.node.clone()).collect()
    }
    /// Every matching event, all pages together.
    async fn total_count(&self, ctx: &Context<'_>) -> GqlResult<u64> {
        let (org, scope, filter) = &self.feed;
        activity::count(summaries(ctx)?, org, scope, filter)
            .await
            .gql()
    }
}

/// Where summaries and totals read: the database and the rollup cells the
/// server keeps.
pub(super) fn summaries<'a>(ctx: &'a Context<'a>) -> GqlResult<service_summary::Source<'a>> {
    Ok(service_summary::Source::kept(
        ctx.data::<DatabaseConnection>()?,
        ctx.data::<std::sync::Arc<service_summary::KeptCells>>()?,
    ))
}

/// The server's cursor key.
pub(super) async fn cursor_key<'a>(ctx: &'a Context<'a>) -> GqlResult<&'a CursorKey> {
    ctx.data::<CursorKeys>()?.get().await.gql()
}

/// How many rows a connection page holds (`first`, 1 to 200, default 50);
/// a bad value is pushed to `problems` at `["first"]`.
pub(super) fn page_limit(first: Option<i32>, problems: &mut Vec<InvalidInput>) -> u64 {
    PageSize::parse(first.map(i64::from))
        .unwrap_or_else(|refused| {
            problems.push(refused.under(vec!["first".into()]));
            PageSize::default()
        })
        .get()
}

/// The relations of events that this connection's selection asks for, under
/// `nodes` or `edges { node }` (fragments included).
fn selected_relations(selection: &async_graphql::Lookahead<'_>) -> Relations {
    let asks = |name: &str| {
        selection.field("nodes").field(name).exists()
            || selection.field("edges").field("node").field(name).exists()
    };
    Relations {
        users: asks("user"),
        workspaces: asks("workspace"),
        apps: asks("app"),
        endpoints: asks("endpoint"),
        augmentations: asks("augmentation"),
    }
}

/// The `activity` field of every node.
pub async fn activity_connection(
    ctx: &Context<'_>,
    scope: Scope,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<ActivityFilterInput>,
) -> GqlResult<ActivityConnection> {
    let principal = ctx.data::<Principal>()?;
    let org = principal.org_id.clone();
    let key = cursor_key(ctx).await?;
    let mut problems = Vec::new();
    let limit = page_limit(first, &mut problems);
    let filter = principal.confine(ActivityFilterInput::read(filter, &mut problems));
    let cursor = match after {
        None => None,
        Some(text) => Cursor::decode(&text, key, &org, &scope, &filter)
            .map_err(|e| problems.push(e.to_input(&["after"], &text)))
            .ok(),
    };
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).to_graphql());
    }
    let db = ctx.data::<DatabaseConnection>()?;
    let page = activity::page(db, &org, &scope, &filter, limit, cursor.as_ref())
        .await
        .gql()?;
    let selection = ctx.look_ahead();
    if let Some(loaders) = ctx.data_opt::<std::sync::Arc<Loaders>>() {
        loaders
            .prefetch(selected_relations(&selection), &page.events)
            .await
            .map_err(|e| AppError::internal_msg(e).to_graphql())?;
    }
    let seal = |e: &entity::activity_event::Model| {
        Cursor {
            ts: e.ts,
            id: e.id.clone(),
        }
        .encode(key, &org, &scope, &filter)
    };
    let page_info = PageInfo {
        has_previous_page: cursor.is_some(),
        has_next_page: page.has_more,
        start_cursor: page.events.first().map(seal),
        end_cursor: page.events.last().map(seal),
    };
    // Sealing costs an HMAC per row: rows get cursors only when the
    // selection reads them (an unread field is never answered).
    let edge_cursors = selection.field("edges").field("cursor").exists();
    let edges: Vec<ActivityEdge> = page
        .events
        .into_iter()
        .map(|e| ActivityEdge {
            cursor: if edge_cursors {
                seal(&e)
            } else {
                String::new()
            },
            node: Activity::from(e),
        })
        .collect();
    Ok(ActivityConnection {
        edges,
        page_info,
        feed: (org, scope, filter),
    })
}
