//! The leaf of an event: SHA-256(0x00 || canonical bytes), RFC 9162 section
//! 2.1.1. The canonical bytes are the RFC 8785 (JCS) serialisation of the
//! event exactly as the REST activity routes answer it, so anyone can
//! recompute a leaf from a REST answer or an export row.

use serde_json::{Map, Value};
use tlog_tiles::Hash;

use crate::domain::text::stored_json;
use crate::domain::time::format_micros;
use crate::service::events::EventRow;

/// The event as the REST activity shape writes it: every member, nulls
/// included, `token_usage` and `metadata` as JSON objects.
pub fn rest_object(e: &EventRow) -> Value {
    let text = |v: &Option<String>| v.as_deref().map_or(Value::Null, |s| Value::from(s));
    let int = |v: Option<i32>| v.map_or(Value::Null, Value::from);
    let mut m = Map::new();
    m.insert("id".into(), e.id.as_str().into());
    m.insert("timestamp".into(), format_micros(e.ts).into());
    m.insert("trace_id".into(), text(&e.trace_id));
    m.insert("user_id".into(), text(&e.user_id));
    m.insert("workspace_id".into(), text(&e.workspace_id));
    m.insert("app_id".into(), text(&e.app_id));
    m.insert("principal_type".into(), text(&e.principal_type));
    m.insert("principal_id".into(), text(&e.principal_id));
    m.insert("token_id".into(), text(&e.token_id));
    m.insert("token_type".into(), text(&e.token_type));
    m.insert("method".into(), text(&e.method));
    m.insert("path".into(), text(&e.path));
    m.insert("resource_type".into(), text(&e.resource_type));
    m.insert("resource_id".into(), text(&e.resource_id));
    m.insert("action".into(), e.action.as_str().into());
    m.insert("status_code".into(), e.status_code.into());
    m.insert("success".into(), e.success.into());
    m.insert("error_code".into(), text(&e.error_code));
    m.insert("duration_ms".into(), e.duration_ms.into());
    m.insert("execution_id".into(), text(&e.execution_id));
    m.insert("augmentation_id".into(), text(&e.augmentation_id));
    m.insert("stages_completed".into(), int(e.stages_completed));
    m.insert("total_stages".into(), int(e.total_stages));
    m.insert("token_usage".into(), stored_json(&e.token_usage));
    m.insert("metadata".into(), stored_json(&e.metadata));
    Value::Object(m)
}

/// RFC 8785 bytes of a JSON value.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: its keys are strings and its
    // numbers finite.
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

/// The event's canonical bytes.
pub fn canonical(e: &EventRow) -> Vec<u8> {
    canonical_bytes(&rest_object(e))
}

/// The event's leaf hash.
pub fn leaf_hash(e: &EventRow) -> Hash {
    tlog_tiles::record_hash(&canonical(e))
}

impl From<entity::activity_event::Model> for EventRow {
    fn from(e: entity::activity_event::Model) -> Self {
        Self {
            id: e.id,
            org_id: e.org_id,
            ts: e.ts,
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
            action: e.action,
            status_code: e.status_code,
            success: e.success,
            error_code: e.error_code,
            duration_ms: e.duration_ms,
            execution_id: e.execution_id,
            stages_completed: e.stages_completed,
            total_stages: e.total_stages,
            token_usage: e.token_usage,
            tokens_total: e.tokens_total,
            metadata: e.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_is_sha256_of_a_zero_byte_and_the_sorted_compact_json() {
        let e = EventRow {
            id: "act_1".into(),
            org_id: "org_a".into(),
            ts: 0,
            action: "read".into(),
            status_code: 200,
            success: true,
            token_usage: r#"{"b":2,"a":1}"#.into(),
            metadata: r#"{"z":1.5e1,"é":"<"}"#.into(),
            ..EventRow::default()
        };
        let text = String::from_utf8(canonical(&e)).unwrap();
        assert!(text.starts_with(r#"{"action":"read","app_id":null,"augmentation_id":null,"duration_ms":0,"error_code":null,"execution_id":null,"id":"act_1","metadata":{"z":15,"é":"<"},"#), "{text}");
        assert!(text.contains(r#""timestamp":"1970-01-01T00:00:00.000000Z","token_id":null,"token_type":null,"token_usage":{"a":1,"b":2}"#), "{text}");
        use sha2::Digest;
        let mut expected = sha2::Sha256::new();
        expected.update([0u8]);
        expected.update(text.as_bytes());
        assert_eq!(leaf_hash(&e).0.to_vec(), expected.finalize().to_vec());
    }
}
