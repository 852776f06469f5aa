//! What a delivery carries, per format and request shape.
//!
//! A `STANDARD` webhook delivery is one JSON object:
//! `{"type": "activity.batch", "org_id", "stream_id", "first_index",
//! "last_index", "events": [...]}`, events in log order, each the REST
//! activity shape with `org_id` and `log_index` added (the `native` format).
//! Its Standard Webhooks message id is `{stream_id}_{first}_{last}`; every
//! event carries its own `id` too, for receivers that deduplicate per event.

use serde_json::{Map, Value};

use super::Format;
use crate::service::events::EventRow;
use crate::service::log::leaf::rest_object;

/// Events per delivery at most.
pub const MAX_BATCH_EVENTS: u64 = 1_000;
/// Bytes of events per delivery, about: a batch stops growing past this
/// (one event always goes, whatever its size).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One event as a stream writes it.
pub fn event(format: Format, e: &entity::activity_event::Model) -> Value {
    match format {
        Format::Native => {
            let row = EventRow::from(e.clone());
            let mut object = match rest_object(&row) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            object.insert("org_id".into(), e.org_id.as_str().into());
            object.insert("log_index".into(), e.log_index.into());
            Value::Object(object)
        }
    }
}

/// The body of one delivery of `events` (in log order, at least one).
pub fn batch_body(
    org_id: &str,
    stream_id: &str,
    first: i64,
    last: i64,
    events: &[Value],
) -> Vec<u8> {
    let body = serde_json::json!({
        "type": "activity.batch",
        "org_id": org_id,
        "stream_id": stream_id,
        "first_index": first,
        "last_index": last,
        "events": events,
    });
    serde_json::to_vec(&body).unwrap_or_default()
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
