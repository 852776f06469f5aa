//! The one feed: any scope, any filter, keyset-paginated newest first on
//! (ts, id), with the exact total. A page costs the same at any depth.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};

use entity::activity_event::{self, Column};

use crate::domain::error::AppResult;
use crate::domain::feed::{ActivityFilter, Cursor, Scope, Status};

pub struct FeedPage {
    pub events: Vec<activity_event::Model>,
    pub has_more: bool,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// The events a scope covers. Entity scopes filter on their own column only:
/// the entity was checked to belong to the org before the scope was built,
/// and every writer refuses events that reference another org's entities, so
/// the org column would add nothing but a worse index choice.
pub fn scope_condition(org_id: &str, scope: &Scope) -> Condition {
    let c = Condition::all();
    match scope {
        Scope::Org => c.add(Column::OrgId.eq(org_id)),
        Scope::Workspace(id) => c.add(Column::WorkspaceId.eq(id.as_str())),
        Scope::App(id) => c.add(Column::AppId.eq(id.as_str())),
        Scope::Endpoint(id) => c.add(Column::EndpointId.eq(id.as_str())),
        Scope::Augmentation(id) => c.add(Column::AugmentationId.eq(id.as_str())),
        Scope::User(id) => c.add(Column::UserId.eq(id.as_str())),
        Scope::WorkspaceAction {
            workspace_id,
            action,
        } => c
            .add(Column::WorkspaceId.eq(workspace_id.as_str()))
            .add(Column::Action.eq(action.as_str())),
        Scope::WorkspaceResource {
            workspace_id,
            resource_id,
        } => c
            .add(Column::WorkspaceId.eq(workspace_id.as_str()))
            .add(Column::ResourceId.eq(resource_id.as_str())),
        Scope::Principal(id) => c
            .add(Column::OrgId.eq(org_id))
            .add(Column::PrincipalId.eq(id.as_str())),
    }
}

/// The columns free-text search looks in.
const SEARCHED: [Column; 12] = [
    Column::Action,
    Column::Method,
    Column::Path,
    Column::ResourceType,
    Column::ResourceId,
    Column::UserId,
    Column::PrincipalId,
    Column::ErrorCode,
    Column::TraceId,
    Column::WorkspaceId,
    Column::AppId,
    Column::EndpointId,
];

/// Events where any searched column contains `text`, ASCII letters in any
/// case and nothing else folded, the same on both backends: SQLite's `LIKE`
/// folds ASCII only, and PostgreSQL's `ILIKE` does too under the "C"
/// collation (under the database's own it would fold other letters).
fn search_condition(backend: DbBackend, text: &str) -> Condition {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    SEARCHED.iter().fold(Condition::any(), |any, column| {
        let name = sea_orm::Iden::to_string(column);
        let test = match backend {
            // sea-query numbers PostgreSQL's placeholders, not `?`.
            DbBackend::Postgres => format!("\"{name}\" COLLATE \"C\" ILIKE $1 ESCAPE '\\'"),
            _ => format!("\"{name}\" LIKE ? ESCAPE '\\'"),
        };
        any.add(Expr::cust_with_values(test, [pattern.clone()]))
    })
}

/// The events `filter` selects (the org and scope aside), as the backend
/// writes free-text search.
pub fn filter_condition(backend: DbBackend, filter: &ActivityFilter) -> Condition {
    let mut c = Condition::all();
    if let Some(start) = filter.start_time {
        c = c.add(Column::Ts.gte(start));
    }
    if let Some(end) = filter.end_time {
        c = c.add(Column::Ts.lt(end));
    }
    if !filter.actions.is_empty() {
        c = c.add(Column::Action.is_in(filter.actions.clone()));
    }
    if !filter.resource_types.is_empty() {
        c = c.add(Column::ResourceType.is_in(filter.resource_types.clone()));
    }
    if let Some(resource_id) = &filter.resource_id {
        c = c.add(Column::ResourceId.eq(resource_id.as_str()));
    }
    if !filter.user_ids.is_empty() {
        c = c.add(Column::UserId.is_in(filter.user_ids.clone()));
    }
    if let Some(workspace_id) = &filter.workspace_id {
        c = c.add(Column::WorkspaceId.eq(workspace_id.as_str()));
    }
    if let Some(app_id) = &filter.app_id {
        c = c.add(Column::AppId.eq(app_id.as_str()));
    }
    if let Some(endpoint_id) = &filter.endpoint_id {
        c = c.add(Column::EndpointId.eq(endpoint_id.as_str()));
    }
    if let Some(text) = filter.search.as_deref().filter(|t| !t.is_empty()) {
        c = c.add(search_condition(backend, text));
    }
    match filter.status {
        Some(Status::Success) => c = c.add(Column::Success.eq(true)),
        Some(Status::Error) => c = c.add(Column::Success.eq(false)),
        None => {}
    }
    if let Some(min) = filter.min_duration_ms {
        c = c.add(Column::DurationMs.gte(min));
    }
    if let Some(max) = filter.max_duration_ms {
        c = c.add(Column::DurationMs.lte(max));
    }
    if let Some(confined) = &filter.confined {
        if !confined.workspace_ids.is_empty() {
            c = c.add(Column::WorkspaceId.is_in(confined.workspace_ids.clone()));
        }
        if let Some(user_id) = &confined.user_id {
            c = c.add(Column::UserId.eq(user_id.as_str()));
        }
        c = c.add(filter_condition(backend, &confined.filter));
    }
    c
}

/// Strictly after the cursor in feed order, as a row-value comparison: both
/// backends turn `(ts, id) < (?, ?)` into an index range, so a deep page seeks
/// straight to its place (the equivalent OR form makes them scan from the top).
fn after(cursor: &Cursor) -> Condition {
    let key = Expr::tuple([Expr::col(Column::Ts), Expr::col(Column::Id)]);
    let at = Expr::tuple([Expr::val(cursor.ts), Expr::val(cursor.id.as_str())]);
    Condition::all().add(sea_orm::sea_query::ExprTrait::lt(key, at))
}

/// What a page reads: the scope, the filter, what retention keeps, and
/// strictly after `cursor`.
fn page_condition(
    backend: sea_orm::DbBackend,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    cursor: Option<&Cursor>,
) -> Condition {
    let mut condition = scope_condition(org_id, scope).add(filter_condition(backend, filter));
    condition = condition.add(super::retention::within_feed(
        backend,
        org_id,
        crate::domain::time::now_micros(),
    ));
    if let Some(cursor) = cursor {
        condition = condition.add(after(cursor));
    }
    condition
}

/// One page, newest first, starting after `cursor`.
#[tracing::instrument(skip(db))]
pub async fn page(
    db: &impl ConnectionTrait,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    limit: u64,
    cursor: Option<&Cursor>,
) -> AppResult<FeedPage> {
    let condition = page_condition(db.get_database_backend(), org_id, scope, filter, cursor);
    // One row more than asked tells whether there is a next page.
    let mut events = activity_event::Entity::find()
        .filter(condition)
        .order_by_desc(Column::Ts)
        .order_by_desc(Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let has_more = events.len() as u64 > limit;
    events.truncate(limit as usize);
    let next = has_more
        .then(|| {
            events.last().map(|e| Cursor {
                ts: e.ts,
                id: e.id.clone(),
            })
        })
        .flatten();
    Ok(FeedPage {
        events,
        has_more,
        next,
    })
}

/// A page as [`page`] reads it, of `columns` only, as the database's rows:
/// `ts` and `id` first (cursors need them), then `columns` in their order,
/// for a reader that takes them by index. Whether there is a next page is
/// the second value.
#[tracing::instrument(skip(db))]
pub async fn page_rows(
    db: &impl ConnectionTrait,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    limit: u64,
    cursor: Option<&Cursor>,
    columns: &[Column],
) -> AppResult<(Vec<sea_orm::QueryResult>, bool)> {
    let backend = db.get_database_backend();
    let condition = page_condition(backend, org_id, scope, filter, cursor);
    let statement = activity_event::Entity::find()
        .select_only()
        .column(Column::Ts)
        .column(Column::Id)
        .columns(columns.iter().copied())
        .filter(condition)
        .order_by_desc(Column::Ts)
        .order_by_desc(Column::Id)
        .limit(limit + 1)
        .build(backend);
    let mut rows = db.query_all_raw(statement).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// The text at `at` of a row [`page_rows`] read, borrowed from the row (a
/// page writes each text once, so copying it into a `String` first would
/// only allocate); `None` for a column that is not text.
pub fn text_at(row: &sea_orm::QueryResult, at: usize) -> Option<Option<&str>> {
    use sea_orm::sqlx::Row as _;
    if let Some(row) = row.try_as_pg_row() {
        return row.try_get(at).ok();
    }
    row.try_as_sqlite_row()?.try_get(at).ok()
}

/// How many events match, all pages together (see [`super::summary::count`]).
pub use super::summary::count;
