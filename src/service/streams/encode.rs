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

use super::{Destination, Format, WebhookShape};
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
        Format::Ocsf => serde_json::to_vec(&super::ocsf::api_activity(&e)).unwrap_or_default(),
    }
}

/// What one delivery of `events` (their timestamps and JSON, in log order)
/// sends to `destination`.
pub fn delivery(
    destination: &Destination,
    org_id: &str,
    stream_id: &str,
    first: i64,
    last: i64,
    events: &[(i64, Vec<u8>)],
) -> Vec<u8> {
    match destination {
        Destination::Webhook { shape, .. } => body(*shape, org_id, stream_id, first, last, events),
        Destination::Syslog { .. } => syslog_frames(events),
        Destination::S3 { .. } => gzip_ndjson(events),
    }
}

/// One delivery as it goes out: the id a receiver deduplicates on (the
/// Standard Webhooks message id), the name of the object it becomes in a
/// bucket (under the destination's prefix), and the bytes.
#[derive(Debug, Clone)]
pub struct Parcel {
    pub id: String,
    pub object: String,
    pub body: Vec<u8>,
}

/// The delivery of the events from log index `first` to `last` (their
/// timestamps and JSON, in log order). In a bucket it is the object
/// `{org_id}/{yyyy}/{mm}/{dd}/{hh}/{first}-{last}.ndjson.gz`, by the UTC
/// hour of its first event and with both indexes in 20 digits, so that
/// names sort in log order and a batch sent again lands on the same name.
pub fn batch_parcel(
    destination: &Destination,
    org_id: &str,
    stream_id: &str,
    first: i64,
    last: i64,
    events: &[(i64, Vec<u8>)],
) -> Parcel {
    let hour = crate::domain::time::to_datetime(events.first().map_or(0, |(ts, _)| *ts))
        .format("%Y/%m/%d/%H");
    Parcel {
        id: format!("{stream_id}_{first}_{last}"),
        object: format!("{org_id}/{hour}/{first:020}-{last:020}.ndjson.gz"),
        body: delivery(destination, org_id, stream_id, first, last, events),
    }
}

/// Every event's JSON on a line of its own, gzipped.
pub fn gzip_ndjson(events: &[(i64, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write as _;
    let size: usize = events.iter().map(|(_, e)| e.len() + 1).sum();
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(size / 4 + 64),
        flate2::Compression::fast(),
    );
    for (_, event) in events {
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(event);
        let _ = gz.write_all(b"\n");
    }
    gz.finish().unwrap_or_default()
}

/// RFC 5424 messages, each framed by octet counting (RFC 6587: its length
/// in decimal, a space, the message): facility 13 (log audit), severity 6
/// (informational), the event's time, `activity-gateway` as the host and
/// the app, no process id, `activity` as the message id, no structured
/// data, and the event's JSON as the message.
pub fn syslog_frames(events: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.iter().map(|(_, e)| e.len() + 96).sum());
    for (ts, event) in events {
        let head = format!(
            "<110>1 {} activity-gateway activity-gateway - activity - ",
            crate::domain::time::format_micros(*ts)
        );
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(head.len() + event.len())
                .as_bytes(),
        );
        out.push(b' ');
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(event);
    }
    out
}

/// The body of one delivery of `events` (their timestamps and JSON, in log
/// order) in a webhook's request shape.
pub fn body(
    shape: WebhookShape,
    org_id: &str,
    stream_id: &str,
    first: i64,
    last: i64,
    events: &[(i64, Vec<u8>)],
) -> Vec<u8> {
    match shape {
        WebhookShape::Standard => batch_body(org_id, stream_id, first, last, events),
        WebhookShape::SplunkHec => splunk_body(events),
        WebhookShape::Datadog => datadog_body(org_id, stream_id, events),
    }
}

/// The Standard Webhooks body of one delivery.
pub fn batch_body(
    org_id: &str,
    stream_id: &str,
    first: i64,
    last: i64,
    events: &[(i64, Vec<u8>)],
) -> Vec<u8> {
    let size: usize = events.iter().map(|(_, e)| e.len() + 1).sum();
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
    for (n, (_, e)) in events.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The body of one delivery to Splunk's HTTP Event Collector: one event
/// object per event, concatenated (HEC's batch form), each with its time in
/// seconds, `sourcetype` `_json`, and the event as `event`.
pub fn splunk_body(events: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.iter().map(|(_, e)| e.len() + 96).sum());
    for (n, (ts, event)) in events.iter().enumerate() {
        if n > 0 {
            out.push(b'\n');
        }
        let seconds = format!(
            "{}.{:06}",
            ts.div_euclid(1_000_000),
            ts.rem_euclid(1_000_000)
        );
        out.extend_from_slice(b"{\"time\":");
        out.extend_from_slice(seconds.as_bytes());
        out.extend_from_slice(
            b",\"source\":\"activity-gateway\",\"sourcetype\":\"_json\",\"event\":",
        );
        out.extend_from_slice(event);
        out.push(b'}');
    }
    out
}

