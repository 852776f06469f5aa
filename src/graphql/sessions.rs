//! Sessions, problems and docs in GraphQL: the twins of the artifact routes,
//! answering the same shapes in camelCase through the same services.

use super::error::ToGraphql;
use super::guard::Gate;
use std::sync::Arc;

use async_graphql::connection::PageInfo;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use sea_orm::DatabaseConnection;

use super::activity::{page_limit, Activity};
use super::error::{GqlResult, IntoGql};
use super::loaders::Loaders;
use super::nodes::User;
use crate::auth::Principal;
use crate::config::HttpArgs;
use crate::domain::error::{AppError, InvalidInput};
use crate::domain::feed::Cursor;
use crate::domain::time::format_micros;
use crate::service::{problems, sessions};
use crate::views::{SessionAnalyticsOut, SessionListItem, SessionSearchOut};

/// GraphQL's spelling of the session fields, for the locations of errors.
const CAMEL_CASE: sessions::FieldNames = sessions::FieldNames {
    date_from: "dateFrom",
    date_to: "dateTo",
    roles: "roles",
    page: "page",
    page_size: "pageSize",
    sort_order: "sortOrder",
};

/// Which sessions: started in `[dateFrom, dateTo)` (a bare date `dateTo`
/// includes that day), of users in these departments and roles.
#[derive(InputObject, Default)]
pub struct SessionFilterInput {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub department_ids: Option<Vec<String>>,
    /// `admin`, `member`, `viewer`.
    pub roles: Option<Vec<String>>,
    /// Only active (`true`) or only inactive (`false`) sessions; ignored by `sessionAnalytics`.
    pub active: Option<bool>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

fn filter_of(
    input: Option<SessionFilterInput>,
    with_active: bool,
    problems: &mut Vec<InvalidInput>,
) -> sessions::SessionFilter {
    let f = input.unwrap_or_default();
    sessions::parse_filter(
        &CAMEL_CASE,
        &["filter"],
        f.date_from.as_deref(),
        f.date_to.as_deref(),
        f.department_ids.unwrap_or_default(),
        f.roles.unwrap_or_default(),
        if with_active { f.active } else { None },
        problems,
    )
}

fn settings<'a>(ctx: &'a Context<'a>) -> GqlResult<&'a HttpArgs> {
    Ok(ctx.data::<Arc<HttpArgs>>()?.as_ref())
}

/// `Org.sessionAnalytics`.
pub async fn session_analytics(
    ctx: &Context<'_>,
    filter: Option<SessionFilterInput>,
) -> GqlResult<SessionAnalyticsOut> {
    let principal = ctx.data::<Principal>()?;
    let mut problems = Vec::new();
    let filter = filter_of(filter, false, &mut problems);
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).to_graphql());
    }
    let db = ctx.data::<DatabaseConnection>()?;
    let analytics =
        sessions::analytics(db, &principal.org_id, &filter, settings(ctx)?.activeness())
            .await
            .gql()?;
    Ok(analytics.into())
}

/// `Org.sessions` and `User.sessions`.
pub async fn session_page(
    ctx: &Context<'_>,
    user_id: Option<&str>,
    filter: Option<SessionFilterInput>,
    page: Option<i32>,
    page_size: Option<i32>,
    sort_order: Option<SortOrder>,
) -> GqlResult<SessionSearchOut> {
    let principal = ctx.data::<Principal>()?;
    let mut problems = Vec::new();
    let filter = filter_of(filter, true, &mut problems);
    let sort = sort_order.map(|s| if s == SortOrder::Asc { "asc" } else { "desc" });
    let (paging, sort) = sessions::parse_paging(
        &CAMEL_CASE,
        page.map(i64::from),
        page_size.map(i64::from),
        sort,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).to_graphql());
    }
    let db = ctx.data::<DatabaseConnection>()?;
    let found = sessions::search(
        db,
        &principal.org_id,
        user_id,
        &filter,
        settings(ctx)?.activeness(),
        sort,
        paging,
    )
    .await
    .gql()?;
    Ok(SessionSearchOut::of(found, paging))
}

/// A problem of the org, with the activity or session it is about.
pub struct Problem(pub entity::problem::Model);

