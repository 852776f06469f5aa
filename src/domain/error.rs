//! The one error type. Every failure of the service maps here; each transport
//! maps it to its wire format in one file (`rest/error.rs`: the envelope or
//! FastAPI's 422 shape; `graphql/error.rs`: error extensions). Internals are
//! logged, never sent. No transport or database types here.

use serde::Serialize;
use serde_json::{json, Value};

/// One failing input, in FastAPI's `detail[]` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidInput {
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl InvalidInput {
    pub fn new(loc: &[&str], kind: &str, msg: impl Into<String>, input: impl Into<Value>) -> Self {
        Self {
            loc: loc.iter().map(|s| Value::from(*s)).collect(),
            msg: msg.into(),
            kind: kind.to_owned(),
            input: input.into(),
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// Puts this input under a prefix, e.g. `["body", 3]` for the 4th item of a batch.
    pub fn under(mut self, prefix: Vec<Value>) -> Self {
        let mut loc = prefix;
        loc.append(&mut self.loc);
        self.loc = loc;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Authentication required")]
    Unauthenticated,
    #[error("You don't have permission to perform this action")]
    Forbidden { required_permission: &'static str },
    #[error("The requested resource was not found")]
    NotFound {
        resource_type: &'static str,
        resource_id: String,
    },
    #[error("Invalid input")]
    Invalid(Vec<InvalidInput>),
    #[error("The request body is too large")]
    PayloadTooLarge,
    #[error("The method is not allowed on this route")]
    MethodNotAllowed,
    #[error("The request took too long")]
    Timeout,
    #[error("The service is temporarily unavailable")]
    Unavailable,
    #[error("Too many requests in flight for this credential; retry shortly")]
    TooManyRequests,
    #[error("This org already has {limit} exports queued or running; retry when one is done")]
    TooManyExports { limit: u64 },
    /// A job that failed earlier: its cause was logged under `error_id` then.
    #[error("The export failed; start a new one")]
    ExportFailed { error_id: String },
    #[error("The request is not valid HTTP")]
    BadRequest,
    /// A viewer token used from a web origin it does not allow.
    #[error("This token may not be used from this origin")]
    OriginNotAllowed,
    #[error("The request URI is too long")]
    UriTooLong,
    #[error("The request's headers are too large")]
    HeadersTooLarge,
    #[error("An unexpected error occurred")]
    /// With the id that the log line and the client's answer share.
    Internal(#[source] anyhow::Error, ErrorId),
}

pub type AppResult<T> = Result<T, AppError>;

/// The `error` code a response status stands for (recorded on failed calls).
pub fn code_for_status(status: u16) -> &'static str {
    match status {
        401 => "AUTHENTICATION_FAILED",
        403 => "FORBIDDEN",
        404 => "RESOURCE_NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        408 => "REQUEST_TIMEOUT",
        413 => "PAYLOAD_TOO_LARGE",
        400 | 415 | 422 => "BAD_USER_INPUT",
        503 => "SERVICE_UNAVAILABLE",
        s if s >= 500 => "INTERNAL_SERVER_ERROR",
        _ => "BAD_REQUEST",
    }
}

impl AppError {
    pub fn not_found(resource_type: &'static str, resource_id: impl Into<String>) -> Self {
        Self::NotFound {
            resource_type,
            resource_id: resource_id.into(),
        }
    }

    pub fn invalid(input: InvalidInput) -> Self {
        Self::Invalid(vec![input])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into(), ErrorId::new())
    }

    /// Puts every invalid input under `prefix` (e.g. `["body"]`); other errors pass through.
    pub fn located(self, prefix: &[&str]) -> Self {
        match self {
            Self::Invalid(items) => Self::Invalid(
                items
                    .into_iter()
                    .map(|i| i.under(prefix.iter().map(|p| Value::from(*p)).collect()))
                    .collect(),
            ),
            other => other,
        }
    }

    pub fn internal_msg(message: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{message}"), ErrorId::new())
    }

    /// The HTTP status REST answers with; GraphQL carries it as `extensions.status_code`.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::Invalid(_) => 422,
            Self::PayloadTooLarge => 413,
            Self::MethodNotAllowed => 405,
            Self::Timeout => 408,
            Self::Unavailable => 503,
            Self::TooManyRequests | Self::TooManyExports { .. } => 429,
            Self::ExportFailed { .. } => 500,
            Self::BadRequest => 400,
            Self::OriginNotAllowed => 403,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::Internal(..) => 500,
        }
    }

    /// The stable code clients switch on, in REST `error` and GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "AUTHENTICATION_FAILED",
            Self::Forbidden { .. } => "FORBIDDEN",
            Self::NotFound { .. } => "RESOURCE_NOT_FOUND",
            Self::Invalid(_) => "BAD_USER_INPUT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Timeout => "REQUEST_TIMEOUT",
            Self::Unavailable => "SERVICE_UNAVAILABLE",
            Self::TooManyRequests | Self::TooManyExports { .. } => "TOO_MANY_REQUESTS",
            Self::ExportFailed { .. } => "INTERNAL_SERVER_ERROR",
            Self::BadRequest => "BAD_REQUEST",
            Self::OriginNotAllowed => "FORBIDDEN",
            Self::UriTooLong => "URI_TOO_LONG",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::Internal(..) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn details(&self) -> Value {
        match self {
            Self::Forbidden {
                required_permission,
            } => json!({ "required_permission": required_permission }),
            Self::NotFound {
                resource_type,
                resource_id,
            } => {
                json!({ "resource_type": resource_type, "resource_id": resource_id })
            }
            Self::Invalid(items) => json!({ "detail": items }),
            Self::Internal(_, id) => json!({ "error_id": id.0 }),
            Self::ExportFailed { error_id } => json!({ "error_id": error_id }),
            Self::TooManyExports { limit } => json!({ "limit": limit }),
            _ => json!({}),
        }
    }

    /// How long a client should wait before retrying, for the `Retry-After` header.
    pub fn retry_after_secs(&self) -> Option<&'static str> {
        match self {
            Self::TooManyRequests => Some("1"),
            // An export takes seconds to minutes.
            Self::TooManyExports { .. } => Some("10"),
            _ => None,
        }
    }

    /// Logs what the client must not see. Called once, where a transport
    /// turns the error into its answer.
    pub fn log(&self) {
        match self {
            // One line: the cause chain, and the id the client was given. No
            // backtrace: it would cost every 500 tens of kilobytes of log.
            Self::Internal(e, id) => {
                tracing::error!(error_id = %id.0, error = %format!("{e:#}"), "internal error")
            }
            Self::Unavailable => tracing::warn!("database unavailable"),
            _ => {}
        }
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

/// FastAPI's answer to a body that is not JSON at all, located at the body root.
pub fn json_invalid(e: &serde_json::Error) -> InvalidInput {
    InvalidInput::new(&[], "json_invalid", "JSON decode error", json!({}))
        .with_ctx(json!({ "error": first_line(&e.to_string()) }))
}

/// A short random id that ties a client's 500 to the server's log line.
#[derive(Debug, Clone)]
pub struct ErrorId(pub String);

impl ErrorId {
    pub fn new() -> Self {
        Self(hex::encode(rand::random::<[u8; 8]>()))
    }
}

impl Default for ErrorId {
    fn default() -> Self {
        Self::new()
    }
}
