//! The one feed: any scope, any filter, keyset-paginated newest first on
//! (ts, id), with the exact total. A page costs the same at any depth.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
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
            DbBackend::Postgres => {
                format!("\"activity_events\".\"{name}\" COLLATE \"C\" ILIKE $1 ESCAPE '\\'")
            }
            _ => format!("\"activity_events\".\"{name}\" LIKE ? ESCAPE '\\'"),
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
    // Qualified: a page may join rows that have an `id` of their own.
    let key = Expr::tuple([
        Expr::col((activity_event::Entity, Column::Ts)),
        Expr::col((activity_event::Entity, Column::Id)),
    ]);
    let at = Expr::tuple([Expr::val(cursor.ts), Expr::val(cursor.id.as_str())]);
    Condition::all().add(sea_orm::sea_query::ExprTrait::lt(key, at))
}

/// What a page reads: the scope, the filter, what retention keeps, and
/// strictly after `cursor`.
///
/// On PostgreSQL an org's page names its org through a subquery, whose
/// value the planner does not see in any plan: a custom plan costed the
/// largest org by its own share of the table and the generic plan by the
/// average org's, and which looked cheaper changed with the statistics
/// (after an `ANALYZE`, PostgreSQL planned the page at every execution
/// again). Blind to the value, both cost the same, so the generic plan is
/// kept; it is the plan every org's page wants anyway, the org's index from
/// its newest end.
fn page_condition(
    backend: sea_orm::DbBackend,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    cursor: Option<&Cursor>,
) -> Condition {
    let scope_condition = match (backend, scope) {
        (DbBackend::Postgres, Scope::Org) => {
            Condition::all().add(sea_orm::sea_query::ExprTrait::eq(
                Expr::col((activity_event::Entity, Column::OrgId)),
                Expr::cust_with_values("(SELECT CAST($1 AS TEXT))", [org_id]),
            ))
        }
        _ => scope_condition(org_id, scope),
    };
    let mut condition = scope_condition.add(filter_condition(backend, filter));
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
// The org and scope only: formatting a filter and its columns into every
// page's span cost a few percent of a page's CPU (`perf`).
#[tracing::instrument(skip_all, fields(org_id = %org_id, scope = ?scope))]
pub async fn page(
    db: &impl ConnectionTrait,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    limit: u64,
    cursor: Option<&Cursor>,
) -> AppResult<FeedPage> {
    let backend = db.get_database_backend();
    let condition = page_condition(backend, org_id, scope, filter, cursor);
    // One row more than asked tells whether there is a next page.
    let statement = activity_event::Entity::find()
        .filter(condition)
        .order_by_desc(Column::Ts)
        .order_by_desc(Column::Id)
        .limit(limit + 1)
        .build(backend);
    let mut events = activity_event::Model::find_by_statement(limit_in_text(statement, limit + 1))
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

/// `statement` with its `LIMIT`, the last value sea-query binds, written
/// into its text instead. PostgreSQL plans a prepared statement afresh at
/// every execution while a custom plan looks cheaper than the generic one,
/// and a bound limit makes the generic plan guess that a tenth of the
/// table is read; with the page's size in the text the generic plan is
/// kept after five executions, and a page of a few hundred microseconds no
/// longer spends most of them planning (and joining plans more). There are
/// at most [`crate::domain::paging::PageSize::MAX`] texts per shape.
fn limit_in_text(mut statement: sea_orm::Statement, limit: u64) -> sea_orm::Statement {
    let placeholder = match statement.db_backend {
        DbBackend::Postgres => {
            let bound = statement.values.as_ref().map_or(0, |v| v.0.len());
            format!(" LIMIT ${bound}")
        }
        _ => " LIMIT ?".to_owned(),
    };
    let bound_last = statement
        .values
        .as_ref()
        .and_then(|v| v.0.last())
        .is_some_and(|v| *v == sea_orm::Value::from(limit));
    if bound_last && statement.sql.ends_with(&placeholder) {
        let at = statement.sql.len() - placeholder.len();
        statement.sql.truncate(at);
        statement.sql.push_str(&format!(" LIMIT {limit}"));
        if let Some(values) = statement.values.as_mut() {
            values.0.pop();
        }
    }
    statement
}

/// A directory row a page can read beside each of its events: the row the
/// event's column names, in the org, or none (what the loaders read by id,
/// joined into the page's own statement instead of a statement each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Related {
    User,
    Workspace,
    App,
    Endpoint,
    Augmentation,
}

impl Related {
    /// The event's column holding the related row's id.
    pub fn via(self) -> Column {
        match self {
            Related::User => Column::UserId,
            Related::Workspace => Column::WorkspaceId,
            Related::App => Column::AppId,
            Related::Endpoint => Column::EndpointId,
            Related::Augmentation => Column::AugmentationId,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Related::User => "users",
            Related::Workspace => "workspaces",
            Related::App => "apps",
            Related::Endpoint => "endpoints",
            Related::Augmentation => "augmentations",
        }
    }

    /// The related row's columns a page reads, in this order, its id first
    /// (null when there is no such row). `total_stages` is an integer, the
    /// others text.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Related::User => &["id", "email", "name", "role"],
            Related::Workspace => &["id", "name"],
            Related::App => &["id", "name", "workspace_id"],
            Related::Endpoint => &["id", "name", "method", "path", "app_id"],
            Related::Augmentation => &["id", "name", "total_stages"],
        }
    }
}