#[Object]
impl Problem {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The problem's category.
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    async fn resolved(&self) -> bool {
        self.0.resolved
    }
    async fn resolved_at(&self) -> Option<String> {
        self.0.resolved_at.map(format_micros)
    }
    /// Who resolved it: a user id, or a key id for a key of no user.
    async fn resolved_by(&self) -> Option<&str> {
        self.0.resolved_by.as_deref()
    }
    /// Who created it: a user id, or a key id for a key of no user.
    async fn created_by(&self) -> Option<&str> {
        self.0.created_by.as_deref()
    }
    async fn created_at(&self) -> String {
        format_micros(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        format_micros(self.0.updated_at)
    }
    async fn activity_id(&self) -> Option<&str> {
        self.0.activity_id.as_deref()
    }
    async fn session_id(&self) -> Option<&str> {
        self.0.session_id.as_deref()
    }
    /// The activity this problem is about (batched).
    #[graphql(guard = "Gate(\"Problem.activity\")")]
    async fn activity(&self, ctx: &Context<'_>) -> GqlResult<Option<Activity>> {
        let Some(id) = &self.0.activity_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<Arc<Loaders>>()?
            .activities
            .load_one(id.clone())
            .await?
            .map(Activity::from))
    }
    /// The session this problem is about (batched).
    #[graphql(guard = "Gate(\"Problem.session\")")]
    async fn session(&self, ctx: &Context<'_>) -> GqlResult<Option<SessionListItem>> {
        let Some(id) = &self.0.session_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<Arc<Loaders>>()?
            .sessions
            .load_one(id.clone())
            .await?
            .map(SessionListItem::from))
    }
    /// The user who resolved it, when that was a user.
    #[graphql(guard = "Gate(\"Problem.resolver\")")]
    async fn resolver(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        let Some(id) = &self.0.resolved_by else {
            return Ok(None);
        };
        Ok(ctx
            .data::<Arc<Loaders>>()?
            .users
            .load_one(id.clone())
            .await?
            .map(User))
    }
}

#[derive(SimpleObject)]
pub struct ProblemEdge {
    pub cursor: String,
    pub node: Problem,
}

/// A page of problems, newest first.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ProblemConnection {
    pub edges: Vec<ProblemEdge>,
    pub page_info: PageInfo,
    #[graphql(skip)]
    list: (String, Option<bool>),
}

#[ComplexObject]
impl ProblemConnection {
    async fn nodes(&self) -> Vec<Problem> {
        self.edges
            .iter()
            .map(|e| Problem(e.node.0.clone()))
            .collect()
    }
    async fn total_count(&self, ctx: &Context<'_>) -> GqlResult<u64> {
        let (org, resolved) = &self.list;
        problems::count(ctx.data::<DatabaseConnection>()?, org, *resolved)
            .await
            .gql()
    }
}

/// `Org.problems`.
pub async fn problem_connection(
    ctx: &Context<'_>,
    resolved: Option<bool>,
    first: Option<i32>,
    after: Option<String>,
) -> GqlResult<ProblemConnection> {
    let org = ctx.data::<Principal>()?.org_id.clone();
    let key = super::activity::cursor_key(ctx).await?;
    let list = problems::list_name(resolved);
    let mut invalid = Vec::new();
    let limit = page_limit(first, &mut invalid);
    let cursor = after.and_then(|text| {
        Cursor::decode_for_list(&text, key, &org, &list)
            .map_err(|e| invalid.push(e.to_input(&["after"], &text)))
            .ok()
    });
    if !invalid.is_empty() {
        return Err(AppError::Invalid(invalid).to_graphql());
    }
    let db = ctx.data::<DatabaseConnection>()?;
    let (rows, has_more) = problems::page(db, &org, resolved, limit, cursor.as_ref())
        .await
        .gql()?;
    let edges: Vec<ProblemEdge> = rows
        .into_iter()
        .map(|p| ProblemEdge {
            cursor: Cursor {
                ts: p.created_at,
                id: p.id.clone(),
            }
            .encode_for_list(key, &org, &list),
            node: Problem(p),
        })
        .collect();
    let page_info = PageInfo {
        has_previous_page: cursor.is_some(),
        has_next_page: has_more,
        start_cursor: edges.first().map(|e| e.cursor.clone()),
        end_cursor: edges.last().map(|e| e.cursor.clone()),
    };
    Ok(ProblemConnection {
        edges,
        page_info,
        list: (org, resolved),
    })
}
