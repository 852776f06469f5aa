//! OpenTelemetry traces over OTLP: the real binary, pointed by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` at a collector played by this test (it reads
//! the exports with OpenTelemetry's own protocol types), sends a span per
//! request with its matched route, continues a caller's W3C `traceparent`
//! into the spans of the database queries it makes (their statements with
//! placeholders, never the values), and flushes them when it
//! stops.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use crate::common::{terminate, Served, TestDb};
use activity_gateway::domain::permission::Role;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;

on_both_backends!(
    every_request_becomes_a_span_named_by_its_route_at_the_otlp_collector,
    a_callers_traceparent_is_continued_into_the_spans_of_its_database_queries,
    a_malformed_traceparent_is_ignored_and_the_request_starts_its_own_trace,
);

/// A collector: the OTLP/HTTP JSON exports posted to `/v1/traces`, read as
/// the protocol's own messages (an export that does not parse is kept as an
/// error, so the test sees it).
type Exports = Arc<Mutex<Vec<Result<ExportTraceServiceRequest, String>>>>;

async fn collector() -> (String, Exports) {
    let received = Exports::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let export = serde_json::from_slice(&body).map_err(|e| e.to_string());
                store.lock().unwrap().push(export);
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Serves `db` with the real binary, its OTLP exports going to a collector,
/// makes `requests` feed requests with `headers`, stops it with SIGTERM (it
/// flushes its spans as it exits), and answers the exports received.
async fn traced_requests(
    db: &TestDb,
    requests: usize,
    headers: &[(&str, &str)],
) -> Vec<ExportTraceServiceRequest> {
    let key = db.key("org_acme", Role::Viewer).await;
    let (url, received) = collector().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
        ("OTEL_SERVICE_NAME", "gateway-under-test"),
    ];
    let mut served = Served::start(&db.url, &[], &env, Stdio::null()).await;
    let client = reqwest::Client::new();
    for _ in 0..requests {
        let mut request = client
            .get(format!("{}/v1/orgs/org_acme/activity?limit=5", served.base))
            .header("X-Api-Key", &key);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
    }
    terminate(&mut served.child);
    let received = received.lock().unwrap().clone();
    received
        .into_iter()
        .map(|export| export.expect("every export is a valid OTLP message"))
        .collect()
}

fn spans(exports: &[ExportTraceServiceRequest]) -> Vec<&Span> {
    exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect()
}

/// A string attribute's value.
fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

const FEED_ROUTE: &str = "/v1/orgs/{org_id}/activity";

async fn every_request_becomes_a_span_named_by_its_route_at_the_otlp_collector(db: TestDb) {
    db.seed(20).await;
    let exports = traced_requests(&db, 3, &[]).await;
    let spans = spans(&exports);
    let requests: Vec<&&Span> = spans
        .iter()
        .filter(|s| s.name == "request" && attribute(&s.attributes, "route") == Some(FEED_ROUTE))
        .collect();
    assert_eq!(requests.len(), 3, "{spans:?}");
    assert!(
        requests
            .iter()
            .all(|s| attribute(&s.attributes, "method") == Some("GET")),
        "{requests:?}"
    );
    // Three requests without a caller's trace: three traces of their own.
    let traces: std::collections::HashSet<&Vec<u8>> =
        requests.iter().map(|s| &s.trace_id).collect();
    assert_eq!(traces.len(), 3);
    assert!(requests.iter().all(|s| s.parent_span_id.is_empty()));
    let service = exports[0].resource_spans[0]
        .resource
        .as_ref()
        .map(|r| attribute(&r.attributes, "service.name"));
    assert_eq!(service, Some(Some("gateway-under-test")));
}

async fn a_callers_traceparent_is_continued_into_the_spans_of_its_database_queries(db: TestDb) {
    db.seed(20).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{caller_span}-01");
    let exports = traced_requests(&db, 1, &[("traceparent", &traceparent)]).await;
    let spans = spans(&exports);

    let request = spans
        .iter()
        .find(|s| s.name == "request" && attribute(&s.attributes, "route") == Some(FEED_ROUTE))
        .unwrap_or_else(|| panic!("no request span: {spans:?}"));
    assert_eq!(hex::encode(&request.trace_id), trace);
    assert_eq!(hex::encode(&request.parent_span_id), caller_span);

    // Every span under the request, at any depth.
    let mut under = vec![request.span_id.clone()];
    let mut descendants: Vec<&Span> = Vec::new();
    while let Some(parent) = under.pop() {
        for child in spans.iter().filter(|s| s.parent_span_id == parent) {
            under.push(child.span_id.clone());
            descendants.push(child);
        }
    }
    let queries: Vec<&&Span> = descendants
        .iter()
        .filter(|s| s.name.starts_with("sea_orm."))
        .collect();
    let selects = queries
        .iter()
        .filter(|q| attribute(&q.attributes, "db.operation") == Some("SELECT"))
        .count();
    // The credential, the page and its count at least.
    assert!(selects >= 3, "{queries:?}");
    let system = if db.url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgresql"
    };
    for query in &queries {
        assert_eq!(hex::encode(&query.trace_id), trace, "{query:?}");
        assert_eq!(attribute(&query.attributes, "db.system"), Some(system));
        // A client span, as OpenTelemetry's database conventions say.
        assert_eq!(query.kind, 3, "{query:?}");
        // The statement has placeholders: the values (the key's hash, the
        // org) are bound, never in the text a collector keeps.
        let statement = attribute(&query.attributes, "db.statement").unwrap_or_default();
        assert!(!statement.contains("org_acme"), "{statement}");
    }
}

async fn a_malformed_traceparent_is_ignored_and_the_request_starts_its_own_trace(db: TestDb) {
    db.seed(20).await;
    // Upper-case hex, and an all-zero trace id: both invalid in W3C's terms.
    for traceparent in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let exports = traced_requests(&db, 1, &[("traceparent", traceparent)]).await;
        let spans = spans(&exports);
        let request = spans
            .iter()
            .find(|s| s.name == "request")
            .unwrap_or_else(|| panic!("no request span: {spans:?}"));
        assert!(request.parent_span_id.is_empty(), "{request:?}");
        assert_eq!(request.trace_id.len(), 16);
        assert!(request.trace_id.iter().any(|b| *b != 0), "{request:?}");
        assert_ne!(
            hex::encode(&request.trace_id),
            traceparent[3..35].to_ascii_lowercase()
        );
    }
}
