//! Abusive GraphQL is refused before any work is done: the 40-alias fan-out
//! and a 1,000-operation batch each answer in under 50 ms. Alone in its
//! binary: it measures time, which heavy tests running beside it would skew.

use std::time::{Duration, Instant};

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use serde_json::{json, Value};

on_both_backends!(the_fan_out_and_a_huge_batch_are_refused_in_under_50_ms);

async fn the_fan_out_and_a_huge_batch_are_refused_in_under_50_ms(db: TestDb) {
    db.seed(500).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let one = r#"org(id: "org_acme") { workspaces { nodes { apps { nodes { endpoints { nodes { activitySummary(hours: 168) { totalRequests } } } } } } } }"#;
    let aliases: Vec<String> = (0..40).map(|i| format!("a{i}: {one}")).collect();
    let fan_out = json!({ "query": format!("{{ {} }}", aliases.join(" ")) });
    let batch = Value::Array(vec![
        json!({ "query": r#"{ org(id: "org_acme") { activitySummary(hours: 168) { totalRequests } } }"# });
        1_000
    ]);
    for body in [fan_out, batch] {
        let body = body.to_string();
        // The best of five, so that one slow moment of a shared machine does not decide.
        let mut fastest = Duration::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            let response = app
                .client
                .post(app.url("/graphql"))
                .header("X-Api-Key", &key)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let (status, answer) = read(response).await;
            fastest = fastest.min(started.elapsed());
            assert!(status == 400 || answer["errors"].is_array(), "{answer}");
            assert!(answer["data"].is_null(), "{answer}");
        }
        assert!(
            fastest < Duration::from_millis(50),
            "refused after {fastest:?}"
        );
    }
}
