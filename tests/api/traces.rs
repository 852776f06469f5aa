//! OpenTelemetry traces over OTLP: the real binary, pointed by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` at a collector played by this test, sends a
//! span per request, with its matched route, and flushes them when it
//! stops.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use crate::common::{terminate, Served, TestDb};
use activity_gateway::domain::permission::Role;
use serde_json::Value;

on_both_backends!(every_request_becomes_a_span_at_the_otlp_collector);

/// A collector: the OTLP/HTTP JSON bodies posted to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                    store.lock().unwrap().push(value);
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Serves `db` with the real binary and `env`, makes a few requests, stops
/// it with SIGTERM, and answers once it has exited.
async fn serve_and_stop(db: &TestDb, key: &str, env: &[(&str, &str)]) {
    let mut served = Served::start(&db.url, &[], env, Stdio::null()).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let answer = client
            .get(format!("{}/v1/orgs/org_acme/activity?limit=5", served.base))
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    terminate(&mut served.child);
}

/// Every span of the received exports: (name, attributes as "key=value").
fn spans(received: &[Value]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for export in received {
        for resource in export["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let attributes = span["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            format!(
                                "{}={}",
                                a["key"].as_str().unwrap_or_default(),
                                a["value"]["stringValue"].as_str().unwrap_or_default()
                            )
                        })
                        .collect();
                    out.push((
                        span["name"].as_str().unwrap_or_default().to_owned(),
                        attributes,
                    ));
                }
            }
        }
    }
    out
}

async fn every_request_becomes_a_span_at_the_otlp_collector(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Viewer).await;

    let (url, received) = collector().await;
    serve_and_stop(
        &db,
        &key,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_SERVICE_NAME", "gateway-under-test"),
        ],
    )
    .await;
    let received = received.lock().unwrap().clone();
    let spans = spans(&received);
    let requests: Vec<&(String, Vec<String>)> = spans
        .iter()
        .filter(|(name, attributes)| {
            name == "request"
                && attributes
                    .iter()
                    .any(|a| a == "route=/v1/orgs/{org_id}/activity")
        })
        .collect();
    assert_eq!(requests.len(), 3, "{spans:?}");
    assert!(
        requests
            .iter()
            .all(|(_, a)| a.iter().any(|a| a == "method=GET")),
        "{requests:?}"
    );
    let service = received[0]["resourceSpans"][0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .map(|a| a["value"]["stringValue"].clone());
    assert_eq!(service, Some(Value::from("gateway-under-test")));
}
