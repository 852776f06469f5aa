//! Batch ingest: every event is validated (and every bad one reported by index
//! and field), ids are idempotent, references must belong to the caller's org,
//! and the batch commits whole, durably, before the answer.

use crate::domain::grant::{cap, Grant};
use crate::domain::text::unstorable_in_json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use serde::Deserialize;
use serde_json::{json, Value};

use super::events::{insert_batch, EventRow};
use super::live::LiveFeed;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::{now_micros, parse_timestamp};

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

/// A batch from a raw JSON body: the whole array at once when every item is
/// well-formed (the common case, and several times faster than through
/// `Value`s), else item by item for errors at `[index, field]`.
pub fn parse_body(body: &[u8]) -> AppResult<Vec<IngestEvent>> {
    let may_hold_nul = crate::domain::text::json_may_hold_nul(body);
    if !may_hold_nul {
        if let Ok(events) = serde_json::from_slice::<Vec<IngestEvent>>(body) {
            return Ok(events);
        }
    }
    let value = serde_json::from_slice::<Value>(body);
    if let (true, Ok(value)) = (may_hold_nul, &value) {
        let unstorable = unstorable_in_json(value, &[]);
        if !unstorable.is_empty() {
            return Err(AppError::Invalid(unstorable));
        }
    }
    match value {
        Ok(Value::Array(items)) => parse_items(items).map_err(AppError::Invalid),
        Ok(other) => Err(AppError::invalid(InvalidInput::new(
            &[],
            "list_type",
            "Input should be a valid list",
            other,
        ))),
        Err(e) => Err(AppError::invalid(crate::domain::error::json_invalid(&e))),
    }
}

