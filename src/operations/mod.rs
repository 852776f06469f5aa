//! The registry: every REST operation (`routes.rs`) and every GraphQL
//! field that reads or changes data (`fields.rs`), each with the permission
//! it needs. The OpenAPI document, the activity docs, the REST router and
//! the GraphQL guards are composed from it, never from a second hand-written
//! list; a test calls every operation through the real router, so the two
//! cannot drift.

use std::collections::HashMap;

use crate::domain::permission::Permission;

mod fields;
mod routes;

pub use fields::*;
pub use routes::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// The registry's method of an HTTP method; `None` for any other.
    pub fn of(method: &axum::http::Method) -> Option<Self> {
        match *method {
            axum::http::Method::GET => Some(Self::Get),
            axum::http::Method::POST => Some(Self::Post),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    Text,
    DateTime,
    Int {
        min: i64,
        max: Option<i64>,
        default: Option<i64>,
    },
    Choice(&'static [&'static str]),
    /// An opaque, sealed pagination cursor.
    Cursor,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub required: bool,
    pub description: &'static str,
    pub kind: ParamKind,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub permission: Permission,
    pub params: Vec<Param>,
    /// The component schema of the 200 answer ([`ZIP_FILE`]: a ZIP download).
    pub response: &'static str,
    pub body: Body,
    pub tag: &'static str,
}

/// The answer of a download: a ZIP file, not JSON.
pub const ZIP_FILE: &str = "zip";

/// What an operation's request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// A JSON array of this component schema, at most `max` items.
    ArrayOf {
        schema: &'static str,
        max: usize,
    },
    /// A JSON object of this component schema; an empty body reads as `{}`
    /// unless `required`.
    Object {
        schema: &'static str,
        required: bool,
    },
}

/// Every REST operation the gateway serves.
pub fn operations() -> Vec<Operation> {
    let mut all = activity_operations();
    all.push(ingest_operation());
    all.extend(log_operations());
    all.push(viewer_token_operation());
    all.extend(artifact_operations());
    all.push(download_operation());
    all
}

/// The permission every REST route needs, by method and route pattern: what
/// the transport enforces ([`crate::rest::extract::Authorized`]).
pub fn rest_permission(method: &axum::http::Method, route: &str) -> Option<Permission> {
    static BY_ROUTE: std::sync::LazyLock<HashMap<(Method, &'static str), Permission>> =
        std::sync::LazyLock::new(|| {
            operations()
                .into_iter()
                .map(|op| ((op.method, op.path), op.permission))
                .collect()
        });
    BY_ROUTE.get(&(Method::of(method)?, route)).copied()
}

/// Whether a viewer token may call the REST route (see
/// [`VIEWER_TOKEN_ROUTES`]).
pub fn rest_viewer_token_may(method: &axum::http::Method, route: &str) -> bool {
    Method::of(method).is_some_and(|method| VIEWER_TOKEN_ROUTES.contains(&(method, route)))
}
