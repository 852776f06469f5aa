//! The activity docs (`POST /api/v5/artifacts/activity/docs`, `activityDocs`),
//! composed from the operation registry that also feeds the OpenAPI document
//! and from the export's own column lists: never a second hand-written list.

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::error::{AppError, AppResult};
use crate::domain::permission::{Permission, Role};
use crate::operations::{artifact_operations, graphql_operations, operations, Access, Method};
use crate::service::{export, problems};

#[derive(Debug, Clone, Serialize, SimpleObject, ToSchema)]
pub struct DocsField {
    pub name: String,
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub kind: String,
    pub description: String,
}

/// One documented thing: an analytic, a resource, or the artifact itself.
#[derive(Debug, Clone, Serialize, SimpleObject, ToSchema)]
pub struct DocsEntry {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub kind: String,
    pub description: String,
    pub fields: Vec<DocsField>,
}

/// An operation of either API, or (in `permissions`) a permission and what needs it.
#[derive(Debug, Clone, Serialize, SimpleObject, ToSchema)]
pub struct OperationInfo {
    /// `rest` or `graphql` (`permission` in `permissions`).
    pub api: String,
    /// The operation id (REST), root or object field (GraphQL), or the permission.
    pub operation: String,
    /// `GET`/`POST` (REST), `query`/`mutation`/`subscription` (GraphQL).
    pub method: Option<String>,
    pub path: Option<String>,
    pub permission: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, SimpleObject, ToSchema)]
pub struct PageMetadata {
    pub title: String,
    pub description: String,
    pub version: String,
    pub openapi_url: String,
    pub graphql_url: String,
    pub graphiql_url: String,
}

#[derive(Debug, Clone, Serialize, SimpleObject, ToSchema)]
pub struct Docs {
    pub name: String,
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub kind: String,
    pub description: String,
    pub artifact: Option<DocsEntry>,
    pub entries: Vec<DocsEntry>,
    pub resources: Vec<DocsEntry>,
    pub permissions: Vec<OperationInfo>,
    pub api_operations: Vec<OperationInfo>,
    pub page_metadata: Option<PageMetadata>,
}

fn fields(list: &[(&str, &str, &str)]) -> Vec<DocsField> {
    list.iter()
        .map(|(name, kind, description)| DocsField {
            name: (*name).into(),
            kind: (*kind).into(),
            description: (*description).into(),
        })
        .collect()
}

fn entry(
    id: &str,
    name: &str,
    kind: &str,
    description: &str,
    list: &[(&str, &str, &str)],
) -> DocsEntry {
    DocsEntry {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
        description: description.into(),
        fields: fields(list),
    }
}

/// The analytics, with the fields of their answers.
fn entries() -> Vec<DocsEntry> {
    let type_bounds = format!("A category, 1-{} characters", problems::MAX_TYPE_CHARS);
    let message_bounds = format!("1-{} characters", problems::MAX_MESSAGE_CHARS);
    let filters = "Filters: date_from (inclusive), date_to (exclusive; a bare date includes the day), department_ids, roles.";
    vec![
        entry(
            "session_analytics",
            "Session analytics",
            "analytic",
            &format!("POST /get, Org.sessionAnalytics. Sessions started in the range. {filters}"),
            &[
                ("sessions_count", "integer", "Sessions matching the filters (logins + emulations)"),
                ("active_profiles_count", "integer", "Profiles with a session not ended and seen within the idle window"),
                ("logins_count", "integer", "Sessions a user started as themself"),
                ("emulations_count", "integer", "Sessions in which an admin acted as the user"),
                ("profile_summary", "ProfileSummaryItem[]", "Per profile: sessions, logins, emulations, total session time, last active, active"),
                ("resources", "ActivityResources", "Departments and roles one can filter on, with their sessions in the date range"),
                ("analytics", "AnalyticsFacets", "Counts by department, by role and by day"),
            ],
        ),
        entry(
            "session_history",
            "Session history",
            "analytic",
            &format!("POST /search, Org.sessions, User.sessions. Offset pages by session start. {filters} Also active, page, page_size (1-{}), sort_order (asc, desc).", crate::domain::paging::SessionPaging::MAX_PAGE_SIZE),
            &[
                ("data", "SessionListItem[]", "Sessions with profile, department, role, kind, emulated-by, start, end, last seen, duration, active, IP, user agent"),
                ("total_count", "integer", "Sessions matching the filters, all pages"),
                ("page", "integer", "This page, from 1"),
                ("page_size", "integer", "Sessions per page"),
                ("total_pages", "integer", "Pages in all"),
            ],
        ),
        entry(
            "problems",
            "Problems",
            "analytic",
            "POST /problem and /resolve, Org.problems, createProblem, resolveProblem. Notes about something wrong, optionally linked to an activity or a session.",
            &[
                ("problem_id", "string", "prb_ id"),
                ("type", "string", &type_bounds),
                ("message", "string", &message_bounds),
                ("resolved", "boolean", "Whether it is resolved"),
                ("resolved_at", "datetime", "When it was resolved"),
                ("resolved_by", "string", "Who resolved it"),
                ("updated_at", "datetime", "Last change"),
            ],
        ),
        entry(
            "refresh",
            "Refresh",
            "operation",
            "POST /refresh, refreshActivity. Folds every new event into the hourly rollups. Summaries are exact without it (they read the rollups and the newer raw events in one snapshot).",
            &[
                ("success", "boolean", "Always true when answered"),
                ("refreshed_views", "string[]", "The rollups brought up to date"),
                ("invalidated_tags", "string[]", "Cache tags of the org's summaries and analytics, for caches in front of the gateway"),
            ],
        ),
        entry(
            "export",
            "Export",
            "operation",
            "POST /export, exportActivity; GET /exports/{upload_id} downloads it. A ZIP of CSV files with names beside ids and a manifest.json with each file's row count and SHA-256.",
            &[
                ("upload_id", "string", "exp_ id, for the download"),
                ("file_name", "string", "The ZIP's name"),
                ("row_count", "integer", "Data rows of all its CSV files"),
            ],
        ),
    ]
}

