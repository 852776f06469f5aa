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
    let text = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
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

/// The event's canonical bytes: [`canonical_bytes`] of [`rest_object`],
/// written straight from the row (its members in RFC 8785's order, which
/// for these ASCII names is byte order), so ingest builds no JSON tree but
/// the two nested objects'. A test holds the two equal.
pub fn canonical(e: &EventRow) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(768);
    let text = |out: &mut Vec<u8>, v: Option<&str>| match v {
        // serde_json escapes strings exactly as RFC 8785 does.
        Some(s) => serde_json::to_writer(&mut *out, s).unwrap_or_default(),
        None => out.extend_from_slice(b"null"),
    };
    // RFC 8785 writes numbers as ECMAScript doubles: exact integers as
    // digits, larger ones (no row within the ingest limits) as a double.
    let int = |out: &mut Vec<u8>, v: Option<i64>| match v {
        Some(n) if n.unsigned_abs() <= 1 << 53 => {
            let _ = write!(out, "{n}");
        }
        Some(n) => out.extend_from_slice(&canonical_bytes(&Value::from(n))),
        None => out.extend_from_slice(b"null"),
    };
    let key = |out: &mut Vec<u8>, name: &str, first: bool| {
        out.extend_from_slice(if first { b"{\"" } else { b",\"" });
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    key(&mut out, "action", true);
    text(&mut out, Some(&e.action));
    key(&mut out, "app_id", false);
    text(&mut out, e.app_id.as_deref());
    key(&mut out, "augmentation_id", false);
    text(&mut out, e.augmentation_id.as_deref());
    key(&mut out, "duration_ms", false);
    int(&mut out, Some(e.duration_ms));
    key(&mut out, "error_code", false);
    text(&mut out, e.error_code.as_deref());
    key(&mut out, "execution_id", false);
    text(&mut out, e.execution_id.as_deref());
    key(&mut out, "id", false);
    text(&mut out, Some(&e.id));
    key(&mut out, "metadata", false);
    out.extend_from_slice(&canonical_bytes(&stored_json(&e.metadata)));
    key(&mut out, "method", false);
    text(&mut out, e.method.as_deref());
    key(&mut out, "path", false);
    text(&mut out, e.path.as_deref());
    key(&mut out, "principal_id", false);
    text(&mut out, e.principal_id.as_deref());
    key(&mut out, "principal_type", false);
    text(&mut out, e.principal_type.as_deref());
    key(&mut out, "resource_id", false);
    text(&mut out, e.resource_id.as_deref());
    key(&mut out, "resource_type", false);
    text(&mut out, e.resource_type.as_deref());
    key(&mut out, "stages_completed", false);
    int(&mut out, e.stages_completed.map(i64::from));
    key(&mut out, "status_code", false);
    int(&mut out, Some(i64::from(e.status_code)));
    key(&mut out, "success", false);
    out.extend_from_slice(if e.success { b"true" } else { b"false" });
    key(&mut out, "timestamp", false);
    text(&mut out, Some(&format_micros(e.ts)));
    key(&mut out, "token_id", false);
    text(&mut out, e.token_id.as_deref());
    key(&mut out, "token_type", false);
    text(&mut out, e.token_type.as_deref());
    key(&mut out, "token_usage", false);
    out.extend_from_slice(&canonical_bytes(&stored_json(&e.token_usage)));
    key(&mut out, "total_stages", false);
    int(&mut out, e.total_stages.map(i64::from));
    key(&mut out, "trace_id", false);
    text(&mut out, e.trace_id.as_deref());
    key(&mut out, "user_id", false);
    text(&mut out, e.user_id.as_deref());
    key(&mut out, "workspace_id", false);
    text(&mut out, e.workspace_id.as_deref());
    out.push(b'}');
    out
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
    fn the_canonical_bytes_written_from_the_row_are_rfc_8785_of_its_rest_object() {
        let rows = [
            EventRow {
                id: "act_\"quoted\\\u{1}\u{7f}".into(),
                action: "r\u{e9}ad \u{2028} \u{1f600}".into(),
                path: Some("/a\tb\nc\r<script>&".into()),
                stages_completed: Some(0),
                total_stages: Some(-3),
                duration_ms: i64::MAX,
                status_code: 599,
                ts: -1,
                token_usage: r#"{"b":2,"a":1,"\u00e9":3,"z":{"y":[1.5,1e21,-0.0]}}"#.into(),
                metadata: "not json".into(),
                ..EventRow::default()
            },
            EventRow {
                id: "act_2".into(),
                action: "x".into(),
                trace_id: Some(String::new()),
                user_id: Some("usr".into()),
                workspace_id: Some("ws".into()),
                app_id: Some("app".into()),
                augmentation_id: Some("aug".into()),
                principal_type: Some("user".into()),
                principal_id: Some("p".into()),
                token_id: Some("t".into()),
                token_type: Some("api_key".into()),
                method: Some("GET".into()),
                resource_type: Some("r".into()),
                resource_id: Some("rid".into()),
                error_code: Some("E".into()),
                execution_id: Some("ex".into()),
                success: true,
                ts: 1_793_534_400_123_456,
                token_usage: "{}".into(),
                metadata: r#"{"\ud83d\ude00":1,"\u20ac":2,"a":null}"#.into(),
                ..EventRow::default()
            },
        ];
        for row in rows {
            let slow = canonical_bytes(&rest_object(&row));
            assert_eq!(
                String::from_utf8(canonical(&row)).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
    }

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
