//! The routes of `002_2ae6ff76853aa2d6.txt` under `/api/v5/artifacts/activity`
//! (the org is the credential's), and the download of an export.

use async_graphql::SimpleObject;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{Authorized, BodyFields};
use crate::app::AppState;
use crate::docs::{self, Docs};
use crate::domain::time::format_micros;
use crate::error::{AppError, AppResult, InvalidInput};
use crate::recording::OperationAction;
use crate::service::export::jobs;
use crate::service::problems::{self, NewProblem};
use crate::service::rollups;
use crate::service::sessions::{self, SessionFilter, SNAKE_CASE};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/get", post(get_activity))
        .route("/search", post(search_activity))
        .route("/problem", post(create_problem))
        .route("/resolve", post(resolve_problem))
        .route("/refresh", post(refresh))
        .route("/export", post(export_activity))
        .route("/docs", post(activity_docs))
        .route("/exports/{upload_id}", get(download))
        .layer(axum::middleware::from_fn(crate::recording::publish_route))
}

/// A JSON answer recorded with the action the operation really performs
/// (these are all POSTs, most of them reads).
fn answer(action: &'static str, body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(OperationAction(action));
    response
}

fn session_filter(
    body: &mut BodyFields,
    with_active: bool,
    problems: &mut Vec<InvalidInput>,
) -> SessionFilter {
    let date_from = body.string("date_from", false);
    let date_to = body.string("date_to", false);
    let departments = body.strings("department_ids");
    let roles = body.strings("roles");
    let active = if with_active {
        body.boolean("active")
    } else {
        None
    };
    sessions::parse_filter(
        &SNAKE_CASE,
        &[],
        date_from.as_deref(),
        date_to.as_deref(),
        departments,
        roles,
        active,
        problems,
    )
}

