//! Log streams, on SQLite and (with TEST_DATABASE_URL, as `scripts/bench.sh`
//! provides) PostgreSQL, to a webhook receiver in this process that counts
//! what arrives (from each delivery's `webhook-id`, which names its range):
//!   - delivery rate: a backlog of events from the log's beginning, drained
//!     by one stream (goal on PostgreSQL: at least 50,000 events/s);
//!   - steady-state lag while 5,000 events/s are ingested through the REST
//!     route: for each ingested batch, from its answer to the arrival of its
//!     last event (goal: p99 under 2 s);
//!   - ingest and feed reads with 3 active streams against none, in one run
//!     (goal: each within 10%).
//!
//! `BENCH_STREAM_BACKLOG` changes the backlog (default 200,000 events).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use activity_gateway::service::events::{insert_batch, EventRow};
use activity_gateway::service::keys;
use sea_orm::{DatabaseConnection, TransactionTrait};

mod support;

/// Rounds of the steady load with and without streams, interleaved; the
/// figures are their medians.
const ROUNDS: usize = 9;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver saw: the highest log index delivered, and when each
/// delivery arrived with the last index it carried.
#[derive(Default)]
struct Seen {
    highest: AtomicI64,
    arrivals: Mutex<Vec<(Instant, i64)>>,
}

