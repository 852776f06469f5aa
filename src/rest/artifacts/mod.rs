//! The routes of `002_2ae6ff76853aa2d6.txt` under `/api/v5/artifacts/activity`
//! (the org is the credential's), and the download of an export.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;

pub mod requests;

use super::extract::{Authorized, BodyFields};
use crate::docs::{self, Docs};
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::time::format_micros;
use crate::operations::{artifact_operations, download_operation, ARTIFACTS};
use crate::recording::OperationAction;
use crate::service::export::jobs;
use crate::service::problems::{self, NewProblem};
use crate::service::rollups;
use crate::service::sessions::{self, FieldNames, SessionFilter};
use crate::state::AppState;
use crate::views::{
    ExportOut, ExportState, ProblemCreatedOut, RefreshOut, ResolveOut, SessionAnalyticsOut,
    SessionSearchOut,
};

/// The session routes' spelling of their fields, as the reference has it.
const SNAKE_CASE: FieldNames = FieldNames {
    date_from: "date_from",
    date_to: "date_to",
    roles: "roles",
    page: "page",
    page_size: "page_size",
    sort_order: "sort_order",
};

/// The `/api/v5/artifacts/activity` routes, built from the operation
/// registry: each path is written once, there; here each operation names
/// its handler.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for operation in artifact_operations()
        .into_iter()
        .chain([download_operation()])
    {
        let handler: MethodRouter<AppState> = match operation.operation_id {
            "get_activity" => post(get_activity),
            "search_activity" => post(search_activity),
            "create_problem" => post(create_problem),
            "resolve_problem" => post(resolve_problem),
            "activity_refresh" => post(refresh),
            "export_activity" => post(export_activity),
            "get_activity_docs" => post(activity_docs),
            "download_activity_export" => get(download),
            other => unreachable!("the artifacts operation {other} has no handler"),
        };
        let Some(route) = operation.path.strip_prefix(ARTIFACTS) else {
            unreachable!("{} is not under {ARTIFACTS}", operation.path)
        };
        router = router.route(route, handler);
    }
    router.layer(axum::middleware::from_fn(crate::recording::publish_route))
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
    let (paging, sort) = {
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
        paging,
    )
    .await?;
    Ok(answer("read", SessionSearchOut::of(found, paging)))
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