// ---- answers -------------------------------------------------------------

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct ProfileSummaryItem {
    pub profile_id: String,
    pub name: String,
    pub email: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub role: String,
    pub sessions_count: i64,
    pub logins_count: i64,
    pub emulations_count: i64,
    pub total_session_seconds: i64,
    pub last_active_at: String,
    pub active: bool,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct ResourceOption {
    pub id: String,
    pub name: String,
    /// Sessions in the date range this option keeps.
    pub sessions_count: i64,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct ActivityResources {
    pub departments: Vec<ResourceOption>,
    pub roles: Vec<ResourceOption>,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct FacetItem {
    /// A department id (null: no department), a role, or a day (`YYYY-MM-DD`).
    pub key: Option<String>,
    pub name: Option<String>,
    pub sessions_count: i64,
    pub logins_count: i64,
    pub emulations_count: i64,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct AnalyticsFacets {
    pub by_department: Vec<FacetItem>,
    pub by_role: Vec<FacetItem>,
    pub by_day: Vec<FacetItem>,
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "SessionAnalytics")]
pub struct SessionAnalyticsOut {
    pub sessions_count: i64,
    pub active_profiles_count: i64,
    pub logins_count: i64,
    pub emulations_count: i64,
    pub profile_summary: Vec<ProfileSummaryItem>,
    pub resources: ActivityResources,
    pub analytics: Option<AnalyticsFacets>,
}

fn facets(list: Vec<sessions::Facet>) -> Vec<FacetItem> {
    list.into_iter()
        .map(|f| FacetItem {
            key: f.key,
            name: f.name,
            sessions_count: f.counts.sessions,
            logins_count: f.counts.logins,
            emulations_count: f.counts.emulations,
        })
        .collect()
}

fn options(list: Vec<sessions::FilterOption>) -> Vec<ResourceOption> {
    list.into_iter()
        .map(|o| ResourceOption {
            id: o.id,
            name: o.name,
            sessions_count: o.sessions,
        })
        .collect()
}

impl From<sessions::SessionAnalytics> for SessionAnalyticsOut {
    fn from(a: sessions::SessionAnalytics) -> Self {
        Self {
            sessions_count: a.counts.sessions,
            active_profiles_count: a.active_profiles,
            logins_count: a.counts.logins,
            emulations_count: a.counts.emulations,
            profile_summary: a
                .profiles
                .into_iter()
                .map(|p| ProfileSummaryItem {
                    profile_id: p.user_id,
                    name: p.name,
                    email: p.email,
                    department_id: p.department_id,
                    department_name: p.department_name,
                    role: p.role,
                    sessions_count: p.counts.sessions,
                    logins_count: p.counts.logins,
                    emulations_count: p.counts.emulations,
                    total_session_seconds: p.total_session_micros / 1_000_000,
                    last_active_at: format_micros(p.last_active),
                    active: p.active,
                })
                .collect(),
            resources: ActivityResources {
                departments: options(a.departments),
                roles: options(a.roles),
            },
            analytics: Some(AnalyticsFacets {
                by_department: facets(a.by_department),
                by_role: facets(a.by_role),
                by_day: facets(a.by_day),
            }),
        }
    }
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "Session")]
pub struct SessionListItem {
    /// `session_id` in REST, `id` in GraphQL.
    #[serde(rename = "session_id")]
    #[schema(value_type = String)]
    #[graphql(owned)]
    pub id: async_graphql::ID,
    pub profile_id: String,
    pub profile_name: String,
    pub profile_email: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub role: String,
    /// `login` or `emulation`.
    pub kind: String,
    /// The admin acting as the profile, for emulations.
    pub emulated_by: Option<String>,
    pub emulated_by_name: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub last_seen_at: String,
    pub duration_seconds: i64,
    pub active: bool,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl From<sessions::SessionItem> for SessionListItem {
    fn from(s: sessions::SessionItem) -> Self {
        Self {
            duration_seconds: s.duration_micros() / 1_000_000,
            id: async_graphql::ID(s.id),
            profile_id: s.user_id,
            profile_name: s.user_name,
            profile_email: s.user_email,
            department_id: s.department_id,
            department_name: s.department_name,
            role: s.role,
            kind: s.kind,
            emulated_by: s.emulated_by,
            emulated_by_name: s.emulated_by_name,
            started_at: format_micros(s.started_at),
            ended_at: s.ended_at.map(format_micros),
            last_seen_at: format_micros(s.last_seen_at),
            active: s.active,
            ip_address: s.ip,
            user_agent: s.user_agent,
        }
    }
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "SessionPage")]
pub struct SessionSearchOut {
    pub data: Vec<SessionListItem>,
    pub total_count: u64,
    pub page: u64,
    pub page_size: u64,
    pub total_pages: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ProblemCreatedOut {
    pub problem_id: String,
    pub success: bool,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResolveOut {
    pub problem_id: String,
    pub resolved: bool,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "RefreshResult")]
pub struct RefreshOut {
    pub success: bool,
    pub refreshed_views: Vec<String>,
    pub invalidated_tags: Vec<String>,
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "ExportResult")]
pub struct ExportOut {
    pub upload_id: String,
    pub file_name: String,
    /// The data rows of all its CSV files; 0 until done.
    pub row_count: u64,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
}

impl From<rollups::RefreshAnswer> for RefreshOut {
    fn from(done: rollups::RefreshAnswer) -> Self {
        Self {
            success: true,
            refreshed_views: done.views.iter().map(|v| (*v).to_owned()).collect(),
            invalidated_tags: done.tags,
        }
    }
}

impl From<&entity::export::Model> for ExportOut {
    fn from(job: &entity::export::Model) -> Self {
        Self {
            upload_id: job.id.clone(),
            file_name: job.file_name.clone(),
            row_count: job.row_count.max(0) as u64,
            status: jobs::JobStatus::of(job).as_str().to_owned(),
        }
    }
}

/// An export that is not done yet, as the download route answers it (202).
#[derive(Serialize, ToSchema)]
pub struct ExportState {
    pub upload_id: String,
    pub file_name: String,
    /// `pending` or `running`.
    pub status: String,
    /// 0 until done.
    pub row_count: u64,
    /// Rows written so far, and the rows the export will hold (known once running).
    pub rows_written: u64,
    pub rows_expected: u64,
    /// `rows_written / rows_expected`, from 0 to 1.
    pub progress: f64,
    pub created_at: String,
    pub expires_at: Option<String>,
}

impl From<&entity::export::Model> for ExportState {
    fn from(job: &entity::export::Model) -> Self {
        Self {
            upload_id: job.id.clone(),
            file_name: job.file_name.clone(),
            status: jobs::JobStatus::of(job).as_str().to_owned(),
            row_count: job.row_count.max(0) as u64,
            rows_written: job.rows_written.max(0) as u64,
            rows_expected: job.rows_expected.max(0) as u64,
            progress: jobs::progress(job),
            created_at: format_micros(job.created_at),
            expires_at: job.expires_at.map(format_micros),
        }
    }
}

// ---- request bodies, for the OpenAPI document -----------------------------
//
// They state every rule a single field obeys (required, lengths, ranges,
// enums, formats, no NUL); rules between fields are in the descriptions.

use super::openapi::date_or_datetime;

/// A role a session filter keeps.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleName {
    Admin,
    Member,
    Viewer,
}

/// The order of a session page, by session start.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SortOrder {
    Desc,
    Asc,
}