/// A page of one org's feed as [`page_rows`] reads it: the scope, filter,
/// size and cursor of [`page`], and what each row holds.
pub struct PageQuery<'a> {
    pub org_id: &'a str,
    pub scope: &'a Scope,
    pub filter: &'a ActivityFilter,
    pub limit: u64,
    pub cursor: Option<&'a Cursor>,
    /// The event's columns each row holds, after its `ts` and `id`.
    pub columns: &'a [Column],
    /// The related rows each row holds, after `columns`.
    pub related: &'a [Related],
}

impl PageQuery<'_> {
    /// How many columns a row holds: `ts`, `id`, `columns` and the related rows'.
    fn width(&self) -> usize {
        2 + self.columns.len()
            + self
                .related
                .iter()
                .map(|r| r.columns().len())
                .sum::<usize>()
    }
}

/// A page as [`page`] reads it, of the query's columns only, as the
/// database's rows: `ts` and `id` first (cursors need them), then `columns`
/// in their order, then the [`Related::columns`] of each of `related` in its
/// order, for a reader that takes them by index. One statement, whatever it
/// relates. Whether there is a next page is the second value.
#[tracing::instrument(skip_all, fields(org_id = %query.org_id, scope = ?query.scope))]
pub async fn page_rows(
    db: &impl ConnectionTrait,
    query: &PageQuery<'_>,
) -> AppResult<(Vec<sea_orm::QueryResult>, bool)> {
    let statement = page_statement(db.get_database_backend(), query, false);
    let rows = db.query_all_raw(statement).await?;
    Ok(page_of(rows, query.limit))
}

/// A page as [`page_rows`] reads it and how many events match, all pages
/// together (see [`count`]). The page's own statement reads the total's
/// mark and retention (its rows hold those columns after the query's; the
/// writers read columns by index and stop at the query's), so with kept
/// cells and nothing of the org past the watermark the two are one
/// statement. A page without rows has none to carry them: its total reads
/// them itself.
#[tracing::instrument(skip_all, fields(org_id = %query.org_id, scope = ?query.scope))]
pub async fn page_rows_and_count(
    source: super::summary::Source<'_>,
    query: &PageQuery<'_>,
) -> AppResult<(Vec<sea_orm::QueryResult>, bool, u64)> {
    let statement = page_statement(source.db.get_database_backend(), query, true);
    let (rows, has_more) = page_of(source.db.query_all_raw(statement).await?, query.limit);
    let total = match rows.first() {
        Some(row) => {
            let marked = super::rollups::mark_and_retention_at(row, query.width())?;
            super::summary::count_marked(source, query.org_id, query.scope, query.filter, marked)
                .await?
        }
        None => count(source, query.org_id, query.scope, query.filter).await?,
    };
    Ok((rows, has_more, total))
}

