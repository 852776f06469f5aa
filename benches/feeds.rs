//! Feeds and summaries at 1,000,000 events, on SQLite and (with
//! TEST_DATABASE_URL, as `scripts/bench.sh` provides) PostgreSQL. Every figure
//! is a ratio against a baseline measured in the same process:
//!   - a page 100,000 events deep against page 1 (goal: at most 1.2x);
//!   - the 168-hour summary through the rollups against the raw GROUP BY over
//!     the same events (goal: at most 1/50, results equal);
//!   - a GraphQL page of 50 against the same SQL issued directly (goal: at most 1.5x).
//!
//! `BENCH_EVENTS` changes the size (default 1,000,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use activity_gateway::domain::feed::{ActivityFilter, Scope};
use activity_gateway::domain::time::{now_micros, MICROS_PER_HOUR};
use activity_gateway::service::{activity, directory, rollups, summary};

mod support;

/// The median of `runs` timings of `f`, after two warm-up runs.
async fn median<F, Fut, T>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..2 {
        f().await;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(f().await);
        times.push(started.elapsed());
    }
    times.sort();
    times[runs / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn bench(backend: &str, events: u64) {
    let Some((db, _dir)) = support::open(backend, "bench", events).await else {
        println!("[{backend}] skipped: set TEST_DATABASE_URL (scripts/bench.sh does)");
        return;
    };
    let started = Instant::now();
    rollups::refresh(&db).await.unwrap();
    println!(
        "[{backend}] rollups folded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let org = "org_acme";
    let filter = ActivityFilter::default();
    let scope = Scope::Org;

    // 1. Keyset pages: page 1 against a page 100,000 events deep.
    let depth = 100_000.min(events as usize / 2);
    let mut cursor = None;
    let mut walked = 0;
    while walked < depth {
        let page = activity::page(&db, org, &scope, &filter, 200, cursor.as_ref())
            .await
            .unwrap();
        walked += page.events.len();
        cursor = page.next;
    }
    let first = median(200, || activity::page(&db, org, &scope, &filter, 50, None)).await;
    let deep = median(200, || {
        activity::page(&db, org, &scope, &filter, 50, cursor.as_ref())
    })
    .await;
    println!(
        "[{backend}] page of 50: page 1 {}, {walked} events deep {} -> ratio {:.2}x (goal <= 1.2x)",
        us(first),
        us(deep),
        deep.as_secs_f64() / first.as_secs_f64()
    );
    let total = median(20, || activity::count(&db, org, &scope, &filter)).await;
    println!("[{backend}] exact total of the org feed: {}", us(total));

    // 2. The 168-hour summary through the rollups against the raw GROUP BY.
    let end = now_micros();
    let start = end - 168 * MICROS_PER_HOUR;
    let fast = summary::summarize(&db, org, &scope, &filter, start, end)
        .await
        .unwrap();
    let slow = summary::summarize_raw(&db, org, &scope, &filter, start, end)
        .await
        .unwrap();
    assert_eq!(fast, slow, "rollups and raw aggregation disagree");
    let with_rollups = median(30, || {
        summary::summarize(&db, org, &scope, &filter, start, end)
    })
    .await;
    let raw = median(5, || {
        summary::summarize_raw(&db, org, &scope, &filter, start, end)
    })
    .await;
    println!(
        "[{backend}] 168-hour summary of {} events: rollups {}, raw GROUP BY {} -> ratio 1/{:.0} (goal <= 1/50), results equal",
        fast.totals.requests,
        us(with_rollups),
        us(raw),
        raw.as_secs_f64() / with_rollups.as_secs_f64()
    );

    // 3. A GraphQL page of 50 against the same SQL (the org lookup and the page) issued directly.
    let schema =
        activity_gateway::graphql::build_schema(db.clone(), Default::default(), Default::default());
    let principal = activity_gateway::auth::Principal {
        org_id: org.into(),
        principal_type: "api_key",
        principal_id: "key_bench".into(),
        user_id: None,
        token_id: Some("key_bench".into()),
        token_type: "api_key",
        permissions: activity_gateway::domain::permission::Role::Viewer.permissions(),
        mcp_client: None,
        viewer_token: None,
    };
    let query = "{ org(id: \"org_acme\") { activity(first: 50) { pageInfo { hasNextPage endCursor } nodes { id timestamp traceId userId workspaceId appId principalType principalId tokenId tokenType method path resourceType resourceId action statusCode success errorCode durationMs executionId augmentationId stagesCompleted totalStages tokenUsage metadata } } } }";
    let graphql = median(200, || {
        let request = async_graphql::Request::new(query)
            .data(principal.clone())
            .data(Arc::new(activity_gateway::graphql::loaders::Loaders::new(
                &db,
                org,
                &Default::default(),
            )));
        let schema = &schema;
        async move {
            let response = schema.execute(request).await;
            assert!(response.errors.is_empty());
            serde_json::to_vec(&response).unwrap()
        }
    })
    .await;
    let direct = median(200, || async {
        directory::org_of(&db, org, org).await.unwrap();
        activity::page(&db, org, &scope, &filter, 50, None)
            .await
            .unwrap()
    })
    .await;
    println!(
        "[{backend}] page of 50: GraphQL {} (executed and serialised), the same SQL directly {} -> ratio {:.2}x (goal <= 1.5x)",
        us(graphql),
        us(direct),
        graphql.as_secs_f64() / direct.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let events = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "activity-gateway feed benchmark: {events} events, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    bench("sqlite", events).await;
    bench("postgres", events).await;
}