/// The filter of the session routes. `date_to` must be after `date_from`
/// (422 at `["body", "date_to"]` otherwise).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionAnalyticsRequest {
    /// ISO 8601 date or datetime; sessions started at or after it.
    #[schema(schema_with = date_or_datetime)]
    date_from: Option<String>,
    /// ISO 8601 date or datetime; sessions started before it (a bare date
    /// includes that day). After `date_from`.
    #[schema(schema_with = date_or_datetime)]
    date_to: Option<String>,
    #[schema(inline, value_type = Option<Vec<String>>, pattern = "^[^\\u0000]*$")]
    department_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
}

/// A page of sessions. `date_to` must be after `date_from` (422 at
/// `["body", "date_to"]` otherwise).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionSearchRequest {
    #[schema(schema_with = date_or_datetime)]
    date_from: Option<String>,
    /// After `date_from`.
    #[schema(schema_with = date_or_datetime)]
    date_to: Option<String>,
    #[schema(inline, value_type = Option<Vec<String>>, pattern = "^[^\\u0000]*$")]
    department_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
    /// Only active (`true`) or only inactive (`false`) sessions.
    active: Option<bool>,
    /// From 1 (default 1).
    #[schema(minimum = 1, maximum = 1_000_000, default = 1)]
    page: Option<i64>,
    #[schema(minimum = 1, maximum = 200, default = 20)]
    page_size: Option<i64>,
    /// `desc` (default) or `asc`, by session start.
    #[schema(value_type = Option<SortOrder>)]
    sort_order: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProblemRequest {
    /// 1 to 100 characters, not all blank (Unicode White_Space, as Rust's
    /// `trim` sees it).
    #[serde(rename = "type")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    kind: String,
    /// 1 to 4,000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    message: String,
    /// An activity of the org this problem is about (404 if unknown).
    #[schema(pattern = "^[^\\u0000]*$")]
    activity_id: Option<String>,
    /// A session of the org this problem is about (404 if unknown).
    #[schema(pattern = "^[^\\u0000]*$")]
    session_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResolveRequest {
    /// A problem of the org (404 if unknown).
    #[schema(pattern = "^[^\\u0000]*$")]
    problem_id: String,
    /// Default true; false unresolves.
    resolved: Option<bool>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DocsRequest {
    /// Narrows `entries` and `resources` to this id.
    #[schema(pattern = "^[^\\u0000]*$")]
    entity_id: Option<String>,
}

// ---- handlers ---------------------------------------------------------------

async fn get_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut body = BodyFields::parse(&headers, &body)?;
    let mut problems = Vec::new();
    let filter = session_filter(&mut body, false, &mut problems);
    body.finish(problems)?;
    let analytics = sessions::analytics(&s.db, &p.org_id, &filter, s.settings.activeness()).await?;
    Ok(answer("read", SessionAnalyticsOut::from(analytics)))
}

async fn search_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut body = BodyFields::parse(&headers, &body)?;
    let mut problems = Vec::new();
    let filter = session_filter(&mut body, true, &mut problems);
    let (page, page_size, sort) = {
        let (page, size, sort) = (
            body.integer("page"),
            body.integer("page_size"),
            body.string("sort_order", false),
        );
        sessions::parse_paging(&SNAKE_CASE, page, size, sort.as_deref(), &mut problems)
    };
    body.finish(problems)?;
    let found = sessions::search(
        &s.db,
        &p.org_id,
        None,
        &filter,
        s.settings.activeness(),
        sort,
        page,
        page_size,
    )
    .await?;
    Ok(answer(
        "read",
        SessionSearchOut {
            total_pages: found.total.div_ceil(page_size),
            total_count: found.total,
            page,
            page_size,
            data: found.items.into_iter().map(SessionListItem::from).collect(),
        },
    ))
}

