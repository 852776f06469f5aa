//! `/metrics`: requests by matched route, method and status with latency
//! histograms, GraphQL operations by type, root field and outcome, and the
//! figures of the moment (pool, rollup lag, recorder, live tail), each
//! checked against what really happened.

use crate::common::prometheus::{help, parse, series, value, Scrape};
use crate::common::{terminate, Served, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use openmetrics_parser::PrometheusValue;
use serde_json::json;

on_both_backends!(
    requests_are_counted_and_timed_by_matched_route_method_and_status,
    graphql_requests_are_counted_by_type_root_field_name_and_outcome,
    operation_names_get_series_up_to_a_hundred_and_the_rest_count_as_other,
    the_pool_gauges_add_up_and_the_recorder_and_live_tail_report,
    the_rollup_lag_counts_the_events_not_folded_until_a_fold,
    export_jobs_are_counted_by_state,
    the_pool_counts_its_acquisitions_and_the_waits_of_requests_that_found_no_idle_connection,
    metrics_answer_a_scraper_by_its_token_or_from_this_machine,
);

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

/// This machine's address on its network (not loopback), as a peer there sees it.
fn network_address() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("10.255.255.255:9").unwrap();
    let ip = probe.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "this machine needs a network address");
    ip
}

async fn metrics_answer_a_scraper_by_its_token_or_from_this_machine(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let client = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };
    // No token: this machine scrapes with no credential at all; another
    // machine is refused, org key or not.
    let app = TestApp::spawn_on(
        &db.db,
        crate::common::test_settings(),
        "0.0.0.0:0".parse().unwrap(),
    )
    .await;
    let port = app.addr.port();
    let local = format!("http://127.0.0.1:{port}/metrics");
    let remote = format!("http://{}:{port}/metrics", network_address());
    assert_eq!(status(client.get(&local)).await, 200);
    let refused = client
        .get(&remote)
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "FORBIDDEN", "{body}");
    app.stop().await;
    // A token: only it opens /metrics, from anywhere.
    let settings = activity_gateway::config::HttpArgs {
        metrics_token: Some("scrape-me".into()),
        ..crate::common::test_settings()
    };
    let app = TestApp::spawn_on(&db.db, settings, "0.0.0.0:0".parse().unwrap()).await;
    let port = app.addr.port();
    let local = format!("http://127.0.0.1:{port}/metrics");
    let remote = format!("http://{}:{port}/metrics", network_address());
    for url in [&local, &remote] {
        assert_eq!(status(client.get(url)).await, 401, "{url}");
        assert_eq!(
            status(client.get(url).header("X-Api-Key", &key)).await,
            401,
            "{url}"
        );
        assert_eq!(
            status(client.get(url).bearer_auth("scrape-mE")).await,
            401,
            "{url}"
        );
        let scraped = client
            .get(url)
            .bearer_auth("scrape-me")
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200, "{url}");
        assert!(scraped
            .text()
            .await
            .unwrap()
            .contains("activity_gateway_db_pool_connections"));
    }
    app.stop().await;
}

/// The demo data set, an admin of `org_acme`, and the application.
async fn admin_app(db: &TestDb) -> (TestApp, String) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    (TestApp::spawn(&db.db).await, key)
}

/// A gauge or counter without labels.
fn plain(scraped: &Scrape, name: &str) -> Option<f64> {
    value(scraped, name, &[])
}

