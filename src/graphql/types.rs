//! GraphQL node types. They wrap service results; entities never derive
//! GraphQL traits, so the API does not change when a table does. Every level
//! of the hierarchy has the same `activity` and `activitySummary` fields.

use super::error::ToGraphql;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Interface, Object, SimpleObject, ID};
use sea_orm::DatabaseConnection;

use super::activity::{
    activity_connection, activity_summary, cursor_key, page_limit, Activity, ActivityConnection,
    ActivityFilterInput, ActivitySummary,
};
use super::error::{GqlResult, IntoGql};
use super::guard::Gate;
use crate::auth::Principal;
use crate::domain::error::{AppError, AppResult};
use crate::domain::feed::{Cursor, Scope};
use crate::domain::paging::PageSize;
use crate::service::directory;
use crate::views::{SessionAnalyticsOut, SessionListItem, SessionSearchOut};

use super::sessions::{
    problem_connection, session_analytics, session_page, Problem, ProblemConnection,
    SessionFilterInput, SortOrder,
};

/// Anything with a global id; `node(id:)` resolves every one.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Org(Org),
    Workspace(Workspace),
    App(App),
    Endpoint(Endpoint),
    Augmentation(Augmentation),
    User(User),
    Activity(Activity),
    Problem(Problem),
    Session(SessionListItem),
    Department(Department),
    Export(Export),
}

impl From<directory::Node> for Node {
    fn from(n: directory::Node) -> Self {
        match n {
            directory::Node::Org(m) => Node::Org(Org(m)),
            directory::Node::Workspace(m) => Node::Workspace(Workspace(m)),
            directory::Node::App(m) => Node::App(App(m)),
            directory::Node::Endpoint(m) => Node::Endpoint(Endpoint(m)),
            directory::Node::Augmentation(m) => Node::Augmentation(Augmentation(m)),
            directory::Node::User(m) => Node::User(User(m)),
            directory::Node::Activity(m) => Node::Activity(Activity::from(m)),
            directory::Node::Problem(m) => Node::Problem(Problem(m)),
            directory::Node::Session(s) => Node::Session(SessionListItem::from(s)),
            directory::Node::Department(m) => Node::Department(Department(m)),
            directory::Node::Export(m) => Node::Export(Export(m)),
        }
    }
}

type Children<T> = Connection<String, T, EmptyFields, EmptyFields>;

/// Every connection page (feeds, children, sessions, problems) costs its rows
/// times what each row selects, so the complexity limit sees 60 aliased pages
/// of 200, or a fan-out of children, for what they are.
fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    (first.map_or(PageSize::DEFAULT, |n| {
        n.clamp(1, PageSize::MAX as i32) as u64
    }) as usize)
        .saturating_mul(child_complexity)
}

/// A summary is a few aggregate queries whatever it selects.
const SUMMARY_COST: usize = 10;

/// A page of children in id order. The cursor is the last id seen, sealed
/// to its list (`list` names the kind of child and the parent) like every
/// other cursor.
async fn children<M, T>(
    ctx: &Context<'_>,
    list: String,
    first: Option<i32>,
    after: Option<String>,
    fetch: impl AsyncFnOnce(&DatabaseConnection, &str, Option<&str>, u64) -> AppResult<(Vec<M>, bool)>,
    id_of: impl Fn(&M) -> String,
    wrap: impl Fn(M) -> T,
) -> GqlResult<Children<T>>
where
    T: async_graphql::OutputType,
{
    let org = &ctx.data::<Principal>()?.org_id;
    let key = cursor_key(ctx).await?;
    let mut problems = Vec::new();
    let limit = page_limit(first, &mut problems);
    let after = after.and_then(|text| {
        Cursor::decode_for_list(&text, key, org, &list)
            .map_err(|e| problems.push(e.to_input(&["after"], &text)))
            .ok()
    });
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).to_graphql());
    }
    let db = ctx.data::<DatabaseConnection>()?;
    let (rows, has_more) = fetch(db, org, after.as_ref().map(|c| c.id.as_str()), limit)
        .await
        .gql()?;
    let mut connection = Connection::new(after.is_some(), has_more);
    connection.edges.extend(rows.into_iter().map(|m| {
        let cursor = Cursor {
            ts: 0,
            id: id_of(&m),
        }
        .encode_for_list(key, org, &list);
        Edge::new(cursor, wrap(m))
    }));
    Ok(connection)
}

pub struct Org(pub entity::org::Model);

#[Object]
impl Org {
    async fn id(&self) -> ID {
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
        complexity = "page_cost(page_size.map(|n| n.clamp(1, 200)), child_complexity)"
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

pub struct Workspace(pub entity::workspace::Model);

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    #[graphql(
        guard = "Gate(\"Workspace.apps\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn apps(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<App>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("apps|{id}"),
            first,
            after,
            async |db, org, after, n| directory::apps_of_workspace(db, org, &id, after, n).await,
            |m| m.id.clone(),
            App,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Workspace.augmentations\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn augmentations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<Augmentation>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("augmentations|{id}"),
            first,
            after,
            async |db, org, after, n| {
                directory::augmentations_of_workspace(db, org, &id, after, n).await
            },
            |m| m.id.clone(),
            Augmentation,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Workspace.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(
            ctx,
            Scope::Workspace(self.0.id.clone()),
            first,
            after,
            filter,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Workspace.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Workspace(self.0.id.clone()), hours, filter).await
    }
}

pub struct App(pub entity::app::Model);

#[Object]
impl App {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn workspace_id(&self) -> ID {
        ID(self.0.workspace_id.clone())
    }
    #[graphql(
        guard = "Gate(\"App.endpoints\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn endpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<Endpoint>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("endpoints|{id}"),
            first,
            after,
            async |db, org, after, n| directory::endpoints_of_app(db, org, &id, after, n).await,
            |m| m.id.clone(),
            Endpoint,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"App.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(ctx, Scope::App(self.0.id.clone()), first, after, filter).await
    }
    #[graphql(
        guard = "Gate(\"App.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::App(self.0.id.clone()), hours, filter).await
    }
}

pub struct Endpoint(pub entity::endpoint::Model);

#[Object]
impl Endpoint {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn method(&self) -> &str {
        &self.0.method
    }
    async fn path(&self) -> &str {
        &self.0.path
    }
    async fn app_id(&self) -> ID {
        ID(self.0.app_id.clone())
    }
    #[graphql(
        guard = "Gate(\"Endpoint.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(
            ctx,
            Scope::Endpoint(self.0.id.clone()),
            first,
            after,
            filter,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Endpoint.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Endpoint(self.0.id.clone()), hours, filter).await
    }
}

pub struct Augmentation(pub entity::augmentation::Model);

#[Object]
impl Augmentation {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn total_stages(&self) -> i32 {
        self.0.total_stages
    }
    #[graphql(
        guard = "Gate(\"Augmentation.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(
            ctx,
            Scope::Augmentation(self.0.id.clone()),
            first,
            after,
            filter,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Augmentation.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Augmentation(self.0.id.clone()), hours, filter).await
    }
}

pub struct User(pub entity::user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
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
        complexity = "page_cost(page_size.map(|n| n.clamp(1, 200)), child_complexity)"
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