/// The statement of [`page_rows`], with the columns of
/// [`super::rollups::mark_and_retention_columns`] after the query's when
/// `with_mark`.
fn page_statement(
    backend: DbBackend,
    query: &PageQuery<'_>,
    with_mark: bool,
) -> sea_orm::Statement {
    use sea_orm::sea_query::{Alias, ExprTrait as _, JoinType};
    let org_id = query.org_id;
    let condition = page_condition(backend, org_id, query.scope, query.filter, query.cursor);
    let mut select = activity_event::Entity::find()
        .select_only()
        .column(Column::Ts)
        .column(Column::Id)
        .columns(query.columns.iter().copied());
    for relation in query.related {
        // An alias per relation, so that two relations to one table could
        // not meet; the org is part of the join, as the loaders filter it.
        let alias = Alias::new(format!("related_{}", relation.table()));
        let on = Condition::all()
            .add(
                Expr::col((alias.clone(), Alias::new("id")))
                    .equals((activity_event::Entity, relation.via())),
            )
            .add(Expr::col((alias.clone(), Alias::new("org_id"))).eq(org_id));
        let select = QuerySelect::query(&mut select);
        select.join_as(
            JoinType::LeftJoin,
            Alias::new(relation.table()),
            alias.clone(),
            on,
        );
        for column in relation.columns() {
            select.expr(Expr::col((alias.clone(), Alias::new(*column))));
        }
    }
    if with_mark {
        QuerySelect::query(&mut select)
            .exprs(super::rollups::mark_and_retention_columns(backend, org_id));
    }
    // One row more than asked tells whether there is a next page.
    let statement = select
        .filter(condition)
        .order_by_desc(Column::Ts)
        .order_by_desc(Column::Id)
        .limit(query.limit + 1)
        .build(backend);
    limit_in_text(statement, query.limit + 1)
}

/// The page of `limit` rows in `rows` (one more than asked), and whether
/// there is a next page.
fn page_of(mut rows: Vec<sea_orm::QueryResult>, limit: u64) -> (Vec<sea_orm::QueryResult>, bool) {
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    (rows, has_more)
}

/// Where the feed stands at a row [`page_rows`] read (its `ts` and `id`).
pub fn cursor_of(row: &sea_orm::QueryResult) -> AppResult<Cursor> {
    Ok(Cursor {
        ts: row.try_get_by_index(0)?,
        id: row.try_get_by_index(1)?,
    })
}

/// The text at `at` of a row [`page_rows`] read, borrowed from the row (a
/// page writes each text once, so copying it into a `String` first would
/// only allocate); `None` for a column that is not text.
pub fn text_at(row: &sea_orm::QueryResult, at: usize) -> Option<Option<&str>> {
    value_at(row, at)
}

/// The value at `at` of a row [`page_rows`] read, NULL as `Some(None)`;
/// `None` for a column that does not hold a `T`. Read from the driver's row
/// itself: SeaORM's getter formats an error text for every NULL it reads
/// as an `Option`.
pub fn value_at<'r, T: PageValue<'r>>(
    row: &'r sea_orm::QueryResult,
    at: usize,
) -> Option<Option<T>> {
    use sea_orm::sqlx::{Row as _, ValueRef as _};
    if let Some(row) = row.try_as_pg_row() {
        let value = row.try_get_raw(at).ok()?;
        if value.is_null() {
            return Some(None);
        }
        let oid = value.type_info().oid()?;
        if !T::PG_TYPES.contains(&oid.0) {
            return None;
        }
        return <T as sea_orm::sqlx::Decode<sea_orm::sqlx::Postgres>>::decode(value)
            .ok()
            .map(Some);
    }
    row.try_as_sqlite_row()?.try_get(at).ok()
}

/// What a page reads from its rows with [`value_at`].
pub trait PageValue<'r>:
    sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Postgres>
    + sea_orm::sqlx::Decode<'r, sea_orm::sqlx::Sqlite>
    + sea_orm::sqlx::Type<sea_orm::sqlx::Sqlite>
{
    /// The PostgreSQL types (their fixed catalog OIDs) it is read from:
    /// comparing the column's is cheaper than sqlx's own check, which
    /// builds and drops a list of type descriptions on every read (about
    /// 3% of a page's CPU).
    const PG_TYPES: &'static [u32];
}

impl<'r> PageValue<'r> for &'r str {
    /// `text`, `varchar`, `bpchar`, `name`.
    const PG_TYPES: &'static [u32] = &[25, 1043, 1042, 19];
}

impl PageValue<'_> for i64 {
    /// `int8`.
    const PG_TYPES: &'static [u32] = &[20];
}

impl PageValue<'_> for i32 {
    /// `int4`.
    const PG_TYPES: &'static [u32] = &[23];
}

impl PageValue<'_> for bool {
    /// `bool`.
    const PG_TYPES: &'static [u32] = &[16];
}

/// How many events match, all pages together (see [`super::summary::count`]).
pub use super::summary::count;