async fn requests_are_counted_and_timed_by_matched_route_method_and_status(db: TestDb) {
    let (app, key) = admin_app(&db).await;
    for _ in 0..2 {
        let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=5", &key).await;
        assert_eq!(status, 200);
    }
    let (status, _) = app.get("/no/such/route", &key).await;
    assert_eq!(status, 404);
    let text = scrape(&app, &key).await;
    let scraped = parse(&text);
    let feed = [
        ("route", "/v1/orgs/{org_id}/activity"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&scraped, "activity_gateway_http_requests_total", &feed),
        Some(2.0),
        "{text}"
    );
    let Some(PrometheusValue::Histogram(latency)) = series(
        &scraped,
        "activity_gateway_http_request_duration_seconds",
        &feed,
    ) else {
        panic!("a histogram: {text}")
    };
    assert_eq!(latency.count, Some(2), "{text}");
    // Every request is in the slowest bucket (30 s, below +Inf).
    let slowest = latency
        .buckets
        .iter()
        .find(|b| b.upper_bound == 30.0)
        .unwrap();
    assert_eq!(slowest.count.as_f64(), 2.0, "{text}");
    // Unknown paths count under one series, whatever the path.
    assert_eq!(
        value(
            &scraped,
            "activity_gateway_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        Some(1.0),
        "{text}"
    );
    app.stop().await;
}

async fn graphql_requests_are_counted_by_type_root_field_name_and_outcome(db: TestDb) {
    let (app, key) = admin_app(&db).await;
    let (_, ok) = app.graphql(&key, "{ viewer { principalId } }").await;
    assert!(ok["errors"].is_null(), "{ok}");
    let (_, named) = app
        .graphql(&key, "query Who { viewer { principalId } }")
        .await;
    assert!(named["errors"].is_null(), "{named}");
    let (_, refused) = app.graphql(&key, "{ nope }").await;
    assert!(refused["errors"].is_array(), "{refused}");
    let text = scrape(&app, &key).await;
    let scraped = parse(&text);
    let operations = |kind, field, name, outcome| {
        value(
            &scraped,
            "activity_gateway_graphql_operations_total",
            &[
                ("type", kind),
                ("field", field),
                ("name", name),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(
        operations("query", "viewer", "anonymous", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        operations("query", "viewer", "Who", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        operations("none", "none", "anonymous", "error"),
        Some(1.0),
        "{text}"
    );
    app.stop().await;
}

/// Operation names are the client's: the first 100 get a series each (a
/// name of 64 bytes too), later ones and longer names count as `other`.
async fn operation_names_get_series_up_to_a_hundred_and_the_rest_count_as_other(db: TestDb) {
    let (app, key) = admin_app(&db).await;
    let at_the_edge = format!("N{}", "x".repeat(63));
    let too_long = format!("N{}", "x".repeat(64));
    let names: Vec<String> = std::iter::once(at_the_edge.clone())
        .chain((0..100).map(|n| format!("Op{n}")))
        .chain([too_long, "Op0".to_owned()])
        .collect();
    for name in &names {
        let (_, answer) = app
            .graphql(
                &key,
                &format!("query {name} {{ viewer {{ principalId }} }}"),
            )
            .await;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let text = scrape(&app, &key).await;
    let scraped = parse(&text);
    let by_name = |name: &str| {
        value(
            &scraped,
            "activity_gateway_graphql_operations_total",
            &[
                ("type", "query"),
                ("field", "viewer"),
                ("name", name),
                ("outcome", "ok"),
            ],
        )
    };
    assert_eq!(by_name(&at_the_edge), Some(1.0), "{text}");
    // A name already seen keeps its series.
    assert_eq!(by_name("Op0"), Some(2.0), "{text}");
    assert_eq!(by_name("Op98"), Some(1.0), "the 100th name: {text}");
    assert_eq!(by_name("Op99"), None, "the 101st name: {text}");
    assert_eq!(
        by_name("other"),
        Some(2.0),
        "the 101st and the 65-byte one: {text}"
    );
    let series = scraped.families["activity_gateway_graphql_operations_total"]
        .iter_samples()
        .count();
    assert_eq!(series, 101, "100 names and other: {text}");
    app.stop().await;
}

async fn the_pool_gauges_add_up_and_the_recorder_and_live_tail_report(db: TestDb) {
    let (app, key) = admin_app(&db).await;
    let text = scrape(&app, &key).await;
    let scraped = parse(&text);
    // What is open is in use or idle.
    let open = plain(&scraped, "activity_gateway_db_pool_connections").unwrap();
    let in_use = plain(&scraped, "activity_gateway_db_pool_in_use").unwrap();
    let idle = plain(&scraped, "activity_gateway_db_pool_idle").unwrap();
    assert!(open >= 1.0, "{text}");
    assert_eq!(in_use + idle, open, "{text}");
    assert!(
        plain(&scraped, "activity_gateway_recorder_queued").is_some(),
        "{text}"
    );
    assert_eq!(
        plain(&scraped, "activity_gateway_live_subscriptions"),
        Some(0.0)
    );
    app.stop().await;
}

async fn the_rollup_lag_counts_the_events_not_folded_until_a_fold(db: TestDb) {
    let (app, key) = admin_app(&db).await;
    let (status, _) = app
        .post_json(
            &key,
            "/v1/orgs/org_acme/activity",
            &json!([{ "action": "read" }, { "action": "read" }, { "action": "read" }]),
        )
        .await;
    assert_eq!(status, 200);
    let watermark = activity_gateway::service::rollups::watermark(&db.db)
        .await
        .unwrap();
    let unfolded = db.count_events(&format!("seq > {watermark}")).await;
    assert!(unfolded >= 3, "the three ingested events at least");
    let text = scrape(&app, &key).await;
    assert_eq!(
        plain(&parse(&text), "activity_gateway_rollup_unfolded_events"),
        Some(unfolded as f64),
        "{text}"
    );
    activity_gateway::service::rollups::refresh(&db.db)
        .await
        .unwrap();
    let text = scrape(&app, &key).await;
    let scraped = parse(&text);
    assert_eq!(
        plain(&scraped, "activity_gateway_rollup_unfolded_events"),
        Some(0.0),
        "{text}"
    );
    let since = plain(&scraped, "activity_gateway_rollup_seconds_since_fold").unwrap();
    assert!((0.0..60.0).contains(&since), "{text}");
    app.stop().await;
}

async fn export_jobs_are_counted_by_state(db: TestDb) {
    let (app, key) = admin_app(&db).await;
    let jobs = |text: &str, state: &str| {
        value(
            &parse(text),
            "activity_gateway_export_jobs",
            &[("state", state)],
        )
    };
    let text = scrape(&app, &key).await;
    for state in ["pending", "running", "done", "failed"] {
        assert_eq!(jobs(&text, state), Some(0.0), "{state}: {text}");
    }
    let (status, job) = app
        .post_artifact(&key, "export", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{job}");
    let done = app
        .finished_export(&key, job["upload_id"].as_str().unwrap())
        .await;
    assert_eq!(done.status(), 200);
    let text = scrape(&app, &key).await;
    assert_eq!(
        (
            jobs(&text, "done"),
            jobs(&text, "pending"),
            jobs(&text, "running")
        ),
        (Some(1.0), Some(0.0), Some(0.0)),
        "{text}"
    );
    app.stop().await;
}

/// Through the real binary, which counts the pool's acquisitions: sixteen
/// requests at once on a pool of one connection, so most of them wait.
async fn the_pool_counts_its_acquisitions_and_the_waits_of_requests_that_found_no_idle_connection(
    db: TestDb,
) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let env = [
        ("ACTIVITY_GATEWAY_DB_POOL_SIZE", "1"),
        ("ACTIVITY_GATEWAY_MAX_IN_FLIGHT_PER_ORG", "16"),
    ];
    let mut served = Served::start(&db.url, &[], &env, std::process::Stdio::null()).await;
    let client = reqwest::Client::new();
    let feed = format!("{}/v1/orgs/org_acme/activity?limit=50", served.base);
    let answers = futures_util::future::join_all(
        (0..16).map(|_| client.get(&feed).header("X-Api-Key", &key).send()),
    )
    .await;
    for answer in answers {
        assert_eq!(answer.unwrap().status(), 200);
    }
    // From this machine: no token needed.
    let text = client
        .get(format!("{}/metrics", served.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    terminate(&mut served.child);
    let scraped = parse(&text);
    let counter = |name| value(&scraped, name, &[]).unwrap_or_else(|| panic!("{name}: {text}"));
    assert_eq!(
        counter("activity_gateway_db_pool_connections"),
        1.0,
        "{text}"
    );
    // Each request takes a connection for its credential and its page at least.
    let acquired = counter("activity_gateway_db_pool_acquires_total");
    assert!(acquired >= 32.0, "{text}");
    let waited = counter("activity_gateway_db_pool_waits_total");
    assert!(waited >= 1.0 && waited <= acquired, "{text}");
    assert!(
        help(&scraped, "activity_gateway_db_pool_waits_total").contains("wait"),
        "{text}"
    );
}
