//! The GraphQL half of the registry: every field that reads or changes
//! data, with what it needs.

use std::collections::HashMap;

use crate::domain::permission::Permission;

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
        IdKind::LogStream => Permission::StreamManage,
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
    let stream =
        |field, description| op("mutation", field, Access::Needs(StreamManage), description);
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
        read("Org.checkpoint", "The latest signed checkpoint of the org's verifiable log"),
        read(
            "Org.consistencyProof",
            "The consistency proof between two sizes of the org's tree",
        ),
        read("Org.users", "The org's users"),
        op(
            "query",
            "Org.logStreams",
            Access::Needs(StreamManage),
            "The org's log streams and their health",
        ),
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
        read("Activity.inclusionProof", "An event's inclusion proof in the org's tree"),
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
        stream("createLogStream", "Makes a log stream of the org's events to a destination"),
        stream("updateLogStream", "Changes a log stream's name, format or filter"),
        stream("deleteLogStream", "Deletes a log stream"),
        stream("pauseLogStream", "Stops a log stream's delivery at its cursor"),
        stream("resumeLogStream", "Delivers a paused or failing log stream again from its cursor"),
        stream("testLogStream", "Sends a test delivery to a log stream's destination"),
        op(
            "mutation",
            "createViewerToken",
            Access::Needs(ViewerCreate),
            "Makes a short-lived, read-only viewer token for one of the org's customers",
        ),
        op(
            "mutation",
            "revokeViewerToken",
            Access::Needs(ViewerCreate),
            "Revokes a viewer token",
        ),
        op(
            "subscription",
            "activityAdded",
            Access::Needs(ActivityRead),
            "The live tail of the org's activity",
        ),
    ]
}

/// The GraphQL fields a viewer token may use: the credential, its org's
/// feed, summary and live tail (each confined to the token's workspaces,
/// user and filter by the service), and the relations of an event it can
/// see, and (with `activity:export`) an export of those events. Every other
/// field is refused to viewer tokens whatever their
/// permissions, so a field added later stays closed to them until it is
/// confined and listed here.
pub const VIEWER_TOKEN_FIELDS: &[&str] = &[
    "viewer",
    "Viewer.org",
    "org",
    "Org.activity",
    "Org.activitySummary",
    "Activity.user",
    "Activity.workspace",
    "Activity.app",
    "Activity.endpoint",
    "Activity.augmentation",
    "activityAdded",
    "exportActivity",
];
