//! Viewer tokens over REST: `POST /v1/orgs/{org_id}/viewer-tokens`, the twin
//! of GraphQL's `createViewerToken` (snake_case fields). Thin: every check is
//! the service's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::extract::{Authorized, BodyFields};
use crate::domain::error::{AppResult, InvalidInput};
use crate::domain::feed::{ActivityFilter, Status};
use crate::domain::time::format_micros;
use crate::operations::{viewer_token_operation, ORG_ROUTES};
use crate::service::viewer_tokens;
use crate::state::AppState;

/// A viewer token as asked for.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ViewerTokenRequest {
    /// Lifetime in seconds (default 900).
    #[schema(minimum = 1, maximum = 86_400, default = 900)]
    ttl_seconds: Option<i64>,
    /// The web origins (`https://app.example.com`: scheme, host and port,
    /// no path) whose pages may use the token, at most 20.
    #[schema(max_items = 20)]
    allowed_origins: Vec<String>,
    /// Only these workspaces' events (any when absent); each must be the
    /// org's (404 otherwise). At most 100.
    #[schema(max_items = 100)]
    workspace_ids: Option<Vec<String>>,
    /// Only this user's events; a user of the org (404 otherwise).
    user_id: Option<String>,
    /// A fixed feed filter the viewer can narrow but never widen.
    filter: Option<ViewerTokenFilter>,
    /// `activity:export` too: exports of the events the token may read.
    can_export: Option<bool>,
}

/// The feed filter a viewer token is fixed to (every field optional).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ViewerTokenFilter {
    #[schema(format = DateTime)]
    start_time: Option<String>,
    /// After `start_time` when both are given.
    #[schema(format = DateTime)]
    end_time: Option<String>,
    actions: Option<Vec<String>>,
    resource_types: Option<Vec<String>>,
    resource_id: Option<String>,
    user_ids: Option<Vec<String>>,
    workspace_id: Option<String>,
    app_id: Option<String>,
    endpoint_id: Option<String>,
    /// Free text, at most 200 characters.
    #[schema(max_length = 200)]
    search: Option<String>,
    #[schema(pattern = "^(success|error)$")]
    status: Option<String>,
    #[schema(minimum = 0)]
    min_duration_ms: Option<i64>,
    /// At least `min_duration_ms` when both are given.
    #[schema(minimum = 0)]
    max_duration_ms: Option<i64>,
}

/// A viewer token made: `token` is shown once, here.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ViewerTokenOut {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
    /// The token's id (`key_...`), for revocation and in the activity it records.
    pub id: String,
}

async fn create(
    State(s): State<AppState>,
    Authorized(p): Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<ViewerTokenOut>> {
    let mut body = BodyFields::parse(&headers, &body)?;
    let ttl_seconds = body.integer("ttl_seconds");
    let allowed_origins = body.strings("allowed_origins");
    let workspace_ids = body.strings("workspace_ids");
    let user_id = body.string("user_id", false);
    let can_export = body.boolean("can_export").unwrap_or(false);
    let mut more = Vec::new();
    let filter = match body.object("filter") {
        None => ActivityFilter::default(),
        Some(mut fields) => {
            let filter = ActivityFilter {
                start_time: fields.time("start_time"),
                end_time: fields.time("end_time"),
                actions: fields.strings("actions"),
                resource_types: fields.strings("resource_types"),
                resource_id: fields.string("resource_id", false),
                user_ids: fields.strings("user_ids"),
                workspace_id: fields.string("workspace_id", false),
                app_id: fields.string("app_id", false),
                endpoint_id: fields.string("endpoint_id", false),
                search: fields.string("search", false),
                status: fields
                    .string("status", false)
                    .and_then(|s| match s.as_str() {
                        "success" => Some(Status::Success),
                        "error" => Some(Status::Error),
                        _ => {
                            more.push(InvalidInput::new(
                                &["filter", "status"],
                                "enum",
                                "Input should be 'success' or 'error'",
                                s,
                            ));
                            None
                        }
                    }),
                min_duration_ms: fields.integer("min_duration_ms"),
                max_duration_ms: fields.integer("max_duration_ms"),
                confined: None,
            };
            body.absorb(fields);
            filter
        }
    };
    body.finish(more)?;
    let new = viewer_tokens::NewViewerToken {
        ttl_seconds,
        allowed_origins,
        workspace_ids,
        user_id,
        filter,
        can_export,
    };
    let made = viewer_tokens::create(&s.db, p.grant()?, new, &["body"]).await?;
    Ok(Json(ViewerTokenOut {
        token: made.token,
        expires_at: format_micros(made.expires_at),
        id: made.id,
    }))
}

/// The route, from the registry, under `/v1/orgs/{org_id}`.
pub fn router() -> Router<AppState> {
    let operation = viewer_token_operation();
    let Some(route) = operation.path.strip_prefix(ORG_ROUTES) else {
        unreachable!("{} is not under {ORG_ROUTES}", operation.path)
    };
    Router::new().route(route, post(create))
}
