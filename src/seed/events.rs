//! One realistic demo event.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::service::events::EventRow;

use super::fixtures::*;
use super::{hex, pick, weighted};

/// One realistic event. Its id is a UUIDv7 whose time part is the event's offset
/// into the window from a fixed anchor: ids sort like the events' times, and the
/// same seed gives the same ids whatever the day it runs.
pub(super) fn demo_event(
    rng: &mut ChaCha8Rng,
    org: &OrgShape,
    start: i64,
    offset: i64,
) -> EventRow {
    const ID_ANCHOR_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let ts = start + offset;
    let mut random = [0u8; 10];
    rng.fill(&mut random);
    let uuid =
        uuid::Builder::from_unix_timestamp_millis(ID_ANCHOR_MS + (offset / 1000) as u64, &random)
            .into_uuid();
    let slug = org.slug;
    let ws_name = *pick(rng, &WORKSPACES);
    let ws = format!("ws_{slug}_{ws_name}");

    enum Target {
        Endpoint,
        Augmentation,
        App,
        Workspace,
    }
    let target = weighted(rng, &[(0u8, 70), (1, 15), (2, 10), (3, 5)]);
    let target = [
        Target::Endpoint,
        Target::Augmentation,
        Target::App,
        Target::Workspace,
    ]
    .into_iter()
    .nth(target as usize)
    .unwrap_or(Target::Endpoint);
    let mut row = EventRow {
        org_id: org.id.to_owned(),
        ts,
        workspace_id: Some(ws.clone()),
        ..Default::default()
    };
    let base = format!("/v1/orgs/{}/workspaces/{ws}", org.id);
    let (action, path, resource_type, resource_id) = match target {
        Target::Endpoint => {
            let app = *pick(rng, &APPS);
            let (ep, _, _) = *pick(rng, &ENDPOINTS);
            let app_id = format!("app_{slug}_{ws_name}_{app}");
            let ep_id = format!("ep_{slug}_{ws_name}_{app}_{ep}");
            let action = weighted(
                rng,
                &[
                    ("read", 55),
                    ("create", 15),
                    ("update", 10),
                    ("delete", 5),
                    ("execute", 15),
                ],
            );
            row.app_id = Some(app_id.clone());
            row.endpoint_id = Some(ep_id.clone());
            (
                action,
                format!("{base}/apps/{app_id}/endpoints/{ep_id}"),
                "endpoint",
                ep_id,
            )
        }
        Target::Augmentation => {
            let (aug, stages) = *pick(rng, &AUGMENTATIONS);
            let aug_id = format!("aug_{slug}_{ws_name}_{aug}");
            let action = weighted(rng, &[("execute", 70), ("trigger", 20), ("read", 10)]);
            row.augmentation_id = Some(aug_id.clone());
            if action != "read" {
                row.execution_id = Some(format!("exec_{}", hex(rng, 12)));
                row.total_stages = Some(stages);
            }
            (
                action,
                format!("{base}/augmentations/{aug_id}"),
                "augmentation",
                aug_id,
            )
        }
        Target::App => {
            let app = *pick(rng, &APPS);
            let app_id = format!("app_{slug}_{ws_name}_{app}");
            let action = weighted(
                rng,
                &[("read", 60), ("update", 25), ("create", 10), ("delete", 5)],
            );
            row.app_id = Some(app_id.clone());
            (action, format!("{base}/apps/{app_id}"), "app", app_id)
        }
        Target::Workspace => {
            let action = weighted(rng, &[("read", 70), ("update", 30)]);
            (action, base.clone(), "workspace", ws.clone())
        }
    };
    row.id = crate::domain::ids::with_uuid(crate::domain::ids::IdKind::Activity, uuid);
    row.trace_id = Some(hex(rng, 16));
    row.method = Some(
        match action {
            "read" => "GET",
            "update" => "PATCH",
            "delete" => "DELETE",
            _ => "POST",
        }
        .to_owned(),
    );
    row.path = Some(path);
    row.resource_type = Some(resource_type.to_owned());
    row.resource_id = Some(resource_id);
    row.action = action.to_owned();

    let principal = weighted(rng, &[("user", 85), ("api_key", 10), ("mcp_agent", 5)]);
    let mut metadata = json!({ "user_agent": pick(rng, &USER_AGENTS), "ip": format!("203.0.113.{}", rng.random_range(1..255)) });
    if principal == "api_key" {
        let key = pick(rng, &org.keys).clone();
        row.principal_id = Some(key.clone());
        row.token_id = Some(key);
        row.token_type = Some("api_key".to_owned());
    } else {
        let (user, _) = pick(rng, &org.users).clone();
        row.user_id = Some(user.clone());
        row.principal_id = Some(user);
        let jwt = rng.random_bool(0.6);
        row.token_type = Some(if jwt { "jwt" } else { "api_key" }.to_owned());
        row.token_id = Some(if jwt {
            format!("jti_{}", hex(rng, 8))
        } else {
            pick(rng, &org.keys).clone()
        });
        if principal == "mcp_agent" {
            metadata["mcp_client"] = json!(pick(rng, &MCP_CLIENTS));
        }
    }
    row.principal_type = Some(principal.to_owned());

    let ok_status = match action {
        "create" => 201,
        "delete" => 204,
        "trigger" => 202,
        _ => 200,
    };
    let (status, error) = weighted(
        rng,
        &[
            ((ok_status, None), 920),
            ((400, Some("VALIDATION_ERROR")), 20),
            ((401, Some("AUTHENTICATION_FAILED")), 8),
            ((403, Some("FORBIDDEN")), 10),
            ((404, Some("RESOURCE_NOT_FOUND")), 15),
            ((409, Some("CONFLICT")), 5),
            ((429, Some("RATE_LIMITED")), 10),
            ((500, Some("INTERNAL_SERVER_ERROR")), 7),
            ((504, Some("UPSTREAM_TIMEOUT")), 5),
        ],
    );
    row.status_code = status;
    row.success = status < 400;
    row.error_code = error.map(str::to_owned);
    if let Some(total) = row.total_stages {
        row.stages_completed = Some(if row.success {
            total
        } else {
            rng.random_range(0..total)
        });
    }

    // Durations: a long tail, heavier for executions.
    let base_ms: f64 = if action == "execute" || action == "trigger" {
        400.0
    } else {
        40.0
    };
    let tail: f64 = rng.random::<f64>().powi(3) * 20.0 + 0.2;
    row.duration_ms = (base_ms * tail) as i64 + rng.random_range(1..20);

    if action == "execute" && row.success {
        let prompt = rng.random_range(50..4_000);
        let completion = rng.random_range(10..1_500);
        row.token_usage =
            json!({ "prompt_tokens": prompt, "completion_tokens": completion }).to_string();
        row.tokens_total = prompt + completion;
    } else {
        row.token_usage = "{}".to_owned();
    }
    row.metadata = metadata.to_string();
    row
}
