//! What every HTTP answer to an error carries, whichever transport shapes
//! its body: the status the error stands for, and `Retry-After` when the
//! client should come back later.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::domain::error::AppError;

pub fn status(error: &AppError) -> StatusCode {
    StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn with_retry_after(error: &AppError, mut response: Response) -> Response {
    if let Some(seconds) = error.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    response
}
