//! What a delivery carries, per format and request shape.
//!
//! A `STANDARD` webhook delivery is one JSON object:
//! `{"type": "activity.batch", "org_id", "stream_id", "first_index",
//! "last_index", "events": [...]}`, events in log order. In the `native`
//! format each event is `log_index` and `org_id`, then the members of the
//! event's canonical bytes (the REST activity shape in RFC 8785 order, the
//! bytes its leaf hashes: see `service::log::leaf`), so a receiver can
//! recompute the leaf from what it got. Its Standard Webhooks message id is
//! `{stream_id}_{first}_{last}`; every event carries its own `id` too, for
//! receivers that deduplicate per event.

use super::Format;
use crate::service::events::EventRow;
use crate::service::log::leaf::canonical;

/// Events per delivery at most.
pub const MAX_BATCH_EVENTS: u64 = 1_000;
/// Bytes of events per delivery, about: a batch stops growing past this
/// (one event always goes, whatever its size).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One event as a stream writes it, as JSON bytes.
pub fn event(format: Format, e: entity::activity_event::Model) -> Vec<u8> {
    match format {
        Format::Native => {
            let log_index = e.log_index;
            let row = EventRow::from(e);
            let members = canonical(&row);
            let mut out = Vec::with_capacity(members.len() + 64 + row.org_id.len());
            out.extend_from_slice(b"{\"log_index\":");
            match log_index {
                Some(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"org_id\":");
            // Serialising a string cannot fail.
            let _ = serde_json::to_writer(&mut out, &row.org_id);
            out.push(b',');
            // The canonical bytes are an object: its members follow.
            out.extend_from_slice(members.get(1..).unwrap_or_default());
            out
        }
    }
}

/// The body of one delivery of `events` (each JSON, in log order).
pub fn batch_body(
    org_id: &str,
    stream_id: &str,
    first: i64,
    last: i64,
    events: &[Vec<u8>],
) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 256);
    let head = serde_json::json!({
        "type": "activity.batch",
        "org_id": org_id,
        "stream_id": stream_id,
        "first_index": first,
        "last_index": last,
    });
    let _ = serde_json::to_writer(&mut out, &head);
    // The head's closing brace gives way to the events.
    out.pop();
    out.extend_from_slice(b",\"events\":[");
    for (n, e) in events.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The body of a test delivery (`testLogStream`): no events.
pub fn test_body(org_id: &str, stream_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "activity.test",
        "org_id": org_id,
        "stream_id": stream_id,
        "events": [],
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::log::leaf::{canonical_bytes, rest_object};

    #[test]
    fn a_native_event_is_the_rest_shape_with_org_and_index_and_the_body_is_json() {
        let model = entity::activity_event::Model {
            seq: 7,
            id: "act_1".into(),
            org_id: "org_\"q\"".into(),
            ts: 1_793_534_400_000_000,
            trace_id: None,
            user_id: Some("usr_1".into()),
            workspace_id: None,
            app_id: None,
            endpoint_id: None,
            augmentation_id: None,
            principal_type: None,
            principal_id: None,
            token_id: None,
            token_type: None,
            method: Some("GET".into()),
            path: Some("/a\u{e9}".into()),
            resource_type: None,
            resource_id: None,
            action: "read".into(),
            status_code: 200,
            success: true,
            error_code: None,
            duration_ms: 3,
            execution_id: None,
            stages_completed: Some(2),
            total_stages: None,
            token_usage: r#"{"prompt_tokens":1}"#.into(),
            tokens_total: 1,
            metadata: r#"{"k":"<script>"}"#.into(),
            log_index: Some(41),
        };
        let bytes = event(Format::Native, model.clone());
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let mut expected = rest_object(&EventRow::from(model.clone()));
        expected["org_id"] = "org_\"q\"".into();
        expected["log_index"] = 41.into();
        assert_eq!(value, expected);
        // Without the two members, the bytes its leaf hashes.
        let mut rest = value.clone();
        rest.as_object_mut().unwrap().remove("org_id");
        rest.as_object_mut().unwrap().remove("log_index");
        assert_eq!(canonical_bytes(&rest), canonical(&EventRow::from(model)));
        let body = batch_body("org_a", "lst_b", 41, 42, &[bytes.clone(), bytes]);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "activity.batch");
        assert_eq!(body["first_index"], 41);
        assert_eq!(body["last_index"], 42);
        assert_eq!(body["events"].as_array().unwrap().len(), 2);
        assert_eq!(body["events"][1], value);
    }
}
