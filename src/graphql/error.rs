//! `AppError` on the GraphQL wire: a message with `extensions.code`,
//! `extensions.status_code` and `extensions.details`. The only place GraphQL
//! errors are shaped, so one failure carries the same extensions whoever
//! raised it: `BAD_USER_INPUT` always carries `status_code` 422, the status
//! REST answers for invalid input, whether the resolver, the parser, the
//! validator or the transport found it.

use async_graphql::{ErrorExtensionValues, ErrorExtensions as _, ServerError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::error::{AppError, AppResult};
use crate::http_error::{status, with_retry_after};

/// Resolvers return this so an [`AppError`] keeps its extensions on the way out.
pub type GqlResult<T> = Result<T, async_graphql::Error>;

pub trait IntoGql<T> {
    fn gql(self) -> GqlResult<T>;
}

impl<T> IntoGql<T> for AppResult<T> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(|e| e.to_graphql())
    }
}

pub trait ToGraphql {
    /// The error as GraphQL sees it; logs what the client must not see.
    fn to_graphql(&self) -> async_graphql::Error;
}

impl ToGraphql for AppError {
    fn to_graphql(&self) -> async_graphql::Error {
        self.log();
        let extensions = extensions_of(self);
        async_graphql::Error::new(message_of(self)).extend_with(|_, e| *e = extensions.clone())
    }
}

/// Invalid input reads as its messages, joined; everything else as itself.
fn message_of(error: &AppError) -> String {
    match error {
        AppError::Invalid(items) => items
            .iter()
            .map(|i| i.msg.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn extensions_of(error: &AppError) -> ErrorExtensionValues {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", error.code());
    extensions.set("status_code", error.status_code());
    extensions.set(
        "details",
        async_graphql::Value::from_json(error.details()).unwrap_or_default(),
    );
    extensions
}

/// The client's mistake found outside a resolver (parse, validation,
/// limits, the request's shape): `BAD_USER_INPUT` like any invalid input.
pub fn input_error(message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions = Some(extensions_of(&AppError::Invalid(Vec::new())));
    error
}

/// Parse, validation and limit errors come from async-graphql without our
/// extensions: they are the client's input, so they get `BAD_USER_INPUT`.
pub(super) fn with_codes(errors: &mut [ServerError]) {
    let input = extensions_of(&AppError::Invalid(Vec::new()));
    for error in errors {
        let ext = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if ext.get("code").is_none() {
            for key in ["code", "status_code", "details"] {
                if let Some(value) = input.get(key) {
                    ext.set(key, value.clone());
                }
            }
        }
    }
}

/// A request the transport refuses before execution (400, 415): a GraphQL
/// error with no `data` entry, as GraphQL over HTTP answers a request it
/// cannot run.
pub(super) fn refusal(status: StatusCode, message: String) -> Response {
    errors_response(status, input_error(message))
}

/// A request that never reached the schema (no valid credential): HTTP status
/// from the error, body in GraphQL's shape so GraphQL clients can show it.
pub(super) fn graphql_error_response(error: AppError) -> Response {
    error.log();
    let mut server_error = ServerError::new(error.to_string(), None);
    server_error.extensions = Some(extensions_of(&error));
    with_retry_after(&error, errors_response(status(&error), server_error))
}

fn errors_response(status: StatusCode, error: ServerError) -> Response {
    (status, axum::Json(serde_json::json!({ "errors": [error] }))).into_response()
}
