//! Batch ingest: every event is validated (and every bad one reported by index
//! and field), ids are idempotent, references must belong to the caller's org,
//! and the batch commits whole, durably, before the answer.

mod fields;
mod parse;
mod refs;
mod store;

use fields::*;
pub use parse::*;
use refs::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
pub use store::*;

pub const MAX_BATCH: usize = 10_000;
const MAX_TEXT: usize = 2_048;
/// One day: no API call is recorded as longer. With this bound and
/// [`MAX_TOKENS`], a summary's sums stay exact in 64 bits past nine billion
/// events in one window (`BIGINT` on both backends).
pub const MAX_DURATION_MS: i64 = 86_400_000;
/// A billion tokens: the most one event may report, per kind and in all.
pub const MAX_TOKENS: i64 = 1_000_000_000;
const MAX_ID: usize = 64;

/// One event as a client sends it: the reference's activity fields (and
/// `endpoint_id`). Only `action` is required; the rest have sensible defaults.
/// Its documented schema, with each field's rules, is `rest::schemas::IngestEvent`.
/// Rules between fields: `workspace_id`, `app_id`, `endpoint_id`,
/// `augmentation_id` and `user_id` name entities of the org that agree with
/// each other; `stages_completed` is at most `total_stages`; the
/// `token_usage` values add up to at most 1,000,000,000.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestEvent {
    pub id: Option<String>,
    /// ISO 8601; naive means UTC; default now. From 1970 to a year ahead.
    pub timestamp: Option<String>,
    pub trace_id: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub augmentation_id: Option<String>,
    pub principal_type: Option<String>,
    pub principal_id: Option<String>,
    pub token_id: Option<String>,
    pub token_type: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Required: 1 to 64 characters, not all blank.
    pub action: Option<String>,
    /// Default 200.
    pub status_code: Option<i64>,
    /// Default: `status_code < 400`.
    pub success: Option<bool>,
    pub error_code: Option<String>,
    /// Default 0; at most a day.
    pub duration_ms: Option<i64>,
    pub execution_id: Option<String>,
    pub stages_completed: Option<i64>,
    pub total_stages: Option<i64>,
    /// Token counts by kind: integers from 0 to 1,000,000,000, adding up to
    /// at most 1,000,000,000.
    pub token_usage: Option<BTreeMap<String, Value>>,
    /// Any JSON object (no NUL in its strings or member names).
    pub metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub received: u64,
    pub stored: u64,
    /// Events whose id was already stored: not stored twice.
    pub duplicates: u64,
    /// The ids of the batch, in order (generated ones included).
    pub ids: Vec<String>,
}
