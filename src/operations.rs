//! The registry of REST operations: one list that the OpenAPI document (and the
//! activity docs) are composed from, never a second hand-written list. A test
//! calls every operation through the real router, so the two cannot drift.

use std::collections::HashMap;

use crate::domain::paging::{Hours, PageSize};
use crate::domain::permission::Permission;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
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

const fn path(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: ParamIn::Path,
        required: true,
        description,
        kind: ParamKind::Text,
    }
}

const fn query(name: &'static str, description: &'static str, kind: ParamKind) -> Param {
    Param {
        name,
        location: ParamIn::Query,
        required: false,
        description,
        kind,
    }
}

const ORG: Param = path("org_id", "The org (must be the credential's own)");
const WS: Param = path("workspace_id", "A workspace of the org");
const START: Param = query(
    "start_time",
    "ISO timestamp (inclusive; naive means UTC)",
    ParamKind::DateTime,
);
const END: Param = query(
    "end_time",
    "ISO timestamp (exclusive; naive means UTC)",
    ParamKind::DateTime,
);
const LIMIT: Param = query(
    "limit",
    "Maximum number of items to return (1-200)",
    ParamKind::Int {
        min: 1,
        max: Some(PageSize::MAX as i64),
        default: Some(PageSize::DEFAULT as i64),
    },
);
const CURSOR: Param = query(
    "cursor",
    "Cursor for pagination (from previous response's next_cursor); one the feed did not issue is 422",
    ParamKind::Cursor,
);
const HOURS: Param = query(
    "hours",
    "Hours to look back",
    ParamKind::Int {
        min: 1,
        max: Some(Hours::MAX),
        default: Some(Hours::DEFAULT),
    },
);
const WORKSPACE_FILTER: Param = query("workspace_id", "Filter by workspace", ParamKind::Text);

/// A GET operation of the reference that needs `activity:read`. Feeds take
/// the list parameters after their own, summaries take `hours`.
fn read_activity(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    mut params: Vec<Param>,
    response: &'static str,
) -> Operation {
    if response == "ActivityList" {
        params.extend([START, END, LIMIT, CURSOR]);
    } else {
        params.push(HOURS);
    }
    Operation {
        method: Method::Get,
        path,
        operation_id,
        summary,
        permission: Permission::ActivityRead,
        params,
        response,
        body: Body::None,
        tag: "activity",
    }
}

fn list(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    params: Vec<Param>,
) -> Operation {
    read_activity(path, operation_id, summary, params, "ActivityList")
}

fn summary(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    params: Vec<Param>,
) -> Operation {
    read_activity(path, operation_id, summary, params, "ActivitySummary")
}

