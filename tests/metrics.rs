//! `/metrics`: requests by matched route, method and status with latency
//! histograms, GraphQL operations by type, root field and outcome, and the
//! figures of the moment (pool, rollup lag, recorder, live tail), each
//! checked against what really happened.

mod common;

use activity_gateway::domain::permission::Role;
use common::{TestApp, TestDb};
use serde_json::json;

on_both_backends!(metrics_count_what_happened);

async fn scrape(app: &TestApp, key: &str) -> String {
    app.client
        .get(app.url("/metrics"))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series `series` (name and labels, as printed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_count_what_happened(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;

    for _ in 0..2 {
        let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=5", &key).await;
        assert_eq!(status, 200);
    }
    let (status, _) = app.get("/no/such/route", &key).await;
    assert_eq!(status, 404);
    let (_, ok) = app.graphql(&key, "{ viewer { principalId } }").await;
    assert!(ok["errors"].is_null(), "{ok}");
    let (_, refused) = app.graphql(&key, "{ nope }").await;
    assert!(refused["errors"].is_array(), "{refused}");
    let (status, _) = app
        .post_json(
            &key,
            "/v1/orgs/org_acme/activity",
            &json!([{ "action": "read" }, { "action": "read" }, { "action": "read" }]),
        )
        .await;
    assert_eq!(status, 200);

    let text = scrape(&app, &key).await;
    let feed = r#"{route="/v1/orgs/{org_id}/activity",method="GET",status="200"}"#;
    assert_eq!(
        value(
            &text,
            &format!("activity_gateway_http_requests_total{feed}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("activity_gateway_http_request_duration_seconds_count{feed}")
        ),
        Some(2.0),
        "{text}"
    );
    let slowest_bucket = format!(
        "activity_gateway_http_request_duration_seconds_bucket{{route=\"/v1/orgs/{{org_id}}/activity\",method=\"GET\",status=\"200\",le=\"+Inf\"}}"
    );
    assert_eq!(value(&text, &slowest_bucket), Some(2.0), "{text}");
    // Unknown paths count under one series, whatever the path.
    assert_eq!(
        value(
            &text,
            r#"activity_gateway_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"activity_gateway_graphql_operations_total{type="query",field="viewer",outcome="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"activity_gateway_graphql_operations_total{type="none",field="none",outcome="error"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // The pool: what is open is in use or idle.
    let open = value(&text, "activity_gateway_db_pool_connections").unwrap();
    let in_use = value(&text, "activity_gateway_db_pool_in_use").unwrap();
    let idle = value(&text, "activity_gateway_db_pool_idle").unwrap();
    assert!(open >= 1.0, "{text}");
    assert_eq!(in_use + idle, open, "{text}");
    assert!(
        value(&text, "activity_gateway_recorder_queued").is_some(),
        "{text}"
    );
    assert_eq!(
        value(&text, "activity_gateway_live_subscriptions"),
        Some(0.0)
    );

    // Rollup lag: the events beyond the watermark, then none after a fold.
    let watermark = activity_gateway::service::rollups::watermark(&db.db)
        .await
        .unwrap();
    let unfolded = db.count_events(&format!("seq > {watermark}")).await;
    assert!(unfolded >= 3, "the three ingested events at least");
    assert_eq!(
        value(&text, "activity_gateway_rollup_unfolded_events"),
        Some(unfolded as f64),
        "{text}"
    );
    activity_gateway::service::rollups::refresh(&db.db)
        .await
        .unwrap();
    let text = scrape(&app, &key).await;
    assert_eq!(
        value(&text, "activity_gateway_rollup_unfolded_events"),
        Some(0.0),
        "{text}"
    );
    let since = value(&text, "activity_gateway_rollup_seconds_since_fold").unwrap();
    assert!((0.0..60.0).contains(&since), "{text}");
}
