//! Fairness under abuse, on SQLite and (with TEST_DATABASE_URL, as
//! `scripts/bench.sh` provides) PostgreSQL: an honest tenant's page of 50
//! while another tenant floods the gateway with expensive requests, against
//! the same page with no flood, in the same process (goal: at most 2x at the
//! median).
//!
//! `BENCH_EVENTS` changes the data set (default 200,000 events);
//! `BENCH_FLOODERS` the flood's concurrent clients (default 64, over two keys);
//! `BENCH_MAX_IN_FLIGHT_PER_ORG` the org share to measure (default: the
//! gateway's default); `BENCH_HONEST_RUNS` how many honest pages are timed
//! during the flood (default 300; more makes room for a profiler).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use activity_gateway::service::keys;
use sea_orm::DatabaseConnection;

mod support;

async fn key(db: &DatabaseConnection, org: &str, role: Role) -> String {
    keys::create(
        db,
        keys::NewKey {
            org_id: org.into(),
            role: Some(role),
            permissions: Default::default(),
            user_id: None,
            name: None,
        },
    )
    .await
    .unwrap()
    .secret
}

/// Latencies of `runs` sequential honest pages, sorted.
async fn honest_pages(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    runs: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let response = client
            .get(url)
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times
}

fn at(times: &[Duration], q: f64) -> Duration {
    times[((times.len() - 1) as f64 * q) as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn bench(backend: &str, events: u64, flooders: usize, flooded_runs: usize) {
    let Some((db, _dir)) = support::open(backend, "fairness", events).await else {
        println!("[{backend}] skipped: set TEST_DATABASE_URL (scripts/bench.sh does)");
        return;
    };
    // Folded as a running gateway's background refresh would have done.
    activity_gateway::service::rollups::refresh(&db)
        .await
        .unwrap();
    let honest = key(&db, "org_globex", Role::Viewer).await;
    let flood_keys = [
        key(&db, "org_acme", Role::Admin).await,
        key(&db, "org_acme", Role::Admin).await,
    ];
    let settings = HttpArgs {
        record_requests: false,
        max_in_flight_per_org: std::env::var("BENCH_MAX_IN_FLIGHT_PER_ORG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(HttpArgs::default().max_in_flight_per_org),
        ..HttpArgs::default()
    };
    let (base, stop_server) = support::serve(&db, settings).await;
    let client = reqwest::Client::new();
    let page = format!("{base}/v1/orgs/org_globex/activity?limit=50");
    honest_pages(&client, &page, &honest, 50).await; // warm up
    let calm = honest_pages(&client, &page, &honest, 300).await;

    // The flood: every client loops over expensive reads of its own org.
    let expensive = [
        format!("{base}/v1/orgs/org_acme/workspaces/ws_acme_production/activity/search?min_duration_ms=1&limit=200"),
        format!("{base}/v1/orgs/org_acme/activity/summary?hours=168"),
        format!("{base}/v1/orgs/org_acme/users/usr_acme_02/activity?limit=200"),
    ];
    let flooding = Arc::new(AtomicBool::new(true));
    let (answered, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut flood = Vec::new();
    for i in 0..flooders {
        let (client, flooding, answered, refused) = (
            client.clone(),
            flooding.clone(),
            answered.clone(),
            refused.clone(),
        );
        let (url, key) = (
            expensive[i % expensive.len()].clone(),
            flood_keys[i % 2].clone(),
        );
        flood.push(tokio::spawn(async move {
            while flooding.load(Ordering::Relaxed) {
                match client.get(&url).header("X-Api-Key", &key).send().await {
                    Ok(r) if r.status() == 429 => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        let _ = r.bytes().await;
                    }
                    Err(_) => {}
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flooded = honest_pages(&client, &page, &honest, flooded_runs).await;
    flooding.store(false, Ordering::Relaxed);
    for task in flood {
        let _ = task.await;
    }
    let _ = stop_server.send(());
    let ratio = ms(at(&flooded, 0.5)) / ms(at(&calm, 0.5));
    println!(
        "[{backend}] honest page of 50: calm p50 {:.2} ms p95 {:.2} ms; during a flood of {flooders} clients p50 {:.2} ms p95 {:.2} ms",
        ms(at(&calm, 0.5)),
        ms(at(&calm, 0.95)),
        ms(at(&flooded, 0.5)),
        ms(at(&flooded, 0.95)),
    );
    println!(
        "[{backend}] flood: {} answered, {} refused with 429",
        answered.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    println!(
        "[{backend}] honest p50 under flood / calm: {ratio:.2}x (goal at most 2x: {}); p95 ratio {:.2}x",
        if ratio <= 2.0 { "met" } else { "NOT met" },
        ms(at(&flooded, 0.95)) / ms(at(&calm, 0.95)),
    );
}

#[tokio::main]
async fn main() {
    let events = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let flooders = std::env::var("BENCH_FLOODERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let flooded_runs = std::env::var("BENCH_HONEST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for backend in ["sqlite", "postgres"] {
        bench(backend, events, flooders, flooded_runs).await;
    }
}
