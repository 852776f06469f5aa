//! Refusals made before any handler runs, and the envelope put on answers
//! that layers or axum produced without one.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::error::AppError;

/// The longest request URI answered; longer is 414 in the envelope.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) answered; more is 431 in the
/// envelope. (Past hyper's own read buffer, some 400 KiB, hyper answers
/// before the router sees the request; `serve::Enveloped` puts that answer
/// in the envelope too.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub(super) async fn refuse_oversized_heads(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if uri > MAX_URI_BYTES {
        AppError::UriTooLong.into_response()
    } else if headers > MAX_HEADER_BYTES {
        AppError::HeadersTooLarge.into_response()
    } else {
        next.run(req).await
    }
}

/// Paths and query strings whose decoded text a backend could not store (a
/// NUL character) are refused before anything else sees them: 422 at
/// `["path"]` or `["query", name]`, the same on every backend.
pub(super) async fn refuse_unstorable_text(req: Request, next: Next) -> Response {
    use crate::domain::text::{is_storable, unstorable_at};
    let uri = req.uri();
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    let mut problems = Vec::new();
    if !is_storable(&path) {
        problems.push(unstorable_at(vec!["path".into()], path.as_ref()));
    }
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if !is_storable(&name) || !is_storable(&value) {
            problems.push(unstorable_at(
                vec!["query".into(), name.as_ref().into()],
                value.as_ref(),
            ));
        }
    }
    if problems.is_empty() {
        next.run(req).await
    } else {
        AppError::Invalid(problems).into_response()
    }
}

pub(super) fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let cause = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    AppError::internal_msg(format!("handler panicked: {cause}")).into_response()
}

/// Responses that layers or axum produced without our envelope (413 from the
/// body limit, 408 from the timeout, 405 from the method router) get it here,
/// so every error a client sees has one shape.
pub(super) async fn envelope_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => AppError::not_found("route", path),
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::REQUEST_TIMEOUT => AppError::Timeout,
        StatusCode::SERVICE_UNAVAILABLE => AppError::Unavailable,
        StatusCode::URI_TOO_LONG => AppError::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => AppError::HeadersTooLarge,
        s if s.is_server_error() => AppError::internal_msg(format!("unenveloped {s} response")),
        _ => AppError::invalid(crate::domain::error::InvalidInput::new(
            &["request"],
            "invalid_request",
            "The request is invalid",
            serde_json::Value::Null,
        )),
    };
    let mut enveloped = error.into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) = response.headers().get(header::ALLOW) {
            enveloped.headers_mut().insert(header::ALLOW, allow.clone());
        }
    }
    enveloped
}
