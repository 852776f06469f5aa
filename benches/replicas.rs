//! The live tail across replicas: how long an event ingested through one
//! gateway takes to reach a subscriber of another gateway on the same
//! database (p50/p99; goal on PostgreSQL: within 200 ms). Each gateway has
//! its own pool and its own live feed, as two processes would, so the only
//! ways across are PostgreSQL's NOTIFY and the one-second poll. SQLite, where
//! only the poll carries it, is printed as the baseline of the same run.
//!
//! `BENCH_REPLICA_EVENTS` sets how many events are timed (default 200).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

mod support;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let samples: usize = std::env::var("BENCH_REPLICA_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut p50s = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let Some((db, url, _dir)) = support::open_with_url(backend, "replicas", 100).await else {
            println!("[{backend}] skipped: set TEST_DATABASE_URL (scripts/bench.sh does)");
            continue;
        };
        let key = activity_gateway::service::keys::create(
            &db,
            activity_gateway::service::keys::NewKey {
                org_id: "org_acme".into(),
                role: Some(activity_gateway::domain::permission::Role::Admin),
                permissions: Default::default(),
                user_id: None,
                name: None,
            },
        )
        .await
        .unwrap()
        .secret;
        let settings = activity_gateway::config::HttpArgs {
            record_requests: false,
            ..Default::default()
        };
        let other = activity_gateway::db::connect(&url).await.unwrap();
        let (writer, stop_writer) = support::serve(&db, settings.clone()).await;
        let (reader, stop_reader) = support::serve(&other, settings).await;

        let mut request = format!("{}/graphql", reader.replace("http", "ws"))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        request
            .headers_mut()
            .insert("x-api-key", key.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
            .send(Message::text(
                json!({ "type": "connection_init" }).to_string(),
            ))
            .await
            .unwrap();
        socket.next().await.unwrap().unwrap();
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { activityAdded(orgId: \"org_acme\") { node { id } } }" } });
        socket
            .send(Message::text(subscribe.to_string()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;

        let client = reqwest::Client::new();
        let mut latencies = Vec::with_capacity(samples);
        for n in 0..samples {
            // 7 to 107 ms after the previous delivery: the poll, which
            // restarts its second at each delivery, waits most of it.
            tokio::time::sleep(Duration::from_millis(7 + (n as u64 * 37) % 100)).await;
            let sent = Instant::now();
            let answer = client
                .post(format!("{writer}/v1/orgs/org_acme/activity"))
                .header("X-Api-Key", &key)
                .json(&json!([{ "action": "replicated" }]))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("delivered within 5 s")
                .unwrap()
                .unwrap();
            assert!(frame.to_text().unwrap().contains("\"next\""), "{frame}");
            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        println!(
            "[{backend}] ingest through replica A -> subscriber of replica B, {samples} events: p50 {p50:.1} ms, p99 {p99:.1} ms{}",
            if backend == "postgres" {
                format!(
                    " (goal: within 200 ms: {})",
                    if p99 <= 200.0 { "met" } else { "NOT met" }
                )
            } else {
                " (the poll alone, as the baseline)".to_owned()
            }
        );
        p50s.push(p50);
        let _ = socket.close(None).await;
        let _ = stop_writer.send(());
        let _ = stop_reader.send(());
    }
    if let [poll, notify] = p50s[..] {
        println!(
            "NOTIFY beside the poll alone: p50 {:.1}x faster",
            poll / notify
        );
    }
}
