//! GraphiQL at `/graphiql`, served from files embedded in the binary
//! (vendored by `scripts/vendor-graphiql.sh`): it works offline, and a
//! Content-Security-Policy keeps the page from loading anything from another
//! host.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::domain::error::AppError;

/// The page's own files and the vendored ones, by the name they are served under.
const FILES: [(&str, &str, &[u8]); 6] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/graphiql/index.html"),
    ),
    (
        "setup.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/setup.js"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
];

/// Same origin only (the WebSocket for subscriptions included); inline styles
/// are GraphiQL's own, set by its editor at run time.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; frame-ancestors 'none'";

/// The routes; they need no credential (the page asks for one in its headers editor).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/graphiql", get(|| async { file("index.html") }))
        .route("/graphiql/", get(|| async { file("index.html") }))
        .route(
            "/graphiql/{name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(CompressionLayer::new())
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => AppError::not_found("route", format!("/graphiql/{name}")).into_response(),
    }
}
