//! What a feed is asked for: a scope, a filter, a page. Validated here, once,
//! for REST and GraphQL alike.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::InvalidInput;

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

    fn canonical(&self) -> String {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
}

/// Every filter a feed takes. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    pub status: Option<Status>,
    pub min_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
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
            || self.status.is_some()
            || self.min_duration_ms.is_some()
            || self.max_duration_ms.is_some()
    }

    fn canonical(&self) -> String {
        let mut actions = self.actions.clone();
        actions.sort();
        let mut types = self.resource_types.clone();
        types.sort();
        let mut users = self.user_ids.clone();
        users.sort();
        format!(
            "{:?}|{:?}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}",
            self.start_time,
            self.end_time,
            actions.join(","),
            types.join(","),
            self.resource_id,
            users.join(","),
            self.workspace_id,
            self.status,
            self.min_duration_ms,
            self.max_duration_ms
        )
    }

    /// Checks relations between fields; `path` is where the fields live
    /// (`["query"]` in REST, `["filter"]` in GraphQL).
    pub fn validate(&self, path: &[&str]) -> Vec<InvalidInput> {
        let mut problems = Vec::new();
        fn at<'a>(path: &[&'a str], field: &'a str) -> Vec<&'a str> {
            path.iter().copied().chain([field]).collect()
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

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 200;

/// A position in a feed: the last event seen, bound to the feed it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub id: String,
}

/// Why a cursor was refused; both answer 422 at `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    Malformed,
    OtherFeed,
}

const CURSOR_VERSION: &str = "c1";

/// The digest that ties a cursor to its org, scope and filter.
fn binding(org_id: &str, scope: &Scope, filter: &ActivityFilter) -> String {
    let digest = Sha256::digest(
        format!("{org_id}\n{}\n{}", scope.canonical(), filter.canonical()).as_bytes(),
    );
    hex::encode(&digest[..8])
}

/// A checksum over the payload: edits to a cursor are noticed, not acted on.
fn checksum(payload: &str) -> String {
    hex::encode(&Sha256::digest(format!("activity-gateway cursor\n{payload}").as_bytes())[..6])
}

/// The cursor's text: the payload and its checksum, base64url.
fn seal(payload: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{payload}|{}", checksum(payload)))
}

/// The payload of a sealed cursor whose checksum holds.
fn unseal(text: &str) -> Result<String, CursorError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| CursorError::Malformed)?;
    let raw = String::from_utf8(raw).map_err(|_| CursorError::Malformed)?;
    let (payload, sum) = raw.rsplit_once('|').ok_or(CursorError::Malformed)?;
    if checksum(payload) != sum {
        return Err(CursorError::Malformed);
    }
    Ok(payload.to_owned())
}

impl Cursor {
    pub fn encode(&self, org_id: &str, scope: &Scope, filter: &ActivityFilter) -> String {
        self.encode_bound(&binding(org_id, scope, filter))
    }

    pub fn decode(
        text: &str,
        org_id: &str,
        scope: &Scope,
        filter: &ActivityFilter,
    ) -> Result<Cursor, CursorError> {
        Self::decode_bound(text, &binding(org_id, scope, filter))
    }

    /// For lists other than activity feeds (`list` names the list and its
    /// filter, e.g. `problems|resolved=true`): `ts` is the list's time column.
    pub fn encode_for_list(&self, org_id: &str, list: &str) -> String {
        self.encode_bound(&list_binding(org_id, list))
    }

    pub fn decode_for_list(text: &str, org_id: &str, list: &str) -> Result<Cursor, CursorError> {
        Self::decode_bound(text, &list_binding(org_id, list))
    }

    fn encode_bound(&self, bound: &str) -> String {
        seal(&format!("{CURSOR_VERSION}|{}|{}|{bound}", self.ts, self.id))
    }