/// Every REST operation of `000_0fcf25ac362c8c00.txt`, in the reference's order.
pub fn activity_operations() -> Vec<Operation> {
    let app = path("app_id", "An app of the workspace");
    let endpoint = path("endpoint_id", "An endpoint of the app");
    let user = path("user_id", "A user of the org");
    vec![
        list("/v1/orgs/{org_id}/activity", "get_org_activity", "Get Org Activity", vec![ORG]),
        summary("/v1/orgs/{org_id}/activity/summary", "get_org_activity_summary", "Get Org Activity Summary", vec![ORG]),
        list("/v1/orgs/{org_id}/workspaces/{workspace_id}/activity", "get_workspace_activity", "Get Workspace Activity", vec![ORG, WS]),
        summary(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/activity/summary",
            "get_workspace_activity_summary",
            "Get Workspace Activity Summary",
            vec![ORG, WS],
        ),
        list("/v1/orgs/{org_id}/users/{user_id}/activity", "get_user_activity", "Get User Activity", vec![ORG, user, WORKSPACE_FILTER]),
        summary("/v1/orgs/{org_id}/users/{user_id}/activity/summary", "get_user_activity_summary", "Get User Activity Summary", vec![ORG, user]),
        list("/v1/orgs/{org_id}/workspaces/{workspace_id}/apps/{app_id}/activity", "get_app_activity", "Get App Activity", vec![ORG, WS, app]),
        list(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/apps/{app_id}/endpoints/{endpoint_id}/activity",
            "get_endpoint_activity",
            "Get Endpoint Activity",
            vec![ORG, WS, app, endpoint],
        ),
        summary(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/apps/{app_id}/endpoints/{endpoint_id}/activity/summary",
            "get_endpoint_activity_summary",
            "Get Endpoint Activity Summary",
            vec![ORG, WS, app, endpoint],
        ),
        list(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/augmentations/{augmentation_id}/activity",
            "get_augmentation_activity",
            "Get Augmentation Activity",
            vec![ORG, WS, path("augmentation_id", "An augmentation of the workspace")],
        ),
        list(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/activity/actions/{action}",
            "get_activity_by_action",
            "Get Activity By Action",
            vec![ORG, WS, path("action", "create, read, update, delete, execute, trigger, ...")],
        ),
        list(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/resources/{resource_id}/activity",
            "get_resource_activity",
            "Get Resource Activity",
            vec![ORG, WS, path("resource_id", "The `resource_id` of the events")],
        ),
        list(
            "/v1/orgs/{org_id}/workspaces/{workspace_id}/activity/search",
            "search_workspace_activity",
            "Search Workspace Activity",
            vec![
                ORG,
                WS,
                query("action", "Filter by action: create, read, update, delete, execute, trigger", ParamKind::Text),
                query("resource_type", "Filter by resource: workspace, app, endpoint, augmentation, etc.", ParamKind::Text),
                query("user_id", "Filter by user ID", ParamKind::Text),
                query("status", "Filter by status: success, error", ParamKind::Choice(&["success", "error"])),
                query("min_duration_ms", "Filter by minimum duration", ParamKind::Int { min: 0, max: None, default: None }),
                query("max_duration_ms", "Filter by maximum duration", ParamKind::Int { min: 0, max: None, default: None }),
            ],
        ),
        list("/v1/orgs/{org_id}/me/activity", "get_my_activity", "Get My Activity", vec![ORG, WORKSPACE_FILTER]),
        summary("/v1/orgs/{org_id}/me/activity/summary", "get_my_activity_summary", "Get My Activity Summary", vec![ORG]),
    ]
}

/// Batch ingest (beyond the reference document).
pub fn ingest_operation() -> Operation {
    Operation {
        method: Method::Post,
        path: "/v1/orgs/{org_id}/activity",
        operation_id: "ingest_org_activity",
        summary: "Ingest Activity (at most 10,000 events; the batch is stored whole or not at all)",
        permission: Permission::ActivityWrite,
        params: vec![ORG],
        response: "IngestResult",
        body: Body::ArrayOf {
            schema: "IngestEvent",
            max: crate::service::ingest::MAX_BATCH,
        },
        tag: "activity",
    }
}

pub const ARTIFACTS: &str = "/api/v5/artifacts/activity";

/// Where the reference's routes live; the org is checked before anything else.
pub const ORG_ROUTES: &str = "/v1/orgs/{org_id}";

fn artifact(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    permission: Permission,
    body: Body,
    response: &'static str,
) -> Operation {
    Operation {
        method: Method::Post,
        path,
        operation_id,
        summary,
        permission,
        params: vec![],
        response,
        body,
        tag: "artifacts",
    }
}

/// The 7 routes of `002_2ae6ff76853aa2d6.txt`, in the reference's order. The
/// org is the credential's.
pub fn artifact_operations() -> Vec<Operation> {
    let object = |schema, required| Body::Object { schema, required };
    vec![
        artifact(
            "/api/v5/artifacts/activity/get",
            "get_activity",
            "Get Activity: session analytics for a date range, departments and roles",
            Permission::SessionRead,
            object("SessionAnalyticsRequest", false),
            "SessionAnalyticsOut",
        ),
        artifact(
            "/api/v5/artifacts/activity/search",
            "search_activity",
            "Search Activity: the session history (paginated)",
            Permission::SessionRead,
            object("SessionSearchRequest", false),
            "SessionSearchOut",
        ),
        artifact(
            "/api/v5/artifacts/activity/problem",
            "create_problem",
            "Create Problem",
            Permission::ProblemCreate,
            object("ProblemRequest", true),
            "ProblemCreatedOut",
        ),
        artifact(
            "/api/v5/artifacts/activity/refresh",
            "activity_refresh",
            "Activity Refresh: bring every rollup up to date",
            Permission::ActivityRefresh,
            Body::None,
            "RefreshOut",
        ),
        artifact(
            "/api/v5/artifacts/activity/resolve",
            "resolve_problem",
            "Resolve Problem: resolve or unresolve a problem",
            Permission::ProblemResolve,
            object("ResolveRequest", true),
            "ResolveOut",
        ),
        artifact(
            "/api/v5/artifacts/activity/export",
            "export_activity",
            "Export Activity: all the org's activity data as a clean, denormalized ZIP",
            Permission::ActivityExport,
            Body::None,
            "ExportOut",
        ),
        artifact(
            "/api/v5/artifacts/activity/docs",
            "get_activity_docs",
            "Get Activity Docs: composed documentation of the activity analytics",
            Permission::DocsRead,
            object("DocsRequest", false),
            "Docs",
        ),
    ]
}