async fn receiver() -> (String, Arc<Seen>) {
    use axum::http::HeaderMap;
    let seen = Arc::new(Seen::default());
    seen.highest.store(-1, Ordering::Relaxed);
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, _body: axum::body::Bytes| {
            let seen = state.clone();
            async move {
                let last = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|id| id.rsplit('_').next())
                    .and_then(|n| n.parse::<i64>().ok());
                if let Some(last) = last {
                    seen.highest.fetch_max(last, Ordering::Relaxed);
                    seen.arrivals.lock().unwrap().push((Instant::now(), last));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn settings() -> HttpArgs {
    let mut settings = HttpArgs {
        record_requests: false,
        ..HttpArgs::default()
    };
    settings.streams.allow_private_stream_targets = true;
    settings.streams.stream_secrets_key =
        Some("x+yq1NY6sLMjpLFqbIyPKa78cVGH5xeuc4UMJAyoReI=".into());
    settings
}

fn row(n: usize) -> EventRow {
    EventRow {
        id: format!("act_stream{n:024}"),
        org_id: "org_acme".into(),
        ts: activity_gateway::domain::time::now_micros(),
        user_id: Some("usr_acme_02".into()),
        workspace_id: Some("ws_acme_production".into()),
        app_id: Some("app_acme_production_search".into()),
        endpoint_id: Some("ep_acme_production_search_get".into()),
        action: "read".into(),
        resource_type: Some("endpoint".into()),
        method: Some("GET".into()),
        path: Some("/v1/search".into()),
        status_code: 200,
        success: true,
        duration_ms: 42,
        token_usage: r#"{"prompt_tokens":12}"#.into(),
        tokens_total: 12,
        metadata: r#"{"source":"bench"}"#.into(),
        ..Default::default()
    }
}

fn body(from: usize, count: usize) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (from..from + count)
        .map(|n| {
            serde_json::json!({
                "id": format!("act_api{n:024}"),
                "workspace_id": "ws_acme_production",
                "user_id": "usr_acme_02",
                "action": "read",
                "method": "GET",
                "path": "/v1/search",
                "status_code": 200,
                "duration_ms": 42,
                "token_usage": { "prompt_tokens": 12 },
                "metadata": { "source": "bench" }
            })
        })
        .collect();
    serde_json::to_vec(&events).unwrap()
}

async fn graphql(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    query: &str,
) -> serde_json::Value {
    let body: serde_json::Value = client
        .post(format!("{base}/graphql"))
        .header("X-Api-Key", key)
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");
    body
}

async fn create_stream(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    name: &str,
    url: &str,
    start: &str,
) {
    graphql(
        client,
        base,
        key,
        &format!(
            r#"mutation {{ createLogStream(input: {{ name: "{name}", startAt: {start}, webhook: {{ url: "{url}", secret: "{SECRET}" }} }}) {{ id }} }}"#
        ),
    )
    .await;
}

async fn tree_size(db: &DatabaseConnection) -> i64 {
    activity_gateway::service::log::tree_size(db, "org_acme")
        .await
        .unwrap() as i64
}

async fn wait_for(seen: &Seen, index: i64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while seen.highest.load(Ordering::Relaxed) < index {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// Five seconds of the steady load of the lag goal (batches of 500 through
/// REST every 100 ms) with a page-of-50 read every 20 ms beside it: the
/// median ingest answer and the median page.
async fn steady_load(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    next_id: &mut usize,
) -> (Duration, Duration) {
    let first = *next_id;
    *next_id += 50 * 500;
    let done = std::sync::atomic::AtomicBool::new(false);
    let ingest = async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut times = Vec::new();
        for b in 0..50 {
            tick.tick().await;
            let body = body(first + b * 500, 500);
            let started = Instant::now();
            let res = client
                .post(format!("{base}/v1/orgs/org_acme/activity"))
                .header("X-Api-Key", key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            times.push(started.elapsed());
        }
        done.store(true, Ordering::Relaxed);
        times
    };
    let read = async {
        let mut times = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while !done.load(Ordering::Relaxed) {
            tick.tick().await;
            let started = Instant::now();
            let res = client
                .get(format!("{base}/v1/orgs/org_acme/activity?limit=50"))
                .header("X-Api-Key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.bytes().await.unwrap();
            times.push(started.elapsed());
        }
        times
    };
    let (mut ingest, mut read) = tokio::join!(ingest, read);
    ingest.sort();
    read.sort();
    (ingest[ingest.len() / 2], read[read.len() / 2])
}

async fn bench(backend: &str, backlog: usize) {
    let Some((db, _dir)) = support::open(backend, "streams", 10_000).await else {
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
    for b in 0..backlog.div_ceil(5_000) {
        let txn = db.begin().await.unwrap();
        let end = ((b + 1) * 5_000).min(backlog);
        insert_batch(&txn, (b * 5_000..end).map(row), true)
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    // Folded, as a running server's background refresh would have done.
    activity_gateway::service::rollups::refresh(&db)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let (base, stop) = support::serve(&db, settings()).await;

    // Delivery rate: the whole log from its beginning.
    let (url, seen) = receiver().await;
    let size = tree_size(&db).await;
    let started = Instant::now();
    create_stream(&client, &base, &key, "backlog", &url, "BEGINNING").await;
    assert!(
        wait_for(&seen, size - 1, Duration::from_secs(600)).await,
        "the backlog drained"
    );
    let rate = size as f64 / started.elapsed().as_secs_f64();
    println!(
        "[{backend}] delivery of a backlog of {size} events to a local webhook: {rate:.0} events/s (goal on PostgreSQL: >= 50,000)"
    );

    // Steady-state lag while ingesting 5,000 events/s (batches of 500 every 100 ms).
    let mut next_id = 0;
    let mut ingested: Vec<(Instant, i64)> = Vec::new();
    let mut size = tree_size(&db).await;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..150 {
        tick.tick().await;
        let res = client
            .post(format!("{base}/v1/orgs/org_acme/activity"))
            .header("X-Api-Key", &key)
            .header("content-type", "application/json")
            .body(body(next_id, 500))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        next_id += 500;
        size += 500;
        ingested.push((Instant::now(), size - 1));
    }
    assert!(wait_for(&seen, size - 1, Duration::from_secs(60)).await);
    let arrivals = seen.arrivals.lock().unwrap().clone();
    let mut lags: Vec<Duration> = ingested
        .iter()
        .map(|(at, last)| {
            let arrived = arrivals
                .iter()
                .filter(|(_, l)| l >= last)
                .map(|(t, _)| *t)
                .min()
                .unwrap();
            arrived.saturating_duration_since(*at)
        })
        .collect();
    lags.sort();
    let p = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    println!(
        "[{backend}] lag while ingesting 5,000 events/s: p50 {:.0} ms, p99 {:.0} ms (goal: p99 < 2,000 ms)",
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3
    );

    // Ingest and reads with 3 active streams against none, on the same
    // server, rounds interleaved so drift hits both alike (medians of
    // ROUNDS). The backlog's stream stays paused.
    let list = "{ org(id: \"org_acme\") { logStreams { id name } } }";
    let streams = graphql(&client, &base, &key, list).await;
    for s in streams["data"]["org"]["logStreams"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        graphql(
            &client,
            &base,
            &key,
            &format!(r#"mutation {{ pauseLogStream(id: "{id}") {{ id }} }}"#),
        )
        .await;
    }
    for n in 0..3 {
        let (url, _) = receiver().await;
        create_stream(&client, &base, &key, &format!("busy {n}"), &url, "NOW").await;
    }
    let busy: Vec<String> = graphql(&client, &base, &key, list).await["data"]["org"]["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with("busy"))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let set = |verb: &'static str| {
        let (client, base, key, busy) = (client.clone(), base.clone(), key.clone(), busy.clone());
        async move {
            for id in &busy {
                graphql(
                    &client,
                    &base,
                    &key,
                    &format!(r#"mutation {{ {verb}LogStream(id: "{id}") {{ id }} }}"#),
                )
                .await;
            }
        }
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let (mut cpu_without, mut cpu_with) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        set("pause").await;
        activity_gateway::service::rollups::refresh(&db)
            .await
            .unwrap();
        let cpu = process_cpu_seconds();
        without.push(steady_load(&client, &base, &key, &mut next_id).await);
        cpu_without += process_cpu_seconds() - cpu;
        set("resume").await;
        activity_gateway::service::rollups::refresh(&db)
            .await
            .unwrap();
        let cpu = process_cpu_seconds();
        with.push(steady_load(&client, &base, &key, &mut next_id).await);
        cpu_with += process_cpu_seconds() - cpu;
    }
    println!(
        "[{backend}] CPU of this process (gateway, receivers and load; not the PostgreSQL server) per 5 s round: {:.2} s with 3 streams, {:.2} s without",
        cpu_with / ROUNDS as f64,
        cpu_without / ROUNDS as f64
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ingest_without = median(without.iter().map(|r| r.0.as_secs_f64()).collect());
    let ingest_with = median(with.iter().map(|r| r.0.as_secs_f64()).collect());
    let read_without = median(without.iter().map(|r| r.1.as_secs_f64()).collect());
    let read_with = median(with.iter().map(|r| r.1.as_secs_f64()).collect());
    println!(
        "[{backend}] at 5,000 events/s and 50 pages/s, 3 active streams against none: ingest batch of 500 {:.2} vs {:.2} ms -> {:.2}x, page of 50 {:.0} vs {:.0} µs -> {:.2}x (goal: each within 10%)",
        ingest_with * 1e3,
        ingest_without * 1e3,
        ingest_with / ingest_without,
        read_with * 1e6,
        read_without * 1e6,
        read_with / read_without
    );
    let _ = stop.send(());
}

/// User and system CPU time this process has used, from /proc/self/stat.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime
    // are the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    let backlog = std::env::var("BENCH_STREAM_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!(
        "activity-gateway log stream benchmark, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for backend in ["sqlite", "postgres"] {
        bench(backend, backlog).await;
    }
}
