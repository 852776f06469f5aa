//! `AppError` on the REST wire: the reference's envelope, or FastAPI's 422
//! shape for invalid input. The only place REST errors are shaped.

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::domain::error::AppError;
use crate::http_error::{status, with_retry_after};

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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let response = (status(&self), axum::Json(envelope(&self))).into_response();
        with_retry_after(&self, response)
    }
}