/// The download of an export (beyond the reference document).
pub fn download_operation() -> Operation {
    Operation {
        method: Method::Get,
        path: "/api/v5/artifacts/activity/exports/{upload_id}",
        operation_id: "download_activity_export",
        summary: "Download an export's ZIP",
        permission: Permission::ActivityExport,
        params: vec![path("upload_id", "The `upload_id` the export answered")],
        response: ZIP_FILE,
        body: Body::None,
        tag: "artifacts",
    }
}

/// Every REST operation the gateway serves.
pub fn operations() -> Vec<Operation> {
    let mut all = activity_operations();
    all.push(ingest_operation());
    all.extend(artifact_operations());
    all.push(download_operation());
    all
}

/// The permission every REST route needs, by method and route pattern: what
/// the transport enforces ([`crate::rest::extract::Authorized`]).
pub fn rest_permission(method: &axum::http::Method, route: &str) -> Option<Permission> {
    static BY_ROUTE: std::sync::LazyLock<HashMap<(bool, &'static str), Permission>> =
        std::sync::LazyLock::new(|| {
            operations()
                .into_iter()
                .map(|op| ((op.method == Method::Get, op.path), op.permission))
                .collect()
        });
    let get = match *method {
        axum::http::Method::GET => true,
        axum::http::Method::POST => false,
        _ => return None,
    };
    BY_ROUTE.get(&(get, route)).copied()
}

/// What a GraphQL field needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: what a credential may always see of itself (`viewer`).
    Open,
    Needs(Permission),
    /// `node(id:)`: the permission of the kind of id it resolves ([`node_permission`]).
    ByIdKind,
}

/// A GraphQL field that reads or changes data, and what it needs: the
/// GraphQL half of the registry. Root fields are named alone (`org`),
/// object fields as `Type.field`.
#[derive(Debug, Clone, Copy)]
pub struct GraphqlOperation {
    /// `query`, `mutation` or `subscription`.
    pub kind: &'static str,
    pub field: &'static str,
    pub access: Access,
    pub description: &'static str,
}

impl GraphqlOperation {
    /// The permission, when one fixed permission is needed.
    pub fn permission(&self) -> Option<Permission> {
        match self.access {
            Access::Needs(p) => Some(p),
            Access::Open | Access::ByIdKind => None,
        }
    }
}

/// What `node(id:)` needs, by the kind of id: sessions `session:read`,
/// exports `activity:export`, everything else `activity:read`.
pub fn node_permission(kind: crate::domain::ids::IdKind) -> Permission {
    use crate::domain::ids::IdKind;
    match kind {
        IdKind::Session => Permission::SessionRead,
        IdKind::Export => Permission::ActivityExport,
        _ => Permission::ActivityRead,
    }
}

/// What a GraphQL field needs, by its registry name.
pub fn graphql_access(field: &str) -> Option<Access> {
    // Guarded fields ask once per row for a row's relations: a hash lookup.
    static BY_FIELD: std::sync::LazyLock<HashMap<&'static str, Access>> =
        std::sync::LazyLock::new(|| {
            graphql_operations()
                .into_iter()
                .map(|op| (op.field, op.access))
                .collect()
        });
    BY_FIELD.get(field).copied()
}