async fn create_problem(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut body = BodyFields::parse(&headers, &body)?;
    let new = NewProblem {
        kind: body.string("type", true).unwrap_or_default(),
        message: body.string("message", true).unwrap_or_default(),
        activity_id: body.string("activity_id", false),
        session_id: body.string("session_id", false),
    };
    body.finish(vec![])?;
    let created = problems::create(&s.db, p.grant()?, new)
        .await
        .map_err(|e| e.located(&["body"]))?;
    Ok(answer(
        "create",
        ProblemCreatedOut {
            problem_id: created.id,
            success: true,
            message: "Problem created".into(),
        },
    ))
}

async fn resolve_problem(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let mut body = BodyFields::parse(&headers, &body)?;
    let id = body.string("problem_id", true);
    let resolved = body.boolean("resolved").unwrap_or(true);
    body.finish(vec![])?;
    let problem =
        problems::set_resolved(&s.db, p.grant()?, &id.unwrap_or_default(), resolved).await?;
    Ok(answer(
        "update",
        ResolveOut {
            problem_id: problem.id,
            resolved: problem.resolved,
            updated_at: format_micros(problem.updated_at),
        },
    ))
}

async fn refresh(State(s): State<AppState>, Authorized(p): Authorized) -> AppResult<Response> {
    let done = rollups::refresh_for(&s.db, p.grant()?).await?;
    Ok(answer(
        "execute",
        RefreshOut {
            success: true,
            refreshed_views: done.views.iter().map(|v| (*v).to_owned()).collect(),
            invalidated_tags: done.tags,
        },
    ))
}

/// Queues the export; it runs on whichever replica claims it.
async fn export_activity(
    State(s): State<AppState>,
    Authorized(p): Authorized,
) -> AppResult<Response> {
    let job = s.exports.request(&s.db, p.grant()?).await?;
    Ok(answer("execute", ExportOut::from(&job)))
}

async fn activity_docs(_: Authorized, headers: HeaderMap, body: Bytes) -> AppResult<Response> {
    let mut body = BodyFields::parse(&headers, &body)?;
    let entity_id = body.string("entity_id", false);
    body.finish(vec![])?;
    let composed: Docs = docs::compose(entity_id.as_deref())?;
    Ok(answer("read", composed))
}

/// How long a client waits before asking about an export again.
const RETRY_AFTER_SECS: &str = "1";

/// The job's state until it is done (202, `Retry-After`), then the ZIP,
/// streamed from the database or the export directory.
async fn download(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    Path(upload_id): Path<String>,
) -> AppResult<Response> {
    let found = jobs::find(&s.db, p.grant()?, &s.settings.export_dir, &upload_id).await?;
    let (export, body) = match found {
        jobs::Download::Waiting(job) => {
            let mut response = answer("read", ExportState::from(&job));
            *response.status_mut() = axum::http::StatusCode::ACCEPTED;
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            return Ok(response);
        }
        jobs::Download::Failed(job) => {
            return Err(AppError::ExportFailed {
                error_id: job.error_id.unwrap_or_default(),
            })
        }
        jobs::Download::File(export, path) => {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(AppError::internal)?;
            (
                export,
                Body::from_stream(tokio_util::io::ReaderStream::new(file)),
            )
        }
        jobs::Download::Chunks(export) => {
            let chunks = jobs::chunks(s.db.clone(), export.id.clone());
            (export, Body::from_stream(chunks))
        }
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export.file_name.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, export.byte_size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
