//! A full recording buffer never stalls a request. Alone in its binary: it
//! bounds request latency, which heavy tests running beside it could stretch.

use std::time::{Duration, Instant};

use crate::common::{read, Backend, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use sea_orm::{ConnectionTrait, TransactionTrait};

on_both_backends!(a_full_buffer_never_stalls_a_request);

async fn a_full_buffer_never_stalls_a_request(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn_with(&db.db, crate::common::recording(5)).await;
    // Hold writes to activity_events so the writer blocks and the buffer fills.
    let holder = activity_gateway::db::connect(&db.url).await.unwrap();
    let txn = holder.begin().await.unwrap();
    match db.backend {
        Backend::Postgres => txn
            .execute_unprepared("LOCK TABLE activity_events IN EXCLUSIVE MODE")
            .await
            .unwrap(),
        Backend::Sqlite => txn
            .execute_unprepared("UPDATE rollup_watermarks SET last_seq = last_seq")
            .await
            .unwrap(),
    };
    let query = serde_json::json!({ "query": "{ viewer { principalId } }" });
    let mut slowest = Duration::ZERO;
    let mut sent = 0;
    for round in 0..2 {
        for _ in 0..100 {
            let started = Instant::now();
            let (status, _) = read(
                app.client
                    .post(app.url("/graphql"))
                    .header("X-Api-Key", &key)
                    .json(&query)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            slowest = slowest.max(started.elapsed());
            sent += 1;
        }
        if round == 0 {
            // Past the batching window the writer is stuck in its insert.
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    }
    let dropped = app.recorder.dropped();
    assert!(dropped > 0, "the buffer filled");
    // The count is a metric. The /metrics call itself may be dropped too, so at least.
    let exposed = app
        .metric(&key, "activity_gateway_recorder_dropped_total")
        .await;
    assert!(exposed >= dropped, "metric {exposed} < counted {dropped}");
    assert!(
        slowest < Duration::from_millis(500),
        "a request waited {slowest:?}"
    );
    txn.rollback().await.unwrap();
    app.stop().await;
    assert_eq!(
        db.count_events("resource_type = 'graphql'").await,
        sent - dropped as i64,
        "everything not dropped is stored"
    );
}