/// Every GraphQL field of the activity API that reads or changes data. The
/// schema's guards enforce these; a test checks the list against the schema
/// (every root field and every object-valued field of a node is here), and
/// another calls each with every permission but its own.
pub fn graphql_operations() -> Vec<GraphqlOperation> {
    use Permission::*;
    let op = |kind, field, access, description| GraphqlOperation {
        kind,
        field,
        access,
        description,
    };
    let read = |field, description| op("query", field, Access::Needs(ActivityRead), description);
    let sessions = |field, description| op("query", field, Access::Needs(SessionRead), description);
    vec![
        op(
            "query",
            "viewer",
            Access::Open,
            "The credential: principal, permissions (its org and user need activity:read)",
        ),
        read(
            "org",
            "The org with its activity feeds and summaries, sessions and problems at every level",
        ),
        op(
            "query",
            "node",
            Access::ByIdKind,
            "Any object of the org by its id: session:read for a session, activity:export for an export, activity:read for the rest",
        ),
        op("query", "activityDocs", Access::Needs(DocsRead), "This documentation"),
        read("Viewer.org", "The credential's org"),
        read("Viewer.user", "The credential's user"),
        read("Org.workspaces", "The org's workspaces"),
        read(
            "Org.retention",
            "How long the org's raw events are kept, and since when they were purged",
        ),
        read("Org.users", "The org's users"),
        read("Org.activity", "The org's activity feed"),
        read("Org.activitySummary", "The org's activity summary"),
        sessions("Org.sessionAnalytics", "Session analytics (the twin of POST /get)"),
        sessions("Org.sessions", "The session history (the twin of POST /search)"),
        read("Org.problems", "The org's problems, newest first"),
        read("Workspace.apps", "The workspace's apps"),
        read("Workspace.augmentations", "The workspace's augmentations"),
        read("Workspace.activity", "The workspace's activity feed"),
        read("Workspace.activitySummary", "The workspace's activity summary"),
        read("App.endpoints", "The app's endpoints"),
        read("App.activity", "The app's activity feed"),
        read("App.activitySummary", "The app's activity summary"),
        read("Endpoint.activity", "The endpoint's activity feed"),
        read("Endpoint.activitySummary", "The endpoint's activity summary"),
        read("Augmentation.activity", "The augmentation's activity feed"),
        read("Augmentation.activitySummary", "The augmentation's activity summary"),
        sessions("User.sessions", "One user's session history"),
        read("User.activity", "The user's activity feed"),
        read("User.activitySummary", "The user's activity summary"),
        read("Activity.user", "The user of an event"),
        read("Activity.workspace", "The workspace of an event"),
        read("Activity.app", "The app of an event"),
        read("Activity.endpoint", "The endpoint of an event"),
        read("Activity.augmentation", "The augmentation of an event"),
        read("Problem.activity", "The event a problem is about"),
        sessions("Problem.session", "The session a problem is about"),
        read("Problem.resolver", "The user who resolved a problem"),
        op(
            "mutation",
            "ingestActivity",
            Access::Needs(ActivityWrite),
            "Stores a batch of events (the twin of POST /v1/orgs/{org_id}/activity)",
        ),
        op(
            "mutation",
            "createProblem",
            Access::Needs(ProblemCreate),
            "Creates a problem (the twin of POST /problem)",
        ),
        op(
            "mutation",
            "resolveProblem",
            Access::Needs(ProblemResolve),
            "Resolves or unresolves a problem (the twin of POST /resolve)",
        ),
        op(
            "mutation",
            "refreshActivity",
            Access::Needs(ActivityRefresh),
            "Brings every rollup up to date (the twin of POST /refresh)",
        ),
        op(
            "mutation",
            "exportActivity",
            Access::Needs(ActivityExport),
            "Exports the org as a ZIP (the twin of POST /export)",
        ),
        op(
            "mutation",
            "setRetention",
            Access::Needs(ActivityRetention),
            "Sets how long the org's raw events are kept (null: forever)",
        ),
        op(
            "subscription",
            "activityAdded",
            Access::Needs(ActivityRead),
            "The live tail of the org's activity",
        ),
    ]
}
