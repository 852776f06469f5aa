//! What a feed is asked for: a scope, a filter, a page. Validated here, once,
//! for REST and GraphQL alike.

use crate::domain::error::InvalidInput;

/// Which events a feed or summary covers. Entity ids are checked to belong to
/// the caller's org before a scope is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Org,
    Workspace(String),
    App(String),
    Endpoint(String),
    Augmentation(String),
    User(String),
    /// One action inside a workspace.
    WorkspaceAction {
        workspace_id: String,
        action: String,
    },
    /// One resource (`resource_id` of the events) inside a workspace.
    WorkspaceResource {
        workspace_id: String,
        resource_id: String,
    },
    /// Events made by an API key that belongs to no user.
    Principal(String),
}

impl Scope {
    /// The rollup this scope can read, as (scope kind, scope id); `None` when
    /// summaries for it are aggregated from the raw events.
    pub fn rollup_key<'a>(&'a self, org_id: &'a str) -> Option<(&'static str, &'a str)> {
        match self {
            Scope::Org => Some(("org", org_id)),
            Scope::Workspace(id) => Some(("workspace", id)),
            Scope::App(id) => Some(("app", id)),
            Scope::Endpoint(id) => Some(("endpoint", id)),
            Scope::Augmentation(id) => Some(("augmentation", id)),
            Scope::User(id) => Some(("user", id)),
            _ => None,
        }
    }

    pub(super) fn canonical(&self) -> String {
        match self {
            Scope::Org => "org".into(),
            Scope::Workspace(id) => format!("ws:{id}"),
            Scope::App(id) => format!("app:{id}"),
            Scope::Endpoint(id) => format!("ep:{id}"),
            Scope::Augmentation(id) => format!("aug:{id}"),
            Scope::User(id) => format!("usr:{id}"),
            Scope::WorkspaceAction {
                workspace_id,
                action,
            } => format!("wsa:{workspace_id}:{action}"),
            Scope::WorkspaceResource {
                workspace_id,
                resource_id,
            } => format!("wsr:{workspace_id}:{resource_id}"),
            Scope::Principal(id) => format!("pr:{id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Success,
    Error,
}

/// The longest free-text search, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Every filter a feed takes. Empty lists mean "any". Serialised as a
/// log stream keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ActivityFilter {
    /// Inclusive, microseconds.
    pub start_time: Option<i64>,
    /// Exclusive, microseconds.
    pub end_time: Option<i64>,
    pub actions: Vec<String>,
    pub resource_types: Vec<String>,
    pub resource_id: Option<String>,
    pub user_ids: Vec<String>,
    pub workspace_id: Option<String>,
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    /// Free text: events where any of the searched text columns holds it,
    /// ASCII letters matched without regard to case.
    pub search: Option<String>,
    pub status: Option<Status>,
    pub min_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
    /// A viewer token's confinement, set from the caller's credential (never
    /// from input): the events must match it too.
    #[serde(skip)]
    pub confined: Option<std::sync::Arc<crate::domain::viewer::Confinement>>,
}

impl ActivityFilter {
    /// Whether anything beyond the time range narrows the events (summaries
    /// can then no longer read the rollups).
    pub fn narrows_beyond_time(&self) -> bool {
        !self.actions.is_empty()
            || !self.resource_types.is_empty()
            || self.resource_id.is_some()
            || !self.user_ids.is_empty()
            || self.workspace_id.is_some()
            || self.app_id.is_some()
            || self.endpoint_id.is_some()
            || self.search.is_some()
            || self.status.is_some()
            || self.min_duration_ms.is_some()
            || self.max_duration_ms.is_some()
            || self.confined.is_some()
    }

    pub(super) fn canonical(&self) -> String {
        let mut actions = self.actions.clone();
        actions.sort();
        let mut types = self.resource_types.clone();
        types.sort();
        let mut users = self.user_ids.clone();
        users.sort();
        format!(
            "{:?}|{:?}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{}",
            self.start_time,
            self.end_time,
            actions.join(","),
            types.join(","),
            self.resource_id,
            users.join(","),
            self.workspace_id,
            self.status,
            self.min_duration_ms,
            self.max_duration_ms,
            self.confined
                .as_ref()
                .map(|c| format!("confined({})", c.canonical()))
                .unwrap_or_default()
        ) + &self.later_fields_canonical()
    }

    /// The app, the endpoint and the search, only when given: filters
    /// without them keep the text (and the cursors) they had before these
    /// fields existed.
    fn later_fields_canonical(&self) -> String {
        if self.app_id.is_none() && self.endpoint_id.is_none() && self.search.is_none() {
            return String::new();
        }
        format!(
            "|app={:?}|ep={:?}|q={:?}",
            self.app_id, self.endpoint_id, self.search
        )
    }

    /// Checks relations between fields; `path` is where the fields live
    /// (`["query"]` in REST, `["filter"]` in GraphQL).
    pub fn validate(&self, path: &[&str]) -> Vec<InvalidInput> {
        let mut problems = Vec::new();
        fn at<'a>(path: &[&'a str], field: &'a str) -> Vec<&'a str> {
            path.iter().copied().chain([field]).collect()
        }
        let texts = [
            ("actions", &self.actions[..]),
            ("resource_types", &self.resource_types[..]),
            ("user_ids", &self.user_ids[..]),
        ]
        .into_iter()
        .flat_map(|(field, list)| list.iter().map(move |v| (field, v)))
        .chain(self.resource_id.iter().map(|v| ("resource_id", v)))
        .chain(self.workspace_id.iter().map(|v| ("workspace_id", v)))
        .chain(self.app_id.iter().map(|v| ("app_id", v)))
        .chain(self.endpoint_id.iter().map(|v| ("endpoint_id", v)))
        .chain(self.search.iter().map(|v| ("search", v)));
        for (field, value) in texts {
            if !crate::domain::text::is_storable(value) {
                let loc = at(path, field).into_iter().map(Into::into).collect();
                problems.push(crate::domain::text::unstorable_at(loc, value.as_str()));
            }
        }
        if let Some(search) = self.search.as_deref() {
            let chars = search.chars().count();
            if chars > MAX_SEARCH_CHARS {
                problems.push(
                    InvalidInput::new(
                        &at(path, "search"),
                        "string_too_long",
                        format!("String should have at most {MAX_SEARCH_CHARS} characters"),
                        search,
                    )
                    .with_ctx(serde_json::json!({ "max_length": MAX_SEARCH_CHARS })),
                );
            }
        }
        if let (Some(start), Some(end)) = (self.start_time, self.end_time) {
            if end <= start {
                problems.push(InvalidInput::new(
                    &at(path, "end_time"),
                    "value_error",
                    "end_time must be after start_time",
                    crate::domain::time::format_micros(end),
                ));
            }
        }
        for (field, value) in [
            ("min_duration_ms", self.min_duration_ms),
            ("max_duration_ms", self.max_duration_ms),
        ] {
            if let Some(v) = value.filter(|v| *v < 0) {
                problems.push(
                    InvalidInput::new(
                        &at(path, field),
                        "greater_than_equal",
                        "Input should be greater than or equal to 0",
                        v,
                    )
                    .with_ctx(serde_json::json!({ "ge": 0 })),
                );
            }
        }
        if let (Some(min), Some(max)) = (self.min_duration_ms, self.max_duration_ms) {
            if max < min {
                problems.push(InvalidInput::new(
                    &at(path, "max_duration_ms"),
                    "value_error",
                    "max_duration_ms must not be below min_duration_ms",
                    max,
                ));
            }
        }
        problems
    }
}

pub use super::cursor::{Cursor, CursorError, CursorKey, LiveCursor};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_refuse_empty_ranges_and_negative_durations() {
        let f = ActivityFilter {
            start_time: Some(10),
            end_time: Some(10),
            min_duration_ms: Some(-1),
            ..Default::default()
        };
        let problems = f.validate(&["query"]);
        let locs: Vec<String> = problems
            .iter()
            .map(|p| serde_json::to_string(&p.loc).unwrap())
            .collect();
        assert_eq!(
            locs,
            [r#"["query","end_time"]"#, r#"["query","min_duration_ms"]"#]
        );
    }
}