    fn decode_bound(text: &str, expected: &str) -> Result<Cursor, CursorError> {
        let raw = unseal(text)?;
        let parts: Vec<&str> = raw.split('|').collect();
        let [version, ts, id, bound] = parts[..] else {
            return Err(CursorError::Malformed);
        };
        if version != CURSOR_VERSION {
            return Err(CursorError::Malformed);
        }
        if bound != expected {
            return Err(CursorError::OtherFeed);
        }
        Ok(Cursor {
            ts: ts.parse().map_err(|_| CursorError::Malformed)?,
            id: id.to_owned(),
        })
    }
}

/// The digest that ties a list cursor to its org and list.
fn list_binding(org_id: &str, list: &str) -> String {
    let digest = Sha256::digest(format!("{org_id}\nlist\n{list}").as_bytes());
    hex::encode(&digest[..8])
}

/// A position in the live tail: the commit order (`seq`) of the last event
/// delivered, bound to the org and filter of the subscription like a feed
/// cursor. Feed cursors and live cursors are not interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCursor {
    pub seq: i64,
}

const LIVE_CURSOR_VERSION: &str = "l1";

impl LiveCursor {
    pub fn encode(&self, org_id: &str, filter: &ActivityFilter) -> String {
        seal(&format!(
            "{LIVE_CURSOR_VERSION}|{}|{}",
            self.seq,
            binding(org_id, &Scope::Org, filter)
        ))
    }

    pub fn decode(
        text: &str,
        org_id: &str,
        filter: &ActivityFilter,
    ) -> Result<LiveCursor, CursorError> {
        let raw = unseal(text)?;
        let parts: Vec<&str> = raw.split('|').collect();
        let [version, seq, bound] = parts[..] else {
            return Err(CursorError::Malformed);
        };
        if version != LIVE_CURSOR_VERSION {
            return Err(CursorError::Malformed);
        }
        if bound != binding(org_id, &Scope::Org, filter) {
            return Err(CursorError::OtherFeed);
        }
        Ok(LiveCursor {
            seq: seq.parse().map_err(|_| CursorError::Malformed)?,
        })
    }
}

impl CursorError {
    pub fn to_input(self, loc: &[&str], input: &str) -> InvalidInput {
        let msg = match self {
            CursorError::Malformed => "Invalid cursor",
            CursorError::OtherFeed => {
                "The cursor belongs to another feed (scope or filter changed)"
            }
        };
        InvalidInput::new(loc, "value_error", msg, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_feeds_and_tampering() {
        let scope = Scope::Workspace("ws_a".into());
        let filter = ActivityFilter {
            actions: vec!["read".into()],
            ..Default::default()
        };
        let cursor = Cursor {
            ts: 1_700_000_000_000_000,
            id: "act_x".into(),
        };
        let text = cursor.encode("org_a", &scope, &filter);
        assert_eq!(
            Cursor::decode(&text, "org_a", &scope, &filter),
            Ok(cursor.clone())
        );
        assert_eq!(
            Cursor::decode(&text, "org_b", &scope, &filter),
            Err(CursorError::OtherFeed)
        );
        assert_eq!(
            Cursor::decode(&text, "org_a", &Scope::Org, &filter),
            Err(CursorError::OtherFeed)
        );
        assert_eq!(
            Cursor::decode(&text, "org_a", &scope, &ActivityFilter::default()),
            Err(CursorError::OtherFeed)
        );
        let mut tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&text)
            .unwrap();
        tampered[5] = if tampered[5] == b'1' { b'2' } else { b'1' };
        let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered);
        assert_eq!(
            Cursor::decode(&tampered, "org_a", &scope, &filter),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            Cursor::decode("not a cursor", "org_a", &scope, &filter),
            Err(CursorError::Malformed)
        );
        // The same filter with lists in another order is the same feed.
        let reordered = ActivityFilter {
            actions: vec!["read".into()],
            ..Default::default()
        };
        assert!(Cursor::decode(&text, "org_a", &scope, &reordered).is_ok());
    }

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