/// The body of one delivery to Datadog's logs intake: a JSON array of logs,
/// each with `ddsource` and `service` `activity-gateway`, `ddtags` naming the
/// org and stream, the event's time in milliseconds as `timestamp`, and the
/// event (JSON text) as `message`, which Datadog parses into attributes.
pub fn datadog_body(org_id: &str, stream_id: &str, events: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let tags = format!("org_id:{org_id},stream_id:{stream_id}");
    let logs: Vec<serde_json::Value> = events
        .iter()
        .map(|(ts, event)| {
            serde_json::json!({
                "ddsource": "activity-gateway",
                "service": "activity-gateway",
                "ddtags": tags,
                "timestamp": ts.div_euclid(1_000),
                "message": String::from_utf8_lossy(event),
            })
        })
        .collect();
    serde_json::to_vec(&logs).unwrap_or_default()
}

/// The delivery of a signed checkpoint of the org's log: for a Standard
/// Webhooks destination `{"type": "log.checkpoint", "org_id", "stream_id",
/// "tree_size", "checkpoint"}` (the signed note); for Splunk and Datadog,
/// that object as one event; in a bucket, the object
/// `{org_id}/checkpoints/{tree_size}.ndjson.gz`.
pub fn checkpoint_parcel(
    destination: &Destination,
    org_id: &str,
    stream_id: &str,
    tree_size: i64,
    note: &str,
) -> Parcel {
    let checkpoint = serde_json::json!({
        "type": "log.checkpoint",
        "org_id": org_id,
        "stream_id": stream_id,
        "tree_size": tree_size,
        "checkpoint": note,
    });
    let bytes = serde_json::to_vec(&checkpoint).unwrap_or_default();
    Parcel {
        id: format!("{stream_id}_checkpoint_{tree_size}"),
        object: format!("{org_id}/checkpoints/{tree_size:020}.ndjson.gz"),
        body: one_object(destination, org_id, stream_id, bytes),
    }
}

/// One JSON object as its own delivery: the whole body of a Standard
/// Webhooks delivery, one event for Splunk and Datadog, one message for
/// syslog.
fn one_object(destination: &Destination, org_id: &str, stream_id: &str, bytes: Vec<u8>) -> Vec<u8> {
    let now = crate::domain::time::now_micros();
    match destination {
        Destination::Webhook {
            shape: WebhookShape::Standard,
            ..
        } => bytes,
        other => delivery(other, org_id, stream_id, 0, 0, &[(now, bytes)]),
    }
}

/// A test delivery (`testLogStream`): `{"type": "activity.test", ...,
/// "events": []}` as one object ([`one_object`]); in a bucket, the object
/// `{org_id}/tests/{id}.ndjson.gz`.
pub fn test_parcel(destination: &Destination, org_id: &str, stream_id: &str) -> Parcel {
    let id = format!("{stream_id}_test_{}", uuid::Uuid::now_v7().simple());
    let test = serde_json::json!({
        "type": "activity.test",
        "org_id": org_id,
        "stream_id": stream_id,
        "events": [],
    });
    Parcel {
        object: format!("{org_id}/tests/{id}.ndjson.gz"),
        body: one_object(
            destination,
            org_id,
            stream_id,
            serde_json::to_vec(&test).unwrap_or_default(),
        ),
        id,
    }
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
        let body = batch_body(
            "org_a",
            "lst_b",
            41,
            42,
            &[(1, bytes.clone()), (2, bytes.clone())],
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "activity.batch");
        assert_eq!(body["first_index"], 41);
        assert_eq!(body["last_index"], 42);
        assert_eq!(body["events"].as_array().unwrap().len(), 2);
        assert_eq!(body["events"][1], value);
        // Splunk: concatenated event objects, time in seconds.
        let ts = 1_793_534_400_123_456;
        let splunk = splunk_body(&[(ts, bytes.clone()), (ts + 1, bytes.clone())]);
        let mut objects =
            serde_json::Deserializer::from_slice(&splunk).into_iter::<serde_json::Value>();
        let first = objects.next().unwrap().unwrap();
        assert_eq!(first["time"], 1_793_534_400.123456);
        assert_eq!(first["sourcetype"], "_json");
        assert_eq!(first["event"], value);
        assert_eq!(
            objects.next().unwrap().unwrap()["time"],
            1_793_534_400.123457
        );
        assert!(objects.next().is_none());
        // Datadog: an array of logs, the event as the message's JSON text.
        let datadog: serde_json::Value =
            serde_json::from_slice(&datadog_body("org_a", "lst_b", &[(ts, bytes)])).unwrap();
        assert_eq!(datadog[0]["ddtags"], "org_id:org_a,stream_id:lst_b");
        assert_eq!(datadog[0]["timestamp"], 1_793_534_400_123i64);
        let message: serde_json::Value =
            serde_json::from_str(datadog[0]["message"].as_str().unwrap()).unwrap();
        assert_eq!(message, value);
    }
}