/// The record kinds of the export, with their columns.
fn resources() -> Vec<DocsEntry> {
    let csv = |id: &str, name: &str, description: &str, columns: &[&str]| DocsEntry {
        id: id.into(),
        name: name.into(),
        kind: "resource".into(),
        description: description.into(),
        fields: columns
            .iter()
            .map(|c| DocsField {
                name: (*c).into(),
                kind: "csv column".into(),
                description: String::new(),
            })
            .collect(),
    };
    vec![
        csv(
            "events",
            "Activity events",
            "events.csv: every API call of the org",
            &export::EVENT_COLUMNS,
        ),
        csv(
            "sessions",
            "Sessions",
            "sessions.csv: logins and emulations",
            &export::SESSION_COLUMNS,
        ),
        csv(
            "profiles",
            "Profiles",
            "profiles.csv: users seen through their sessions",
            &export::PROFILE_COLUMNS,
        ),
        csv(
            "problems",
            "Problems",
            "problems.csv",
            &export::PROBLEM_COLUMNS,
        ),
    ]
}

/// Every operation of both APIs: REST from the registry, GraphQL from its half of it.
fn api_operations() -> Vec<OperationInfo> {
    let rest = operations().into_iter().map(|op| OperationInfo {
        api: "rest".into(),
        operation: op.operation_id.into(),
        method: Some(
            if op.method == Method::Get {
                "GET"
            } else {
                "POST"
            }
            .into(),
        ),
        path: Some(op.path.into()),
        permission: Some(op.permission.as_str().into()),
        description: op.summary.into(),
    });
    let graphql = graphql_operations().into_iter().map(|op| OperationInfo {
        api: "graphql".into(),
        operation: op.field.into(),
        method: Some(op.kind.into()),
        path: Some("/graphql".into()),
        permission: op.permission().map(|p| p.as_str().into()),
        description: op.description.into(),
    });
    rest.chain(graphql).collect()
}

/// Each permission, the roles that hold it, and the operations that need it.
fn permissions(operations: &[OperationInfo]) -> Vec<OperationInfo> {
    Permission::ALL
        .iter()
        .map(|p| {
            let roles: Vec<&str> = Role::ALL
                .iter()
                .filter(|r| r.permissions().contains(p))
                .map(|r| r.as_str())
                .collect();
            let needed_by: Vec<&str> = operations
                .iter()
                .filter(|o| o.permission.as_deref() == Some(p.as_str()))
                .map(|o| o.operation.as_str())
                .collect();
            OperationInfo {
                api: "permission".into(),
                operation: p.as_str().into(),
                method: None,
                path: None,
                permission: Some(p.as_str().into()),
                description: format!(
                    "Held by: {}. Needed by: {}.",
                    roles.join(", "),
                    needed_by.join(", ")
                ),
            }
        })
        .collect()
}

/// The docs, narrowed to one entry or resource by `entity_id` (404 when unknown).
pub fn compose(entity_id: Option<&str>) -> AppResult<Docs> {
    let mut entries = entries();
    let mut resources = resources();
    if let Some(id) = entity_id {
        entries.retain(|e| e.id == id);
        resources.retain(|e| e.id == id);
        if entries.is_empty() && resources.is_empty() {
            return Err(AppError::not_found("docs_entry", id));
        }
    }
    let api_operations = api_operations();
    let rest_routes: Vec<String> = artifact_operations()
        .iter()
        .map(|o| o.path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    Ok(Docs {
        name: "Activity".into(),
        kind: "artifact".into(),
        description: format!(
            "Activity analytics of an org: its API calls, its users' login and emulation sessions, and problems. Routes under /api/v5/artifacts/activity: {}.",
            rest_routes.join(", ")
        ),
        artifact: Some(entry("activity", "Activity", "artifact", "The audit trail and session analytics of the credential's org", &[])),
        entries,
        resources,
        permissions: permissions(&api_operations),
        api_operations,
        page_metadata: Some(PageMetadata {
            title: "Activity".into(),
            description: "Session analytics, session history, problems, refresh, export and these docs".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            openapi_url: "/openapi.json".into(),
            graphql_url: "/graphql".into(),
            graphiql_url: "/graphiql".into(),
        }),
    })
}

/// The permission of every operation, REST and GraphQL, as the Markdown
/// table the README carries (`activity-gateway permissions` prints it; a
/// test fails when the README's copy is stale).
pub fn permission_table() -> String {
    let mut out = String::from("| API | operation | permission |\n| --- | --- | --- |\n");
    for op in operations() {
        let method = if op.method == Method::Get {
            "GET"
        } else {
            "POST"
        };
        out.push_str(&format!(
            "| REST | `{method} {}` | `{}` |\n",
            op.path,
            op.permission.as_str()
        ));
    }
    for op in graphql_operations() {
        let needs = match op.access {
            Access::Needs(p) => format!("`{}`", p.as_str()),
            Access::Open => "none (the caller's own principal and permissions)".to_owned(),
            Access::ByIdKind => "by the id's kind: `session:read` for `ses_`, `activity:export` for `exp_`, `activity:read` for the others".to_owned(),
        };
        out.push_str(&format!(
            "| GraphQL {} | `{}` | {needs} |\n",
            op.kind, op.field
        ));
    }
    out
}
