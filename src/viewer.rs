//! The activity viewer at `/viewer`: a page for a platform's customers, on
//! the public GraphQL API with a viewer token, served from files embedded in
//! the binary (the charting library vendored by `scripts/vendor-viewer.sh`).
//!
//! Its Content-Security-Policy allows nothing inline, no `eval` and nothing
//! from another host. It may be framed only by the origins of the viewer
//! token named (by its public id) in `?token_id=`; without one, by no page.
//! The token itself never reaches the server in the page's URL: the page
//! reads it from the fragment (`#token=...`) or a `postMessage`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;

use crate::domain::error::AppError;
use crate::state::AppState;

/// The page's files, by the name they are served under.
const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/viewer/index.html"),
    ),
    (
        "viewer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/viewer/viewer.js"),
    ),
    (
        "viewer.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/viewer/viewer.css"),
    ),
    (
        "uplot.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/viewer/uplot.min.js"),
    ),
    (
        "uplot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/viewer/uplot.min.css"),
    ),
];

/// Everything from this origin only, nothing inline, no `eval`.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

#[derive(serde::Deserialize)]
struct PageQuery {
    token_id: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/viewer", get(page))
        .route("/viewer/", get(page))
        .route(
            "/viewer/{name}",
            get(|Path(name): Path<String>| async move { file(&name, "'none'") }),
        )
        .layer(CompressionLayer::new())
}

async fn page(State(state): State<AppState>, Query(query): Query<PageQuery>) -> Response {
    let origins = match query.token_id.as_deref() {
        Some(id) => match crate::service::viewer_tokens::frame_origins(&state.db, id).await {
            Ok(origins) => origins,
            Err(e) => return e.into_response(),
        },
        None => Vec::new(),
    };
    // Allowed origins were checked to be bare `scheme://host[:port]` when
    // the token was made, so they are safe in a header.
    let ancestors = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    file("index.html", &ancestors)
}

/// A file, under the policy with `frame-ancestors` as given.
fn file(name: &str, ancestors: &str) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return AppError::not_found("route", format!("/viewer/{name}")).into_response();
    };
    let policy = format!("{POLICY}; frame-ancestors {ancestors}");
    let mut response = ([(header::CONTENT_TYPE, *content_type)], *body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