/// Parses the raw JSON items one by one, so that a bad field of one event is
/// reported at `[index, field]` and the other events are still checked.
pub fn parse_items(items: Vec<Value>) -> Result<Vec<IngestEvent>, Vec<InvalidInput>> {
    let mut events = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, IngestEvent>(&item) {
            Ok(event) => events.push(event),
            Err(e) => {
                let field = e.path().to_string();
                let mut loc = vec![json!(i)];
                if field != "." {
                    loc.extend(field.split('.').map(|p| json!(p)));
                }
                let input = if item.is_object() {
                    item.get(field.split('.').next().unwrap_or_default())
                        .cloned()
                        .unwrap_or(Value::Null)
                } else {
                    item
                };
                problems.push(InvalidInput {
                    loc,
                    msg: crate::domain::error::first_line(&e.inner().to_string()),
                    kind: "type_error".into(),
                    input,
                    ctx: None,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(problems)
    }
}

fn at(
    i: usize,
    field: &str,
    kind: &str,
    msg: impl Into<String>,
    input: impl Into<Value>,
) -> InvalidInput {
    InvalidInput {
        loc: vec![json!(i), json!(field)],
        msg: msg.into(),
        kind: kind.into(),
        input: input.into(),
        ctx: None,
    }
}

/// Field checks that need no database. Locations are `[index, field]`.
fn check_fields(i: usize, e: &IngestEvent, problems: &mut Vec<InvalidInput>) {
    let texts: [(&str, &Option<String>, usize); 19] = [
        ("id", &e.id, MAX_ID),
        ("trace_id", &e.trace_id, 128),
        ("user_id", &e.user_id, MAX_ID),
        ("workspace_id", &e.workspace_id, MAX_ID),
        ("app_id", &e.app_id, MAX_ID),
        ("endpoint_id", &e.endpoint_id, MAX_ID),
        ("augmentation_id", &e.augmentation_id, MAX_ID),
        ("principal_type", &e.principal_type, 64),
        ("principal_id", &e.principal_id, MAX_ID),
        ("token_id", &e.token_id, MAX_ID),
        ("token_type", &e.token_type, 64),
        ("method", &e.method, 16),
        ("path", &e.path, MAX_TEXT),
        ("resource_type", &e.resource_type, 64),
        ("resource_id", &e.resource_id, MAX_TEXT),
        ("action", &e.action, 64),
        ("error_code", &e.error_code, 128),
        ("execution_id", &e.execution_id, 128),
        ("timestamp", &e.timestamp, 64),
    ];
    for (field, value, max) in texts {
        if let Some(v) = value {
            if v.chars().count() > max {
                problems.push(at(
                    i,
                    field,
                    "string_too_long",
                    format!("String should have at most {max} characters"),
                    v.clone(),
                ));
            }
        }
    }
    match e.action.as_deref().map(str::trim) {
        None | Some("") => problems.push(at(i, "action", "missing", "Field required", Value::Null)),
        Some(_) => {}
    }
    if let Some(id) = &e.id {
        if IdKind::of(id) != Some(IdKind::Activity) {
            problems.push(at(
                i,
                "id",
                "value_error",
                "An activity id starts with act_",
                id.clone(),
            ));
        }
    }
    if let Some(ts) = &e.timestamp {
        match parse_timestamp(ts) {
            None => problems.push(at(
                i,
                "timestamp",
                "datetime_parsing",
                "Input should be a valid ISO 8601 datetime",
                ts.clone(),
            )),
            // Far futures and pre-epoch times are typos, and would break hour arithmetic.
            Some(t)
                if !(0..=now_micros() + 366 * crate::domain::time::MICROS_PER_DAY).contains(&t) =>
            {
                problems.push(at(
                    i,
                    "timestamp",
                    "value_error",
                    "timestamp must be after 1970 and at most a year ahead",
                    ts.clone(),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(code) = e.status_code.filter(|c| !(100..=599).contains(c)) {
        problems.push(at(
            i,
            "status_code",
            "value_error",
            "status_code must be between 100 and 599",
            code,
        ));
    }
    if let Some(d) = e.duration_ms.filter(|d| *d < 0) {
        problems.push(at(
            i,
            "duration_ms",
            "greater_than_equal",
            "Input should be greater than or equal to 0",
            d,
        ));
    }
    if let Some(d) = e.duration_ms.filter(|d| *d > MAX_DURATION_MS) {
        problems.push(
            at(
                i,
                "duration_ms",
                "less_than_equal",
                format!("Input should be less than or equal to {MAX_DURATION_MS}"),
                d,
            )
            .with_ctx(json!({ "le": MAX_DURATION_MS })),
        );
    }
    for (field, value) in [
        ("stages_completed", e.stages_completed),
        ("total_stages", e.total_stages),
    ] {
        if let Some(v) = value.filter(|v| !(0..=1_000).contains(v)) {
            problems.push(at(
                i,
                field,
                "value_error",
                format!("{field} must be between 0 and 1000"),
                v,
            ));
        }
    }
    if let (Some(done), Some(total)) = (e.stages_completed, e.total_stages) {
        if done > total {
            problems.push(at(
                i,
                "stages_completed",
                "value_error",
                "stages_completed cannot exceed total_stages",
                done,
            ));
        }
    }
    if let Some(usage) = &e.token_usage {
        let mut sum: i64 = 0;
        for (kind, count) in usage {
            let at_kind = vec![json!(i), json!("token_usage"), json!(kind)];
            match count.as_i64() {
                Some(n) if (0..=MAX_TOKENS).contains(&n) => sum = sum.saturating_add(n),
                Some(n) if n > MAX_TOKENS => problems.push(InvalidInput {
                    loc: at_kind,
                    msg: format!("Input should be less than or equal to {MAX_TOKENS}"),
                    kind: "less_than_equal".into(),
                    input: count.clone(),
                    ctx: Some(json!({ "le": MAX_TOKENS })),
                }),
                _ => problems.push(InvalidInput {
                    loc: at_kind,
                    msg: "Token counts are non-negative integers".into(),
                    kind: "value_error".into(),
                    input: count.clone(),
                    ctx: None,
                }),
            }
        }
        if sum > MAX_TOKENS {
            problems.push(InvalidInput {
                loc: vec![json!(i), json!("token_usage")],
                msg: format!("The token counts should add up to at most {MAX_TOKENS}"),
                kind: "less_than_equal".into(),
                input: Value::from(sum),
                ctx: Some(json!({ "le": MAX_TOKENS })),
            });
        }
    }
}

/// The hierarchy the events reference, looked up once per batch inside the org.
struct Known {
    workspaces: HashMap<String, ()>,
    apps: HashMap<String, String>,
    endpoints: HashMap<String, (String, String)>,
    augmentations: HashMap<String, String>,
    users: HashMap<String, ()>,
}

macro_rules! load_ids {
    ($db:expr, $org:expr, $module:ident, $ids:expr, |$m:ident| $value:expr) => {{
        let ids: BTreeSet<String> = $ids;
        if ids.is_empty() {
            HashMap::new()
        } else {
            entity::$module::Entity::find()
                .filter(entity::$module::Column::OrgId.eq($org))
                .filter(entity::$module::Column::Id.is_in(ids))
                .all($db)
                .await?
                .into_iter()
                .map(|$m| ($m.id.clone(), $value))
                .collect()
        }
    }};
}

async fn known(db: &DatabaseConnection, org: &str, events: &[IngestEvent]) -> AppResult<Known> {
    let ids = |f: fn(&IngestEvent) -> &Option<String>| {
        events
            .iter()
            .filter_map(|e| f(e).clone())
            .collect::<BTreeSet<_>>()
    };
    Ok(Known {
        workspaces: load_ids!(db, org, workspace, ids(|e| &e.workspace_id), |m| ()),
        apps: load_ids!(db, org, app, ids(|e| &e.app_id), |m| m.workspace_id.clone()),
        endpoints: load_ids!(db, org, endpoint, ids(|e| &e.endpoint_id), |m| (
            m.workspace_id.clone(),
            m.app_id.clone()
        )),
        augmentations: load_ids!(db, org, augmentation, ids(|e| &e.augmentation_id), |m| m
            .workspace_id
            .clone()),
        users: load_ids!(db, org, user, ids(|e| &e.user_id), |m| ()),
    })
}

/// Checks references and completes the hierarchy: an endpoint implies its app
/// and workspace, an app or augmentation its workspace, so every feed above
/// an event finds it. A reference to another org's entity is refused exactly
/// like an unknown one.
fn resolve_refs(i: usize, e: &mut IngestEvent, k: &Known, problems: &mut Vec<InvalidInput>) {
    let unknown = |field: &str, id: &str| {
        at(
            i,
            field,
            "value_error",
            format!("Unknown {field} for this org"),
            id.to_owned(),
        )
    };
    let mut parent_ws: Option<String> = None;
    let mut parent_app: Option<String> = None;
    if let Some(ep) = &e.endpoint_id {
        match k.endpoints.get(ep) {
            None => problems.push(unknown("endpoint_id", ep)),
            Some((ws, app)) => {
                parent_ws = Some(ws.clone());
                parent_app = Some(app.clone());
            }
        }
    }
    if let Some(app) = &e.app_id {
        match k.apps.get(app) {
            None => problems.push(unknown("app_id", app)),
            Some(ws) => {
                if parent_app.as_ref().is_some_and(|p| p != app) {
                    problems.push(at(
                        i,
                        "app_id",
                        "value_error",
                        "endpoint_id belongs to another app",
                        app.clone(),
                    ));
                }
                parent_ws.get_or_insert(ws.clone());
            }
        }
    }
    if let Some(aug) = &e.augmentation_id {
        match k.augmentations.get(aug) {
            None => problems.push(unknown("augmentation_id", aug)),
            Some(ws) => {
                if parent_ws.as_ref().is_some_and(|p| p != ws) {
                    problems.push(at(
                        i,
                        "augmentation_id",
                        "value_error",
                        "augmentation_id belongs to another workspace",
                        aug.clone(),
                    ));
                }
                parent_ws.get_or_insert(ws.clone());
            }
        }
    }
    if let Some(ws) = &e.workspace_id {
        if !k.workspaces.contains_key(ws) {
            problems.push(unknown("workspace_id", ws));
        } else if parent_ws.as_ref().is_some_and(|p| p != ws) {
            problems.push(at(
                i,
                "workspace_id",
                "value_error",
                "the app, endpoint or augmentation belongs to another workspace",
                ws.clone(),
            ));
        }
    }
    if let Some(user) = &e.user_id {
        if !k.users.contains_key(user) {
            problems.push(unknown("user_id", user));
        }
    }
    if e.app_id.is_none() {
        e.app_id = parent_app;
    }
    if e.workspace_id.is_none() {
        e.workspace_id = parent_ws;
    }
}

fn into_row(org: &str, e: IngestEvent, id: String, now: i64) -> EventRow {
    let status = e.status_code.unwrap_or(200) as i32;
    let usage = e.token_usage.unwrap_or_default();
    let tokens_total = usage.values().filter_map(Value::as_i64).sum();
    EventRow {
        id,
        org_id: org.to_owned(),
        ts: e
            .timestamp
            .as_deref()
            .and_then(parse_timestamp)
            .unwrap_or(now),
        trace_id: e.trace_id,
        user_id: e.user_id,
        workspace_id: e.workspace_id,
        app_id: e.app_id,
        endpoint_id: e.endpoint_id,
        augmentation_id: e.augmentation_id,
        principal_type: e.principal_type,
        principal_id: e.principal_id,
        token_id: e.token_id,
        token_type: e.token_type,
        method: e.method,
        path: e.path,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        action: e.action.unwrap_or_default().trim().to_owned(),
        status_code: status,
        success: e.success.unwrap_or(status < 400),
        error_code: e.error_code,
        duration_ms: e.duration_ms.unwrap_or(0),
        execution_id: e.execution_id,
        stages_completed: e.stages_completed.map(|v| v as i32),
        total_stages: e.total_stages.map(|v| v as i32),
        token_usage: Value::Object(usage.into_iter().collect()).to_string(),
        tokens_total,
        metadata: Value::Object(e.metadata.unwrap_or_default()).to_string(),
    }
}

/// Validates and stores a batch for the caller's org. Nothing is stored unless
/// every event is valid; the answer comes after the commit.
#[tracing::instrument(skip(db, live, principal, events), fields(org = %principal.org_id, count = events.len()))]
pub async fn ingest(
    db: &DatabaseConnection,
    live: &LiveFeed,
    principal: Grant<'_, cap::ActivityWrite>,
    mut events: Vec<IngestEvent>,
) -> AppResult<IngestReport> {
    if events.len() > MAX_BATCH {
        return Err(AppError::invalid(
            InvalidInput::new(
                &[],
                "too_long",
                format!("A batch holds at most {MAX_BATCH} events"),
                events.len(),
            )
            .with_ctx(json!({ "max_length": MAX_BATCH })),
        ));
    }
    let org = principal.org_id.as_str();
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        check_fields(i, e, &mut problems);
        if let Some(id) = e.id.as_deref() {
            if let Some(first) = seen.insert(id, i) {
                problems.push(at(
                    i,
                    "id",
                    "value_error",
                    format!("The same id is at index {first} of this batch"),
                    id.to_owned(),
                ));
            }
        }
    }
    let known = known(db, org, &events).await?;
    for (i, e) in events.iter_mut().enumerate() {
        resolve_refs(i, e, &known, &mut problems);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.loc.first().and_then(Value::as_u64).unwrap_or(0));
        return Err(AppError::Invalid(problems));
    }
    let now = now_micros();
    let received = events.len() as u64;
    let ids: Vec<String> = events
        .iter()
        .map(|e| e.id.clone().unwrap_or_else(|| new_id(IdKind::Activity)))
        .collect();
    let rows: Vec<EventRow> = events
        .into_iter()
        .zip(&ids)
        .map(|(e, id)| into_row(org, e, id.clone(), now))
        .collect();
    let stored = super::detached({
        let db = db.clone();
        async move {
            let txn = db.begin().await?;
            let stored = insert_batch(&txn, rows, true).await?;
            txn.commit().await?;
            Ok(stored)
        }
    })
    .await?;
    if stored > 0 {
        live.committed();
    }
    Ok(IngestReport {
        received,
        stored,
        duplicates: received - stored,
        ids,
    })
}
