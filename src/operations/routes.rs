//! The REST half of the registry: every route with its parameters, body
//! and permission.

use super::{Body, Method, Operation, Param, ParamIn, ParamKind, ZIP_FILE};
use crate::domain::paging::{Hours, PageSize};
use crate::domain::permission::Permission;

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

/// The org's verifiable log (beyond the reference document): its latest
/// signed checkpoint, an event's inclusion proof, the consistency of two
/// tree sizes.
pub fn log_operations() -> Vec<Operation> {
    // At most 2^53 - 1, the largest integer every JSON reader keeps exactly.
    let size = |name, description| {
        query(
            name,
            description,
            ParamKind::Int {
                min: 1,
                max: Some((1 << 53) - 1),
                default: None,
            },
        )
    };
    let get = |path, operation_id, summary, params, response| Operation {
        method: Method::Get,
        path,
        operation_id,
        summary,
        permission: Permission::ActivityRead,
        params,
        response,
        body: Body::None,
        tag: "log",
    };
    vec![
        get(
            "/v1/orgs/{org_id}/log/checkpoint",
            "get_log_checkpoint",
            "The latest signed checkpoint of the org's log (C2SP tlog-checkpoint in a signed note)",
            vec![ORG],
            "CheckpointOut",
        ),
        get(
            "/v1/orgs/{org_id}/activity/{activity_id}/inclusion-proof",
            "get_inclusion_proof",
            "An event's inclusion proof (RFC 9162 audit path) in the org's tree",
            vec![
                ORG,
                path("activity_id", "An event of the org"),
                size("tree_size", "The tree size to prove against: more than the event's log index, at most the latest checkpoint's (default: the latest checkpoint's)"),
            ],
            "InclusionProofOut",
        ),
        get(
            "/v1/orgs/{org_id}/log/consistency-proof",
            "get_consistency_proof",
            "The consistency proof (RFC 9162) between two sizes of the org's tree",
            vec![
                ORG,
                Param { required: true, ..size("from_size", "The smaller tree size, at least 1") },
                Param { required: true, ..size("to_size", "The larger tree size, at most the latest checkpoint's") },
            ],
            "ConsistencyProofOut",
        ),
    ]
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

/// Viewer tokens (beyond the reference document): a platform's backend makes
/// one for a customer of its org.
pub fn viewer_token_operation() -> Operation {
    Operation {
        method: Method::Post,
        path: "/v1/orgs/{org_id}/viewer-tokens",
        operation_id: "create_viewer_token",
        summary: "Create a viewer token: short-lived, read-only (activity:read), confined to workspaces, a user or a filter, usable from the allowed origins",
        permission: Permission::ViewerCreate,
        params: vec![ORG],
        response: "ViewerTokenOut",
        body: Body::Object {
            schema: "ViewerTokenRequest",
            required: true,
        },
        tag: "viewer",
    }
}

/// The REST operations a viewer token may call: its org's feed and summary
/// (confined by the service to the token's workspaces, user and filter),
/// and, with `activity:export`, an export of those events and its download.
/// Every other route refuses viewer tokens, whatever their permissions.
pub const VIEWER_TOKEN_ROUTES: &[(Method, &str)] = &[
    (Method::Get, "/v1/orgs/{org_id}/activity"),
    (Method::Get, "/v1/orgs/{org_id}/activity/summary"),
    (Method::Post, "/api/v5/artifacts/activity/export"),
    (
        Method::Get,
        "/api/v5/artifacts/activity/exports/{upload_id}",
    ),
];

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
