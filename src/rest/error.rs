//! `AppError` on the REST wire: the reference's envelope, or FastAPI's 422
//! shape for invalid input. The only place REST errors are shaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::domain::error::AppError;

pub fn status(error: &AppError) -> StatusCode {
    StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The reference's envelope (422 keeps FastAPI's `detail` shape instead).
pub fn envelope(error: &AppError) -> Value {
    match error {
        AppError::Invalid(items) => json!({ "detail": items }),
        _ => json!({
            "error": error.code(),
            "message": error.to_string(),
            "details": error.details(),
            "timestamp": chrono::Utc::now().naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            "status_code": error.status_code(),
        }),
    }
}

/// Adds `Retry-After` when the error asks the client to come back later.
pub fn with_retry_after(error: &AppError, mut response: Response) -> Response {
    if let Some(seconds) = error.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let response = (status(&self), axum::Json(envelope(&self))).into_response();
        with_retry_after(&self, response)
    }
}
