//! Extractors whose rejections come out in the contract's 422 shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::{AppError, InvalidInput};

/// `axum::Json`, but a bad body answers FastAPI's 422 and an oversized one 413.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::PayloadTooLarge;
        }
        AppError::invalid(json_body_error(&rejection))
    }
}

fn json_body_error(rejection: &JsonRejection) -> InvalidInput {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => InvalidInput::new(
            &["header", "content-type"],
            "content_type",
            "Expected request with `Content-Type: application/json`",
            Value::Null,
        ),
        JsonRejection::JsonSyntaxError(e) => {
            InvalidInput::new(&["body"], "json_invalid", "JSON decode error", json!({}))
                .with_ctx(json!({ "error": first_line(&e.body_text()) }))
        }
        JsonRejection::JsonDataError(e) => InvalidInput::new(
            &["body"],
            "model_attributes_type",
            first_line(&e.body_text()),
            json!({}),
        ),
        other => InvalidInput::new(
            &["body"],
            "json_invalid",
            first_line(&other.body_text()),
            json!({}),
        ),
    }
}

/// serde's messages carry the line and column, never internals; keep them short.
pub fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}
