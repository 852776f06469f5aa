//! Events as OCSF API Activity (class 6003, category 6, Application
//! Activity), schema version 1.3.0. The README's "Log streams" section has
//! the mapping field by field; the test below holds this code to it.

use serde_json::{json, Map, Value};

use crate::domain::text::stored_json;

const CLASS_UID: i64 = 6003;

fn activity(method: Option<&str>) -> (i64, &'static str) {
    match method.map(str::to_ascii_uppercase).as_deref() {
        None => (0, "Unknown"),
        Some("POST") => (1, "Create"),
        Some("GET" | "HEAD") => (2, "Read"),
        Some("PUT" | "PATCH") => (3, "Update"),
        Some("DELETE") => (4, "Delete"),
        Some(_) => (99, "Other"),
    }
}

/// Drops the members whose value is null.
fn present(members: Vec<(&str, Value)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<String, Value>>(),
    )
}

fn text(v: &Option<String>) -> Value {
    v.as_deref().map_or(Value::Null, Value::from)
}

/// One event as an OCSF API Activity.
pub fn api_activity(e: &entity::activity_event::Model) -> Value {
    let (activity_id, activity_name) = activity(e.method.as_deref());
    let severity_id = match e.status_code {
        500.. => 3,
        400..=499 => 2,
        _ => 1,
    };
    let actor_user = present(vec![
        (
            "uid",
            e.user_id
                .as_deref()
                .or(e.principal_id.as_deref())
                .map_or(Value::Null, Value::from),
        ),
        ("type", text(&e.principal_type)),
    ]);
    let resource = present(vec![
        ("uid", text(&e.resource_id)),
        ("type", text(&e.resource_type)),
    ]);
    present(vec![
        ("class_uid", CLASS_UID.into()),
        ("class_name", "API Activity".into()),
        ("category_uid", 6.into()),
        ("category_name", "Application Activity".into()),
        ("activity_id", activity_id.into()),
        ("activity_name", activity_name.into()),
        ("type_uid", (CLASS_UID * 100 + activity_id).into()),
        ("type_name", format!("API Activity: {activity_name}").into()),
        ("time", e.ts.div_euclid(1_000).into()),
        ("severity_id", severity_id.into()),
        ("status_id", if e.success { 1 } else { 2 }.into()),
        (
            "status",
            if e.success { "Success" } else { "Failure" }.into(),
        ),
        ("status_code", e.status_code.to_string().into()),
        ("status_detail", text(&e.error_code)),
        ("duration", e.duration_ms.into()),
        (
            "api",
            present(vec![
                ("operation", e.action.as_str().into()),
                (
                    "request",
                    json!({ "uid": e.trace_id.as_deref().unwrap_or(&e.id) }),
                ),
                (
                    "response",
                    present(vec![
                        ("code", e.status_code.into()),
                        ("error", text(&e.error_code)),
                    ]),
                ),
                (
                    "service",
                    e.resource_type
                        .as_deref()
                        .map_or(Value::Null, |t| json!({ "name": t })),
                ),
            ]),
        ),
        (
            "actor",
            present(vec![("user", actor_user), ("app_uid", text(&e.app_id))]),
        ),
        (
            "src_endpoint",
            present(vec![("uid", text(&e.principal_id))]),
        ),
        (
            "http_request",
            if e.method.is_none() && e.path.is_none() {
                Value::Null
            } else {
                present(vec![
                    ("http_method", text(&e.method)),
                    (
                        "url",
                        e.path
                            .as_deref()
                            .map_or(Value::Null, |p| json!({ "path": p })),
                    ),
                ])
            },
        ),
        ("http_response", json!({ "code": e.status_code })),
        (
            "resources",
            if e.resource_id.is_none() && e.resource_type.is_none() {
                Value::Null
            } else {
                json!([resource])
            },
        ),
        ("cloud", json!({ "provider": "activity-gateway" })),
        (
            "metadata",
            present(vec![
                ("version", "1.3.0".into()),
                (
                    "product",
                    json!({
                        "name": "activity-gateway",
                        "vendor_name": "activity-gateway",
                        "version": env!("CARGO_PKG_VERSION"),
                    }),
                ),
                ("uid", e.id.as_str().into()),
                ("sequence", e.log_index.into()),
                ("tenant_uid", e.org_id.as_str().into()),
                ("correlation_uid", text(&e.trace_id)),
                ("log_name", "activity".into()),
            ]),
        ),
        (
            "unmapped",
            present(vec![
                ("workspace_id", text(&e.workspace_id)),
                ("augmentation_id", text(&e.augmentation_id)),
                ("token_id", text(&e.token_id)),
                ("token_type", text(&e.token_type)),
                ("execution_id", text(&e.execution_id)),
                ("stages_completed", e.stages_completed.into()),
                ("total_stages", e.total_stages.into()),
                ("token_usage", stored_json(&e.token_usage)),
                ("metadata", stored_json(&e.metadata)),
            ]),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_maps_field_by_field() {
        let e = entity::activity_event::Model {
            seq: 1,
            id: "act_9".into(),
            org_id: "org_a".into(),
            ts: 1_793_534_400_123_456,
            trace_id: Some("t-1".into()),
            user_id: None,
            workspace_id: Some("ws_1".into()),
            app_id: Some("app_1".into()),
            endpoint_id: None,
            augmentation_id: None,
            principal_type: Some("api_key".into()),
            principal_id: Some("key_1".into()),
            token_id: Some("key_1".into()),
            token_type: Some("api_key".into()),
            method: Some("patch".into()),
            path: Some("/v1/x".into()),
            resource_type: Some("document".into()),
            resource_id: Some("doc_1".into()),
            action: "documents.update".into(),
            status_code: 404,
            success: false,
            error_code: Some("NOT_FOUND".into()),
            duration_ms: 12,
            execution_id: None,
            stages_completed: None,
            total_stages: None,
            token_usage: "{}".into(),
            tokens_total: 0,
            metadata: r#"{"k":1}"#.into(),
            log_index: Some(5),
        };
        let o = api_activity(&e);
        assert_eq!(o["class_uid"], 6003);
        assert_eq!(o["category_uid"], 6);
        assert_eq!(o["activity_id"], 3);
        assert_eq!(o["type_uid"], 600303);
        assert_eq!(o["type_name"], "API Activity: Update");
        assert_eq!(o["time"], 1_793_534_400_123i64);
        assert_eq!(o["severity_id"], 2);
        assert_eq!(o["status_id"], 2);
        assert_eq!(o["status_code"], "404");
        assert_eq!(o["status_detail"], "NOT_FOUND");
        assert_eq!(o["api"]["operation"], "documents.update");
        assert_eq!(o["api"]["request"]["uid"], "t-1");
        assert_eq!(
            o["api"]["response"],
            json!({ "code": 404, "error": "NOT_FOUND" })
        );
        assert_eq!(
            o["actor"]["user"],
            json!({ "uid": "key_1", "type": "api_key" })
        );
        assert_eq!(o["actor"]["app_uid"], "app_1");
        assert_eq!(
            o["http_request"],
            json!({ "http_method": "patch", "url": { "path": "/v1/x" } })
        );
        assert_eq!(
            o["resources"],
            json!([{ "uid": "doc_1", "type": "document" }])
        );
        assert_eq!(o["metadata"]["uid"], "act_9");
        assert_eq!(o["metadata"]["sequence"], 5);
        assert_eq!(o["metadata"]["tenant_uid"], "org_a");
        assert_eq!(o["unmapped"]["workspace_id"], "ws_1");
        assert_eq!(o["unmapped"]["metadata"], json!({ "k": 1 }));
        assert!(o.get("user_id").is_none());
        // No method: Unknown.
        let o = api_activity(&entity::activity_event::Model { method: None, ..e });
        assert_eq!(o["activity_id"], 0);
        assert_eq!(o["type_uid"], 600300);
        assert!(
            o.get("http_request").is_some(),
            "the path alone still gives the request"
        );
    }
}
