//! The artifacts operations' request bodies, for the OpenAPI document.

use utoipa::ToSchema;

// They state every rule a single field obeys (required, lengths, ranges,
// enums, formats, no NUL); rules between fields are in the descriptions.

use crate::rest::openapi::date_or_datetime;

/// A role a session filter keeps.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleName {
    Admin,
    Member,
    Viewer,
}

/// The order of a session page, by session start.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SortOrder {
    Desc,
    Asc,
}

/// The filter of the session routes. `date_to` must be after `date_from`
/// (422 at `["body", "date_to"]` otherwise).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionAnalyticsRequest {
    /// ISO 8601 date or datetime; sessions started at or after it.
    #[schema(schema_with = date_or_datetime)]
    date_from: Option<String>,
    /// ISO 8601 date or datetime; sessions started before it (a bare date
    /// includes that day). After `date_from`.
    #[schema(schema_with = date_or_datetime)]
    date_to: Option<String>,
    #[schema(inline, value_type = Option<Vec<String>>, pattern = "^[^\\u0000]*$")]
    department_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
}

/// A page of sessions. `date_to` must be after `date_from` (422 at
/// `["body", "date_to"]` otherwise).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionSearchRequest {
    #[schema(schema_with = date_or_datetime)]
    date_from: Option<String>,
    /// After `date_from`.
    #[schema(schema_with = date_or_datetime)]
    date_to: Option<String>,
    #[schema(inline, value_type = Option<Vec<String>>, pattern = "^[^\\u0000]*$")]
    department_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
    /// Only active (`true`) or only inactive (`false`) sessions.
    active: Option<bool>,
    /// From 1 (default 1).
    #[schema(minimum = 1, maximum = 1_000_000, default = 1)]
    page: Option<i64>,
    #[schema(minimum = 1, maximum = 200, default = 20)]
    page_size: Option<i64>,
    /// `desc` (default) or `asc`, by session start.
    #[schema(value_type = Option<SortOrder>)]
    sort_order: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProblemRequest {
    /// 1 to 100 characters, not all blank (Unicode White_Space, as Rust's
    /// `trim` sees it).
    #[serde(rename = "type")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    kind: String,
    /// 1 to 4,000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    message: String,
    /// An activity of the org this problem is about (404 if unknown).
    #[schema(pattern = "^[^\\u0000]*$")]
    activity_id: Option<String>,
    /// A session of the org this problem is about (404 if unknown).
    #[schema(pattern = "^[^\\u0000]*$")]
    session_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResolveRequest {
    /// A problem of the org (404 if unknown).
    #[schema(pattern = "^[^\\u0000]*$")]
    problem_id: String,
    /// Default true; false unresolves.
    resolved: Option<bool>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DocsRequest {
    /// Narrows `entries` and `resources` to this id.
    #[schema(pattern = "^[^\\u0000]*$")]
    entity_id: Option<String>,
}

// ---- handlers ---------------------------------------------------------------
