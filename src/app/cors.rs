//! CORS for viewer tokens: a page on another origin may read an answer only
//! when the request's credential is a viewer token that allows that origin.
//! API keys and user tokens never get CORS headers: they are not for
//! browsers on other origins.
//!
//! A preflight carries no credential, so it cannot know the token: the API
//! routes (`/graphql`, `/v1/...`, `/api/...`) answer a preflight with the
//! methods and headers the viewer page needs only when some live viewer
//! token allows its origin (one indexed lookup), and without any CORS
//! header otherwise. The request itself is then checked against its own
//! token: refused with 403 from an origin the token does not allow, and
//! answered without `Access-Control-Allow-Origin` to any other credential.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::state::AppState;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

fn is_api(path: &str) -> bool {
    path == "/graphql" || path.starts_with("/v1/") || path.starts_with("/api/")
}

pub(super) async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let api = is_api(req.uri().path());
    if api
        && req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let text = origin.to_str().unwrap_or_default();
        let allowed = match crate::service::viewer_tokens::origin_is_allowed(&state.db, text).await
        {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up a preflight's origin; answering without CORS");
                false
            }
        };
        if !allowed {
            return (
                StatusCode::NO_CONTENT,
                [(header::VARY, HeaderValue::from_static("Origin"))],
            )
                .into_response();
        }
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("authorization, content-type"),
                ),
                (
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(PREFLIGHT_MAX_AGE),
                ),
                (header::VARY, HeaderValue::from_static("Origin")),
            ],
        )
            .into_response();
    }
    let mut response = next.run(req).await;
    if !api {
        return response;
    }
    let allowed = response
        .extensions()
        .get::<Principal>()
        .and_then(|p| p.viewer_token.as_ref())
        .is_some_and(|token| token.allows_origin(origin.to_str().unwrap_or_default()));
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}
