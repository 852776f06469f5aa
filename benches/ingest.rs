//! Ingest and recording, on SQLite and (with TEST_DATABASE_URL, as
//! `scripts/bench.sh` provides) PostgreSQL, each against a baseline in the same
//! process:
//!   - ingest through `POST /v1/orgs/{org}/activity` in batches of 1,000 over
//!     real HTTP, against a raw multi-row insert of the same rows (goals on
//!     SQLite: at least 50,000 events/s and at least 0.5x the raw insert);
//!   - a page-of-50 request with request recording on, against the same
//!     request with it off (goal: at most 5% more).
//!
//! `BENCH_INGEST_BATCHES` changes the volume (default 100 batches).

use std::time::{Duration, Instant};

use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use activity_gateway::service::events::{insert_batch, EventRow};
use activity_gateway::service::keys;

mod support;
use sea_orm::{DatabaseConnection, TransactionTrait};

fn event(n: usize, prefix: &str) -> serde_json::Value {
    serde_json::json!({
        "id": format!("act_{prefix}{n:024}"),
        "timestamp": "2026-11-01T12:00:00Z",
        "workspace_id": "ws_acme_production",
        "endpoint_id": "ep_acme_production_search_get",
        "user_id": "usr_acme_02",
        "action": "read",
        "resource_type": "endpoint",
        "status_code": 200,
        "duration_ms": 42,
        "token_usage": { "prompt_tokens": 12 },
        "metadata": { "source": "bench" }
    })
}

fn row(n: usize, prefix: &str) -> EventRow {
    EventRow {
        id: format!("act_{prefix}{n:024}"),
        org_id: "org_acme".into(),
        ts: 1_793_534_400_000_000,
        user_id: Some("usr_acme_02".into()),
        workspace_id: Some("ws_acme_production".into()),
        app_id: Some("app_acme_production_search".into()),
        endpoint_id: Some("ep_acme_production_search_get".into()),
        action: "read".into(),
        resource_type: Some("endpoint".into()),
        status_code: 200,
        success: true,
        duration_ms: 42,
        token_usage: r#"{"prompt_tokens":12}"#.into(),
        tokens_total: 12,
        metadata: r#"{"source":"bench"}"#.into(),
        ..Default::default()
    }
}

async fn serve(
    db: &DatabaseConnection,
    record: bool,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let settings = HttpArgs {
        record_requests: record,
        ..HttpArgs::default()
    };
    support::serve(db, settings).await
}

async fn median(runs: usize, mut f: impl AsyncFnMut() -> ()) -> Duration {
    for _ in 0..5 {
        f().await;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    times.sort();
    times[runs / 2]
}

async fn bench(backend: &str, batches: usize) {
    let Some((db, _dir)) = support::open(backend, "ingest", 20_000).await else {
        println!("[{backend}] skipped: set TEST_DATABASE_URL (scripts/bench.sh does)");
        return;
    };
    let key = keys::create(
        &db,
        keys::NewKey {
            org_id: "org_acme".into(),
            role: Some(Role::Admin),
            permissions: Default::default(),
            user_id: None,
            name: None,
        },
    )
    .await
    .unwrap()
    .secret;
    let events = batches * 1_000;

    // The baseline: the same rows, multi-row inserts, one transaction per 1,000.
    let started = Instant::now();
    for b in 0..batches {
        let txn = db.begin().await.unwrap();
        insert_batch(
            &txn,
            (b * 1_000..(b + 1) * 1_000).map(|n| row(n, "raw")),
            true,
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
    }
    let raw = events as f64 / started.elapsed().as_secs_f64();

    // Through the REST route over real HTTP, bodies prepared beforehand.
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| {
            serde_json::to_vec(
                &(b * 1_000..(b + 1) * 1_000)
                    .map(|n| event(n, "api"))
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        })
        .collect();
    let (base, stop) = serve(&db, false).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    for body in bodies {
        let res = client
            .post(format!("{base}/v1/orgs/org_acme/activity"))
            .header("X-Api-Key", &key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let rest = events as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    println!(
        "[{backend}] ingest of {events} events in batches of 1,000: REST {rest:.0} events/s, raw multi-row insert {raw:.0} events/s -> {:.2}x (goals on SQLite: >= 50,000 events/s, >= 0.5x)",
        rest / raw
    );

    // Recording's cost on a page of 50, with the new events folded as the
    // background refresh of a running server would have done.
    activity_gateway::service::rollups::refresh(&db)
        .await
        .unwrap();
    let (quiet, stop_quiet) = serve(&db, false).await;
    let (recorded, stop_recorded) = serve(&db, true).await;
    let page = |base: String| {
        let (client, key) = (client.clone(), key.clone());
        async move || {
            let res = client
                .get(format!("{base}/v1/orgs/org_acme/activity?limit=50"))
                .header("X-Api-Key", &key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.bytes().await.unwrap();
        }
    };
    // Interleaved rounds, so drift on a shared machine hits both alike.
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        off.push(median(60, page(quiet.clone())).await);
        on.push(median(60, page(recorded.clone())).await);
    }
    off.sort();
    on.sort();
    let (off, on) = (off[2], on[2]);
    println!(
        "[{backend}] page of 50 over HTTP: recording off {:.0} µs, on {:.0} µs -> {:+.1}% (goal: at most +5%)",
        off.as_secs_f64() * 1e6,
        on.as_secs_f64() * 1e6,
        (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0
    );
    let _ = (stop_quiet.send(()), stop_recorded.send(()));
}

#[tokio::main]
async fn main() {
    let batches = std::env::var("BENCH_INGEST_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!(
        "activity-gateway ingest benchmark, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    bench("sqlite", batches).await;
    bench("postgres", batches).await;
}
