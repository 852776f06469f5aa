//! References checked against the org's hierarchy, and the hierarchy completed.

use super::super::events::EventRow;
use crate::domain::error::{AppResult, InvalidInput};
use crate::domain::time::parse_timestamp;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

use super::*;

/// The hierarchy the events reference, looked up once per batch inside the org.
pub(super) struct Known {
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

pub(super) async fn known(
    db: &DatabaseConnection,
    org: &str,
    events: &[IngestEvent],
) -> AppResult<Known> {
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
pub(super) fn resolve_refs(
    i: usize,
    e: &mut IngestEvent,
    k: &Known,
    problems: &mut Vec<InvalidInput>,
) {
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

pub(super) fn into_row(org: &str, e: IngestEvent, id: String, now: i64) -> EventRow {
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
