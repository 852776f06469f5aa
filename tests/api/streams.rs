//! Log streams, against a real receiver: `tests/receivers/webhook.py`
//! verifies every delivery with the Standard Webhooks specification's own
//! Python library, and keeps what arrived. Events are ingested through the
//! API; what the receiver got is compared with the org's log.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{python_tools, test_settings, Served, TestApp, TestDb};
use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use serde_json::{json, Value};

on_both_backends!(
    a_stream_delivers_every_event_once_in_log_order_signed,
    failures_slow_answers_and_dropped_connections_lose_nothing,
    a_paused_stream_delivers_nothing_and_resumes_where_it_stopped,
    a_filter_delivers_only_what_it_selects,
    a_refusal_moves_the_stream_to_failing_with_the_answer_kept,
    bad_streams_are_refused_with_every_problem_and_limits_hold_at_their_edge,
    private_targets_are_refused_without_the_flag,
    secrets_are_sealed_at_rest_and_never_answered,
    a_killed_replica_loses_nothing_and_its_successor_goes_on_in_order,
    events_purged_before_delivery_are_counted_not_skipped_silently,
    splunk_and_datadog_destinations_get_their_documented_requests,
    the_cli_manages_streams_through_the_same_service,
    an_update_changes_the_filter_from_the_cursor_on,
    an_org_whose_destinations_hang_does_not_hold_up_another_org,
    an_ocsf_stream_delivers_api_activity_in_log_order,
    a_syslog_stream_reaches_rsyslog_in_order,
    a_syslog_stream_in_tls_reaches_rsyslog_and_verifies_the_collector,
    two_renames_to_one_name_at_once_end_in_one_name_taken,
    an_s3_stream_writes_gzip_ndjson_objects_read_back_in_order,
    bad_s3_destinations_are_refused_with_limits_at_their_edge,
    an_s3_stream_waits_out_an_unreachable_server_and_loses_nothing,
    an_orgs_streams_share_each_read_and_each_gets_every_event_in_order,
);

/// A Standard Webhooks secret (`whsec_` and base64 of 32 bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The receiver's Splunk HEC token and Datadog API key.
const TOKEN: &str = "3f1c9e2a-hec-and-dd-token";

/// A process of the test's, killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The receiver, running until dropped.
struct Receiver {
    _process: Running,
    base: String,
    client: reqwest::Client,
}

/// What the receiver got.
struct Received {
    deliveries: Vec<String>,
    /// (org, log index, event id), in arrival order.
    events: Vec<(String, i64, String)>,
    invalid: u64,
    types: Value,
    /// (tree size, signed note) of the checkpoints delivered.
    checkpoints: Vec<(i64, String)>,
}

impl Received {
    /// The log indexes of `org` in the order they first arrived.
    fn first_arrivals(&self, org: &str) -> Vec<i64> {
        let mut seen = HashSet::new();
        self.events
            .iter()
            .filter(|(o, _, _)| o == org)
            .filter(|(_, _, id)| seen.insert(id.clone()))
            .map(|(_, index, _)| *index)
            .collect()
    }
}

impl Receiver {
    fn start() -> Receiver {
        use std::io::BufRead as _;
        let bin = python_tools();
        let port = crate::common::free_port();
        let mut child = std::process::Command::new(bin.join("python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/receivers/webhook.py"
            ))
            .args([port.to_string().as_str(), SECRET, TOKEN])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("listening {port}"));
        Receiver {
            _process: Running(child),
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    async fn received(&self) -> Received {
        let body: Value = self
            .client
            .get(format!("{}/_received", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Received {
            deliveries: body["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect(),
            events: body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e[0].as_str().unwrap().to_owned(),
                        e[1].as_i64().unwrap(),
                        e[2].as_str().unwrap().to_owned(),
                    )
                })
                .collect(),
            invalid: body["invalid"].as_u64().unwrap(),
            types: body["types"].clone(),
            checkpoints: body["checkpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c[0].as_i64().unwrap(), c[1].as_str().unwrap().to_owned()))
                .collect(),
        }
    }

    async fn mode(&self, mode: Value) {
        let status = self
            .client
            .post(format!("{}/_mode", self.base))
            .json(&mode)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }

    /// Waits until `org`'s distinct events number `count` (at most `within`).
    async fn until_events(&self, org: &str, count: usize, within: Duration) -> Received {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received().await;
            let distinct = got.first_arrivals(org).len();
            if distinct >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{distinct} of {count} events arrived within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Settings that let streams reach the receiver on loopback.
fn streaming() -> HttpArgs {
    let mut settings = test_settings();
    settings.streams.allow_private_stream_targets = true;
    settings
}

const CREATE: &str = "mutation($input: LogStreamInput!) { createLogStream(input: $input) \
    { id name status lagEvents lagSeconds deliveredTotal lastDeliveredAt lastError nextLogIndex \
      destination { kind url shape host port tls } } }";
const STREAMS: &str = "{ org(id: \"org_acme\") { logStreams { id name status lagEvents \
    lagSeconds deliveredTotal lastDeliveredAt lastError nextLogIndex purgedTotal } } }";

async fn gql(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let (status, body) = app
        .graphql_with(query, variables, |r| r.header("X-Api-Key", key))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Makes a stream to `url`; answers its id.
async fn create(app: &TestApp, key: &str, input: Value) -> String {
    let body = gql(app, key, CREATE, json!({ "input": input })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["createLogStream"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn webhook(url: &str) -> Value {
    json!({ "url": url, "secret": SECRET })
}

/// The stream `id` of org_acme, as `Org.logStreams` answers it.
async fn stream(app: &TestApp, key: &str, id: &str) -> Value {
    let body = gql(app, key, STREAMS, json!({})).await;
    body["data"]["org"]["logStreams"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} in {body}"))
}

/// Ingests `count` events into org_acme through the REST route, in batches.
async fn ingest(app: &TestApp, key: &str, count: usize, action: &str) {
    let mut left = count;
    while left > 0 {
        let n = left.min(5_000);
        let batch: Vec<Value> = (0..n)
            .map(|i| json!({ "action": action, "status_code": if i % 7 == 0 { 500 } else { 200 } }))
            .collect();
        let (status, body) = app
            .post_json(key, "/v1/orgs/org_acme/activity", &Value::Array(batch))
            .await;
        assert_eq!(status, 200, "{body}");
        left -= n;
    }
}

/// org_acme's log indexes from `from` to its tree size, in order.
async fn indexes_since(db: &TestDb, from: i64) -> Vec<i64> {
    let indexes = db.log_indexes("org_acme").await;
    indexes.into_iter().filter(|i| *i >= from).collect()
}

/// Every log index of org_acme from `from` to its tree size, once, in order.
async fn assert_in_log_order(db: &TestDb, got: &Received, from: i64) {
    assert_eq!(
        got.first_arrivals("org_acme"),
        indexes_since(db, from).await
    );
    assert_eq!(got.invalid, 0, "every delivery verified");
}

/// The log indexes of org_acme's failed events from `from` on (of `action`
/// only, when given), in log order.
async fn failed_since(db: &TestDb, from: i64, action: Option<&str>) -> Vec<i64> {
    let mut sql = "SELECT log_index FROM activity_events WHERE org_id = 'org_acme' \
                   AND success = ? AND log_index >= ?"
        .to_owned();
    let mut values: Vec<sea_orm::Value> = vec![false.into(), from.into()];
    if let Some(action) = action {
        sql.push_str(" AND action = ?");
        values.push(action.into());
    }
    sql.push_str(" ORDER BY log_index");
    db.rows(&sql, values)
        .await
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0).unwrap())
        .collect()
}

async fn a_stream_delivers_every_event_once_in_log_order_signed(db: TestDb) {
    db.seed(200).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "siem", "startAt": "BEGINNING", "webhook": webhook(&receiver.url()) } }),
    )
    .await;
    let created = &body["data"]["createLogStream"];
    assert_eq!(created["status"], "ACTIVE", "{body}");
    assert_eq!(created["nextLogIndex"], 0);
    assert_eq!(
        created["destination"],
        json!({ "kind": "webhook", "url": receiver.url(), "shape": "STANDARD", "host": null, "port": null, "tls": null })
    );
    let id = created["id"].as_str().unwrap().to_owned();
    ingest(&app, &key, 20_000, "stream.test").await;
    let size = db.log_indexes("org_acme").await.len();
    let got = receiver
        .until_events("org_acme", size, Duration::from_secs(120))
        .await;
    assert_in_log_order(&db, &got, 0).await;
    // One delivery per batch: message ids are unique, each names its range.
    let ids: HashSet<&String> = got.deliveries.iter().collect();
    assert_eq!(ids.len(), got.deliveries.len());
    assert!(got
        .deliveries
        .iter()
        .all(|d| d.starts_with(&format!("{id}_"))));
    assert_eq!(got.types["activity.batch"], got.deliveries.len());
    // The health figures catch up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stream(&app, &key, &id).await;
        if s["lagEvents"] == 0 {
            assert_eq!(s["deliveredTotal"], size, "{s}");
            assert_eq!(s["nextLogIndex"], size, "{s}");
            assert_eq!(s["lagSeconds"], 0.0, "{s}");
            assert!(s["lastDeliveredAt"].is_string(), "{s}");
            assert!(s["lastError"].is_null(), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "lag stays {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same figures in /metrics, per stream.
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = crate::common::prometheus::parse(&text);
    let labels = [("org", "org_acme"), ("stream", id.as_str())];
    let figure = |name: &str, extra: Option<(&'static str, &'static str)>| {
        let mut labels = labels.to_vec();
        labels.extend(extra);
        crate::common::prometheus::value(&scrape, name, &labels)
    };
    assert_eq!(
        figure("activity_gateway_log_stream_delivered_total", None),
        Some(size as f64),
        "{text}"
    );
    assert_eq!(
        figure("activity_gateway_log_stream_lag_events", None),
        Some(0.0)
    );
    assert_eq!(
        figure(
            "activity_gateway_log_stream_state",
            Some(("state", "active"))
        ),
        Some(1.0)
    );
    assert_eq!(
        figure(
            "activity_gateway_log_stream_state",
            Some(("state", "failing"))
        ),
        Some(0.0)
    );
    // The log's signed checkpoint follows the events it covers.
    let body = gql(
        &app,
        &key,
        "{ org(id: \"org_acme\") { checkpoint { treeSize note } } }",
        json!({}),
    )
    .await;
    let checkpoint = &body["data"]["org"]["checkpoint"];
    assert_eq!(checkpoint["treeSize"], size, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = receiver.received().await;
        if let Some(delivered) = got.checkpoints.last() {
            assert_eq!(delivered.0, size as i64);
            assert_eq!(delivered.1, checkpoint["note"].as_str().unwrap());
            assert_eq!(got.checkpoints.len(), 1, "each checkpoint once");
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A test delivery is signed like the others and carries no events.
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { testLogStream(id: $id) { delivered error } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        body["data"]["testLogStream"],
        json!({ "delivered": true, "error": null })
    );
    assert_eq!(receiver.received().await.types["activity.test"], 1);
}

async fn failures_slow_answers_and_dropped_connections_lose_nothing(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let from = db.log_indexes("org_acme").await.len() as i64;
    let id = create(
        &app,
        &key,
        json!({ "name": "flaky", "webhook": webhook(&receiver.url()) }),
    )
    .await;
    // 500 (with Retry-After) for a minute: the events wait, the error shows.
    let outage = Instant::now();
    receiver
        .mode(json!({ "mode": "fail", "seconds": 60 }))
        .await;
    ingest(&app, &key, 3_000, "stream.flaky").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stream(&app, &key, &id).await;
        if let Some(error) = s["lastError"].as_str() {
            assert!(error.contains("500"), "{s}");
            assert_eq!(s["status"], "ACTIVE", "{s}");
            assert!(s["lagEvents"].as_i64().unwrap() > 0, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "no error shown: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let size = from as usize + 3_000;
    let got = receiver
        .until_events("org_acme", 3_000, Duration::from_secs(120))
        .await;
    assert!(
        outage.elapsed() >= Duration::from_secs(60),
        "delivered during the outage"
    );
    assert_in_log_order(&db, &got, from).await;
    // Connections closed mid-request, then slow answers.
    receiver.mode(json!({ "mode": "drop", "count": 3 })).await;
    ingest(&app, &key, 2_000, "stream.flaky").await;
    let got = receiver
        .until_events("org_acme", 5_000, Duration::from_secs(60))
        .await;
    assert_in_log_order(&db, &got, from).await;
    receiver
        .mode(json!({ "mode": "slow", "seconds": 1.5 }))
        .await;
    ingest(&app, &key, 2_000, "stream.flaky").await;
    let got = receiver
        .until_events("org_acme", 7_000, Duration::from_secs(60))
        .await;
    assert_in_log_order(&db, &got, from).await;
    assert_eq!(db.log_indexes("org_acme").await.len(), size + 4_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stream(&app, &key, &id).await;
        if s["lastError"].is_null() && s["lagEvents"] == 0 {
            assert_eq!(s["deliveredTotal"], 7_000, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_paused_stream_delivers_nothing_and_resumes_where_it_stopped(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let from = db.log_indexes("org_acme").await.len() as i64;
    let id = create(
        &app,
        &key,
        json!({ "name": "pausable", "webhook": webhook(&receiver.url()) }),
    )
    .await;
    ingest(&app, &key, 500, "stream.before").await;
    receiver
        .until_events("org_acme", 500, Duration::from_secs(30))
        .await;
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { pauseLogStream(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(body["data"]["pauseLogStream"]["status"], "PAUSED", "{body}");
    ingest(&app, &key, 700, "stream.while_paused").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.received().await;
    assert_eq!(
        got.first_arrivals("org_acme").len(),
        500,
        "nothing while paused"
    );
    let s = stream(&app, &key, &id).await;
    assert_eq!(s["status"], "PAUSED");
    assert_eq!(s["lagEvents"], 700, "{s}");
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { resumeLogStream(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        body["data"]["resumeLogStream"]["status"], "ACTIVE",
        "{body}"
    );
    let got = receiver
        .until_events("org_acme", 1_200, Duration::from_secs(30))
        .await;
    assert_in_log_order(&db, &got, from).await;
}

/// Three unfiltered streams of one org wake on the same commits: each batch
/// is read once for all three (they read half as often as they deliver, or
/// less), and each still gets every event once, in log order, while a
/// filtered fourth reads its own.
async fn an_orgs_streams_share_each_read_and_each_gets_every_event_in_order(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let event_reads = Arc::new(AtomicUsize::new(0));
    let reads = event_reads.clone();
    counted.set_metric_callback(move |info| {
        let sql = &info.statement.sql;
        if sql.contains("FROM \"activity_events\"") && sql.contains("\"log_index\" >=") {
            reads.fetch_add(1, Ordering::SeqCst);
        }
    });
    let app = TestApp::spawn_with(&counted, streaming()).await;
    let from = db.log_indexes("org_acme").await.len() as i64;
    let receivers: Vec<Receiver> = (0..3).map(|_| Receiver::start()).collect();
    for (n, receiver) in receivers.iter().enumerate() {
        create(
            &app,
            &key,
            json!({ "name": format!("siem {n}"), "webhook": webhook(&receiver.url()) }),
        )
        .await;
    }
    let filtered = Receiver::start();
    create(
        &app,
        &key,
        json!({ "name": "errors", "filter": { "status": "ERROR" }, "webhook": webhook(&filtered.url()) }),
    )
    .await;
    for _ in 0..20 {
        ingest(&app, &key, 350, "stream.shared").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut deliveries = 0;
    for receiver in &receivers {
        let got = receiver
            .until_events("org_acme", 7_000, Duration::from_secs(60))
            .await;
        assert_in_log_order(&db, &got, from).await;
        deliveries += got.deliveries.len();
    }
    let errors = filtered
        .until_events("org_acme", 1_000, Duration::from_secs(60))
        .await;
    assert_eq!(
        errors.first_arrivals("org_acme"),
        failed_since(&db, from, None).await
    );
    let shared_reads = event_reads
        .load(Ordering::SeqCst)
        .saturating_sub(errors.deliveries.len());
    assert!(
        shared_reads * 2 <= deliveries,
        "{shared_reads} reads of events for {deliveries} deliveries"
    );
}

async fn a_filter_delivers_only_what_it_selects(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let from = db.log_indexes("org_acme").await.len() as i64;
    create(
        &app,
        &key,
        json!({
            "name": "errors of one action",
            "filter": { "actions": ["stream.wanted"], "status": "ERROR" },
            "webhook": webhook(&receiver.url()),
        }),
    )
    .await;
    ingest(&app, &key, 1_400, "stream.wanted").await;
    ingest(&app, &key, 1_400, "stream.unwanted").await;
    // Every 7th event of a batch failed: 200 wanted errors.
    let got = receiver
        .until_events("org_acme", 200, Duration::from_secs(30))
        .await;
    let wanted = failed_since(&db, from, Some("stream.wanted")).await;
    assert_eq!(wanted.len(), 200);
    // The unwanted ones were passed over, not held back: nothing more comes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_later = receiver.received().await;
    assert_eq!(got_later.first_arrivals("org_acme"), wanted);
    assert_eq!(got.invalid, 0);
}

async fn a_refusal_moves_the_stream_to_failing_with_the_answer_kept(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let from = db.log_indexes("org_acme").await.len() as i64;
    receiver.mode(json!({ "mode": "refuse" })).await;
    let id = create(
        &app,
        &key,
        json!({ "name": "refused", "webhook": webhook(&receiver.url()) }),
    )
    .await;
    ingest(&app, &key, 300, "stream.refused").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let failing = loop {
        let s = stream(&app, &key, &id).await;
        if s["status"] == "FAILING" {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = failing["lastError"].as_str().unwrap();
    assert!(
        error.contains("400") && error.contains("refused on purpose"),
        "{failing}"
    );
    assert_eq!(failing["nextLogIndex"], from, "nothing skipped: {failing}");
    assert_eq!(failing["deliveredTotal"], 0, "{failing}");
    // The refusal is an event of the org.
    let recorded = db
        .count_events(&format!(
            "org_id = 'org_acme' AND action = 'log_stream.refused' AND resource_id = '{id}'"
        ))
        .await;
    assert_eq!(recorded, 1);
    // Resumed once the destination takes batches again: from the cursor.
    receiver.mode(json!({ "mode": "ok" })).await;
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { resumeLogStream(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(body["data"]["resumeLogStream"]["status"], "ACTIVE");
    // The 300 events and the refusal's own event.
    let got = receiver
        .until_events("org_acme", 301, Duration::from_secs(30))
        .await;
    assert_in_log_order(&db, &got, from).await;
}

/// Every problem of an input at once, each located, none echoing a secret;
/// and the name and count limits at and past their edge.
async fn bad_streams_are_refused_with_every_problem_and_limits_hold_at_their_edge(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let secret = "not-a-standard-webhooks-secret";
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": {
            "name": "x".repeat(101),
            "webhook": { "url": "ftp://example.com/hook", "secret": secret },
        } }),
    )
    .await;
    assert!(body["data"].is_null(), "{body}");
    let text = body.to_string();
    assert!(!text.contains(secret), "the secret is never echoed: {text}");
    let error = &body["errors"][0]["extensions"];
    assert_eq!(error["status_code"], 422, "{body}");
    let kinds: Vec<&str> = error["details"]["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["string_length", "url_scheme", "secret_invalid"],
        "{body}"
    );
    // No destination at all.
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "nowhere" } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "missing_destination",
        "{body}"
    );
    // A name of 100 characters is taken; ten streams are, the eleventh not.
    let hook = webhook("http://127.0.0.1:9/hook");
    create(
        &app,
        &key,
        json!({ "name": "n".repeat(100), "webhook": hook }),
    )
    .await;
    create(&app, &key, json!({ "name": "stream 2", "webhook": hook })).await;
    // Names are trimmed, and unique in the org.
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": " stream 2 ", "webhook": hook } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "name_taken",
        "{body}"
    );
    for n in 3..=10 {
        create(
            &app,
            &key,
            json!({ "name": format!("stream {n}"), "webhook": hook }),
        )
        .await;
    }
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "eleventh", "webhook": hook } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "too_many_streams",
        "{body}"
    );
    // Another org's stream is not found, and not this org's to change.
    let other = db.key("org_globex", Role::Admin).await;
    let mine = stream_ids(&app, &key).await;
    let body = gql(
        &app,
        &other,
        "mutation($id: ID!) { deleteLogStream(id: $id) { id } }",
        json!({ "id": mine[0] }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
        "{body}"
    );
    assert_eq!(stream_ids(&app, &key).await.len(), 10);
    // A viewer may not see streams at all.
    let viewer = db.key("org_acme", Role::Viewer).await;
    let body = gql(&app, &viewer, STREAMS, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    // Deleting frees a place.
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { deleteLogStream(id: $id) { id name } }",
        json!({ "id": mine[0] }),
    )
    .await;
    assert_eq!(body["data"]["deleteLogStream"]["id"], mine[0], "{body}");
    create(&app, &key, json!({ "name": "eleventh", "webhook": hook })).await;
}

async fn stream_ids(app: &TestApp, key: &str) -> Vec<String> {
    let body = gql(app, key, STREAMS, json!({})).await;
    body["data"]["org"]["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn private_targets_are_refused_without_the_flag(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:8443/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://localhost/hook",
        "https://metadata.google.internal/hook",
    ] {
        let body = gql(
            &app,
            &key,
            CREATE,
            json!({ "input": { "name": "inward", "webhook": webhook(url) } }),
        )
        .await;
        assert_eq!(
            body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "private_target",
            "{url}: {body}"
        );
    }
    // Plain http only with the flag.
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "plain", "webhook": webhook("http://hooks.example.com/") } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "url_scheme",
        "{body}"
    );
    assert!(stream_ids(&app, &key).await.is_empty());
}

async fn secrets_are_sealed_at_rest_and_never_answered(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let id = create(
        &app,
        &key,
        json!({ "name": "sealed", "webhook": webhook("http://127.0.0.1:9/hook") }),
    )
    .await;
    let bare = SECRET.trim_start_matches("whsec_");
    let rows = db
        .rows(
            "SELECT id, name, format, filter, destination, secret_sealed, status FROM log_streams",
            vec![],
        )
        .await;
    assert_eq!(rows.len(), 1);
    let row_text = (0..7)
        .map(|i| rows[0].try_get_by_index::<String>(i).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(row_text.contains(&id), "{row_text}");
    assert!(row_text.contains("v1."), "sealed: {row_text}");
    assert!(
        !row_text.contains(bare),
        "the row holds the secret in clear: {row_text}"
    );
    let everything = gql(
        &app,
        &key,
        "{ org(id: \"org_acme\") { logStreams { id name status destination { kind url shape } lastError } } }",
        json!({}),
    )
    .await;
    assert!(!everything.to_string().contains(bare), "{everything}");
}

/// The real binary, killed with SIGKILL while it delivers; a second one on
/// the same database takes the stream over once the lease runs out, and the
/// receiver ends with every event, in order.
async fn a_killed_replica_loses_nothing_and_its_successor_goes_on_in_order(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let receiver = Receiver::start();
    let env = [
        ("ACTIVITY_GATEWAY_ALLOW_PRIVATE_STREAM_TARGETS", "true"),
        (
            "ACTIVITY_GATEWAY_STREAM_SECRETS_KEY",
            crate::common::STREAM_SECRETS_KEY,
        ),
        ("ACTIVITY_GATEWAY_RECORD_REQUESTS", "false"),
    ];
    let mut first = Served::start(&db.url, &[], &env, std::process::Stdio::null()).await;
    let client = reqwest::Client::new();
    let call = |base: String, query: &'static str, variables: Value| {
        let client = client.clone();
        let key = key.clone();
        async move {
            let body: Value = client
                .post(format!("{base}/graphql"))
                .header("X-Api-Key", key)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body
        }
    };
    let from = db.log_indexes("org_acme").await.len() as i64;
    let body = call(
        first.base.clone(),
        CREATE,
        json!({ "input": { "name": "survivor", "webhook": webhook(&receiver.url()) } }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    // Slow answers keep batches in flight when the kill comes.
    receiver
        .mode(json!({ "mode": "slow", "seconds": 0.3 }))
        .await;
    let total = 100_000;
    for _ in 0..(total / 10_000) {
        let batch: Vec<Value> = (0..10_000)
            .map(|_| json!({ "action": "stream.kill" }))
            .collect();
        let status = client
            .post(format!("{}/v1/orgs/org_acme/activity", first.base))
            .header("X-Api-Key", &key)
            .json(&batch)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    receiver
        .until_events("org_acme", 3_000, Duration::from_secs(60))
        .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let before = receiver.received().await.first_arrivals("org_acme").len();
    assert!(before < total, "the kill came too late to matter");
    receiver.mode(json!({ "mode": "ok" })).await;
    let mut second = Served::start(&db.url, &[], &env, std::process::Stdio::null()).await;
    let got = receiver
        .until_events("org_acme", total, Duration::from_secs(120))
        .await;
    assert_in_log_order(&db, &got, from).await;
    crate::common::terminate(&mut second.child);
}

/// A stream held back (refused) over events that retention then purges:
/// once resumed it delivers what is left, in order, and counts the rest.
async fn events_purged_before_delivery_are_counted_not_skipped_silently(db: TestDb) {
    db.seed(400).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    receiver.mode(json!({ "mode": "refuse" })).await;
    let id = create(
        &app,
        &key,
        json!({ "name": "behind", "startAt": "BEGINNING", "webhook": webhook(&receiver.url()) }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while stream(&app, &key, &id).await["status"] != "FAILING" {
        assert!(Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = db.log_indexes("org_acme").await;
    activity_gateway::service::retention::set(&db.db, "org_acme", Some(3))
        .await
        .unwrap();
    activity_gateway::service::retention::purge(&db.db)
        .await
        .unwrap()
        .unwrap();
    let left = db.log_indexes("org_acme").await;
    // What the purge removed, whatever else was recorded meanwhile (the
    // purge's own event, the stream's failing alert).
    let kept: HashSet<i64> = left.iter().copied().collect();
    let purged = before.iter().filter(|i| !kept.contains(i)).count();
    assert!(purged > 100, "the seed spans 14 days: {purged}");
    receiver.mode(json!({ "mode": "ok" })).await;
    gql(
        &app,
        &key,
        "mutation($id: ID!) { resumeLogStream(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    let got = receiver
        .until_events("org_acme", left.len(), Duration::from_secs(30))
        .await;
    assert_eq!(got.first_arrivals("org_acme"), left);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stream(&app, &key, &id).await;
        if s["lagEvents"] == 0 {
            assert_eq!(s["purgedTotal"], purged, "{s}");
            assert_eq!(s["deliveredTotal"], left.len(), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Splunk's HEC and Datadog's logs intake, as their documentation describes
/// the requests (the receiver checks paths, headers and bodies): every event
/// arrives, in log order; a URL without a path gets the documented one.
async fn splunk_and_datadog_destinations_get_their_documented_requests(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let (splunk, datadog) = (Receiver::start(), Receiver::start());
    let from = db.log_indexes("org_acme").await.len() as i64;
    for (name, shape, receiver, path) in [
        ("splunk", "SPLUNK_HEC", &splunk, "/services/collector/event"),
        ("datadog", "DATADOG", &datadog, "/api/v2/logs"),
    ] {
        let body = gql(
            &app,
            &key,
            CREATE,
            json!({ "input": { "name": name, "webhook": { "url": receiver.base, "secret": TOKEN, "shape": shape } } }),
        )
        .await;
        let destination = &body["data"]["createLogStream"]["destination"];
        assert_eq!(
            destination["url"],
            format!("{}{path}", receiver.base),
            "{body}"
        );
        assert_eq!(destination["shape"], shape, "{body}");
        let id = body["data"]["createLogStream"]["id"].as_str().unwrap();
        let test = gql(
            &app,
            &key,
            "mutation($id: ID!) { testLogStream(id: $id) { delivered error } }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(test["data"]["testLogStream"]["delivered"], true, "{test}");
    }
    ingest(&app, &key, 2_500, "stream.vendors").await;
    for receiver in [&splunk, &datadog] {
        let got = receiver
            .until_events("org_acme", 2_500, Duration::from_secs(30))
            .await;
        assert_in_log_order(&db, &got, from).await;
        assert_eq!(got.types["activity.test"], 1);
    }
    // A token with a space cannot go in a header: refused, not echoed.
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "bad", "webhook": { "url": splunk.base, "secret": "two words", "shape": "SPLUNK_HEC" } } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "secret_invalid",
        "{body}"
    );
    assert!(!body.to_string().contains("two words"));
}

async fn the_cli_manages_streams_through_the_same_service(db: TestDb) {
    db.seed(0).await;
    let receiver = Receiver::start();
    let url = receiver.url();
    let base = ["--database-url", db.url.as_str(), "--org", "org_acme"];
    let keyed = [
        "--stream-secrets-key",
        crate::common::STREAM_SECRETS_KEY,
        "--allow-private-stream-targets",
    ];
    let run = |verb: &str, more: &[&str]| {
        let mut args = vec!["streams", verb];
        args.extend(base);
        args.extend(more);
        crate::common::cli(&args)
    };
    let mut create = vec![
        "--name",
        "from the cli",
        "--url",
        url.as_str(),
        "--secret",
        SECRET,
    ];
    create.extend(keyed);
    let (ok, out) = run("create", &create);
    assert!(ok, "{out}");
    // Stdout's JSON comes first; the log lines (stderr) after it.
    let json_lines = |out: &str| -> Vec<Value> {
        out.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let made = json_lines(&out).remove(0);
    assert_eq!(made["status"], "active", "{out}");
    assert!(!out.contains(SECRET.trim_start_matches("whsec_")), "{out}");
    let id = made["id"].as_str().unwrap().to_owned();
    let mut test = vec!["--id", id.as_str()];
    test.extend(keyed);
    let (ok, out) = run("test", &test);
    assert!(ok, "{out}");
    assert!(out.contains(r#""delivered":true"#), "{out}");
    let (ok, out) = run("pause", &["--id", &id]);
    assert!(ok && out.contains(r#""status":"paused""#), "{out}");
    let (ok, out) = run("list", &[]);
    assert!(ok, "{out}");
    let listed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let (ok, out) = run("resume", &["--id", &id]);
    assert!(ok && out.contains(r#""status":"active""#), "{out}");
    // Mistakes answer one clear line and exit 1.
    let (ok, out) = run(
        "create",
        &["--name", "", "--url", "ftp://x", "--secret", "s"],
    );
    assert!(
        !ok && out.contains("name should have 1 to 100 characters"),
        "{out}"
    );
    let (ok, out) = run("delete", &["--id", "lst_nope"]);
    assert!(!ok && out.contains("no log_stream lst_nope"), "{out}");
    let (ok, out) = run("delete", &["--id", &id]);
    assert!(ok, "{out}");
    let (ok, out) = crate::common::cli(&[
        "streams",
        "list",
        "--database-url",
        &db.url,
        "--org",
        "org_nope",
    ]);
    assert!(!ok && out.contains("no org org_nope"), "{out}");
    assert_eq!(receiver.received().await.types["activity.test"], 1);
    // A syslog collector in TLS, trusted through --stream-ca-file.
    let pki = TestPki::make();
    let rsyslog = Rsyslog::start_with(Some(&pki)).await;
    let port = rsyslog.port.to_string();
    let ca = pki.ca.display().to_string();
    let mut create = vec![
        "--name",
        "syslog",
        "--syslog-host",
        "localhost",
        "--syslog-port",
        &port,
        "--syslog-tls",
    ];
    create.extend(keyed);
    let (ok, out) = run("create", &create);
    assert!(ok, "{out}");
    let made = json_lines(&out).remove(0);
    assert_eq!(
        made["destination"],
        json!({ "kind": "syslog", "host": "localhost", "port": rsyslog.port, "tls": true }),
        "{out}"
    );
    let id = made["id"].as_str().unwrap().to_owned();
    let mut test = vec!["--id", id.as_str(), "--stream-ca-file", ca.as_str()];
    test.extend(keyed);
    let (ok, out) = run("test", &test);
    assert!(ok && out.contains(r#""delivered":true"#), "{out}");
    // rsyslog writes its file a moment after it closed the connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rsyslog.messages().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the test message never reached the file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rsyslog.messages()[0]["type"], "activity.test");
    // Without the CA the collector is not trusted, and the command fails.
    let mut test = vec!["--id", id.as_str()];
    test.extend(keyed);
    let (ok, out) = run("test", &test);
    assert!(
        !ok && out.contains(r#""delivered":false"#) && out.contains("UnknownIssuer"),
        "{out}"
    );
    // A CA file that holds no certificate stops the command before it runs.
    let mut test = vec!["--id", id.as_str(), "--stream-ca-file", "Cargo.toml"];
    test.extend(keyed);
    let (ok, out) = run("test", &test);
    assert!(!ok && out.contains("holds no PEM certificate"), "{out}");
    // An S3 bucket; its secret access key is --secret, never printed.
    let mut create = vec![
        "--name",
        "bucket",
        "--s3-bucket",
        "audit",
        "--s3-endpoint",
        "http://127.0.0.1:9",
        "--s3-access-key-id",
        "AKIDCLI",
        "--secret",
        "cli-secret-access-key",
    ];
    create.extend(keyed);
    let (ok, out) = run("create", &create);
    assert!(ok, "{out}");
    let made = json_lines(&out).remove(0);
    assert_eq!(made["destination"]["kind"], "s3", "{out}");
    assert_eq!(made["destination"]["bucket"], "audit", "{out}");
    assert!(!out.contains("cli-secret-access-key"), "{out}");
    // Exactly one destination: none, or two, is refused before anything runs.
    let (ok, out) = run("create", &["--name", "none"]);
    assert!(!ok && out.contains("--url"), "{out}");
    let (ok, out) = run(
        "create",
        &[
            "--name",
            "two",
            "--url",
            url.as_str(),
            "--syslog-host",
            "localhost",
            "--syslog-port",
            "514",
        ],
    );
    assert!(!ok && out.contains("cannot be used with"), "{out}");
    // A port past its edge is the service's 422 message.
    let (ok, out) = run(
        "create",
        &[
            "--name",
            "far",
            "--syslog-host",
            "localhost",
            "--syslog-port",
            "65536",
        ],
    );
    assert!(
        !ok && out.contains("port should be from 1 to 65535"),
        "{out}"
    );
}

async fn an_update_changes_the_filter_from_the_cursor_on(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let id = create(
        &app,
        &key,
        json!({ "name": "narrow", "filter": { "actions": ["first"] }, "webhook": webhook(&receiver.url()) }),
    )
    .await;
    ingest(&app, &key, 100, "first").await;
    ingest(&app, &key, 100, "second").await;
    receiver
        .until_events("org_acme", 100, Duration::from_secs(30))
        .await;
    // The cursor passes the "second" events too (the first delivery may end
    // before they were read): only then were they passed over.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream(&app, &key, &id).await["lagEvents"] != 0 {
        assert!(Instant::now() < deadline, "the cursor never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!, $input: LogStreamUpdateInput!) { updateLogStream(id: $id, input: $input) { id name status } }",
        json!({ "id": id, "input": { "name": "wider", "filter": { "actions": ["first", "second"] } } }),
    )
    .await;
    assert_eq!(body["data"]["updateLogStream"]["name"], "wider", "{body}");
    ingest(&app, &key, 100, "second").await;
    let got = receiver
        .until_events("org_acme", 200, Duration::from_secs(30))
        .await;
    // The first 100 "second" events were passed over before the update.
    let expected: Vec<i64> = db
        .rows(
            "SELECT log_index FROM activity_events WHERE org_id = 'org_acme' AND \
             (action = 'first' OR (action = 'second' AND log_index >= \
               (SELECT MIN(log_index) + 100 FROM activity_events WHERE org_id = 'org_acme' AND action = 'second'))) \
             ORDER BY log_index",
            vec![],
        )
        .await
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0).unwrap())
        .collect();
    assert_eq!(got.first_arrivals("org_acme"), expected);
    // A bad filter is refused, located under the input.
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { updateLogStream(id: $id, input: { filter: { startTime: \"soon\" } }) { id } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["loc"],
        json!(["input", "filter", "startTime"]),
        "{body}"
    );
}

/// One org's ten streams to a destination that accepts connections and
/// never answers, made first, on a replica with six deliverers: the other
/// org's stream is delivered at once all the same (an org gets at most four
/// of a replica's deliverers).
async fn an_org_whose_destinations_hang_does_not_hold_up_another_org(db: TestDb) {
    db.seed(0).await;
    let (acme, globex) = (
        db.key("org_acme", Role::Admin).await,
        db.key("org_globex", Role::Admin).await,
    );
    let mut settings = streaming();
    settings.streams.stream_deliverers = 6;
    let app = TestApp::spawn_with(&db.db, settings).await;
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("http://{}/hook", hole.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            open.push(socket);
        }
    });
    for n in 0..10 {
        let body = gql(
            &app,
            &globex,
            CREATE,
            json!({ "input": { "name": format!("hole {n}"), "webhook": webhook(&hole_url) } }),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let events: Vec<Value> = (0..50)
        .map(|_| json!({ "action": "stream.hang" }))
        .collect();
    let (status, body) = app
        .post_json(
            &globex,
            "/v1/orgs/org_globex/activity",
            &Value::Array(events),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Let the hanging streams take what deliverers they can.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let receiver = Receiver::start();
    create(
        &app,
        &acme,
        json!({ "name": "healthy", "webhook": webhook(&receiver.url()) }),
    )
    .await;
    ingest(&app, &acme, 200, "stream.healthy").await;
    receiver
        .until_events("org_acme", 200, Duration::from_secs(10))
        .await;
    held.abort();
}

async fn an_ocsf_stream_delivers_api_activity_in_log_order(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let receiver = Receiver::start();
    let from = db.log_indexes("org_acme").await.len() as i64;
    let body = gql(
        &app,
        &key,
        "mutation($input: LogStreamInput!) { createLogStream(input: $input) { id format } }",
        json!({ "input": { "name": "ocsf", "format": "OCSF", "webhook": webhook(&receiver.url()) } }),
    )
    .await;
    assert_eq!(body["data"]["createLogStream"]["format"], "OCSF", "{body}");
    let events: Vec<Value> = (0..300)
        .map(|i| {
            json!({
                "action": "documents.update",
                "method": if i % 2 == 0 { "PATCH" } else { "DELETE" },
                "path": "/v1/documents/7",
                "status_code": if i % 3 == 0 { 503 } else { 200 },
                "resource_type": "document",
                "resource_id": "doc_7",
                "trace_id": format!("trace-{i}"),
            })
        })
        .collect();
    let (status, body) = app
        .post_json(&key, "/v1/orgs/org_acme/activity", &Value::Array(events))
        .await;
    assert_eq!(status, 200, "{body}");
    let got = receiver
        .until_events("org_acme", 300, Duration::from_secs(30))
        .await;
    assert_in_log_order(&db, &got, from).await;
}

/// Debian's rsyslog on a free port, writing each message's text (the
/// event's JSON) to a file, one per line; stopped when dropped.
struct Rsyslog {
    _process: Running,
    port: u16,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A test CA and a collector's certificate for `localhost` only, made by
/// the openssl command.
struct TestPki {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl TestPki {
    fn make() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=activity-gateway test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            at("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestPki {
            ca: at("ca.pem"),
            cert: at("server.pem"),
            key: at("server.key"),
            _dir: dir,
        }
    }
}

impl Rsyslog {
    async fn start() -> Rsyslog {
        Self::start_with(None).await
    }

    /// rsyslogd listening on 127.0.0.1, in TLS (its gtls driver, no client
    /// certificates asked) with `pki`'s certificate when given.
    async fn start_with(pki: Option<&TestPki>) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::common::free_port();
        let out = dir.path().join("out.log");
        let conf = dir.path().join("rsyslog.conf");
        let (tls_global, tls_module) = match pki {
            Some(pki) => (
                format!(
                    " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
                     defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    pki.ca.display(),
                    pki.cert.display(),
                    pki.key.display()
                ),
                " streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\"",
            ),
            None => (String::new(), ""),
        };
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"64k\"{tls_global})\n\
                 module(load=\"imtcp\"{tls_module})\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{out}\" template=\"raw\")\n",
                work = dir.path().display(),
                out = out.display(),
            ),
        )
        .unwrap();
        let child = std::process::Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("pid"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("rsyslogd runs (scripts/test.sh installs Debian's rsyslog)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "rsyslogd did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Rsyslog {
            _process: Running(child),
            port,
            out,
            _dir: dir,
        }
    }

    /// Waits until org_acme's events have arrived (first arrivals, by
    /// event id), asserts they are `expected`'s log indexes in order, and
    /// answers every message.
    async fn wait_for(&self, expected: &[i64]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let messages = self.messages();
            let mut seen = HashSet::new();
            let arrived: Vec<i64> = messages
                .iter()
                .filter(|m| m["org_id"] == "org_acme" && m.get("log_index").is_some())
                .filter(|m| seen.insert(m["id"].as_str().unwrap().to_owned()))
                .map(|m| m["log_index"].as_i64().unwrap())
                .collect();
            if arrived.len() >= expected.len() {
                assert_eq!(arrived, expected);
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} messages",
                arrived.len(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The messages written so far, as JSON.
    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l.trim()).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

async fn a_syslog_stream_in_tls_reaches_rsyslog_and_verifies_the_collector(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let pki = TestPki::make();
    let rsyslog = Rsyslog::start_with(Some(&pki)).await;
    let mut trusting = streaming();
    trusting.streams.stream_ca_file =
        Some(activity_gateway::service::streams::trust::Trust::from_pem_file(&pki.ca).unwrap());
    let app = TestApp::spawn_with(&db.db, trusting).await;
    async fn create(app: &TestApp, key: &str, host: &str, port: u16, tls: Value) -> Value {
        let mut syslog = json!({ "host": host, "port": port });
        if !tls.is_null() {
            syslog["tls"] = tls;
        }
        let body = gql(
            app,
            key,
            CREATE,
            json!({ "input": { "name": "tls", "syslog": syslog } }),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
        body["data"]["createLogStream"].clone()
    }
    async fn test(app: &TestApp, key: &str, stream: &Value) -> Value {
        let body = gql(
            app,
            key,
            "mutation($id: ID!) { testLogStream(id: $id) { delivered error } }",
            json!({ "id": stream["id"] }),
        )
        .await;
        body["data"]["testLogStream"].clone()
    }
    async fn delete(app: &TestApp, key: &str, stream: &Value) {
        let body = gql(
            app,
            key,
            "mutation($id: ID!) { deleteLogStream(id: $id) { id } }",
            json!({ "id": stream["id"] }),
        )
        .await;
        assert_eq!(
            body["data"]["deleteLogStream"]["id"], stream["id"],
            "{body}"
        );
    }
    let port = rsyslog.port;
    // Without `tls` a stream is plain TCP, as before.
    let plain = create(&app, &key, "127.0.0.1", port, Value::Null).await;
    assert_eq!(plain["destination"]["tls"], false, "{plain}");
    delete(&app, &key, &plain).await;
    // The collector's certificate names localhost only: reached by its
    // address, the name does not match and nothing is sent.
    let mismatched = create(&app, &key, "127.0.0.1", port, json!(true)).await;
    let outcome = test(&app, &key, &mismatched).await;
    assert_eq!(outcome["delivered"], false, "{outcome}");
    assert!(
        outcome["error"].as_str().unwrap().contains("certificate"),
        "{outcome}"
    );
    delete(&app, &key, &mismatched).await;
    // Without the operator's CA, the collector is not trusted.
    let untrusting = TestApp::spawn_with(&db.db, streaming()).await;
    let unknown = create(&untrusting, &key, "localhost", port, json!(true)).await;
    let outcome = test(&untrusting, &key, &unknown).await;
    assert_eq!(outcome["delivered"], false, "{outcome}");
    assert!(
        outcome["error"].as_str().unwrap().contains("UnknownIssuer"),
        "{outcome}"
    );
    delete(&untrusting, &key, &unknown).await;
    assert!(
        rsyslog.messages().is_empty(),
        "nothing reached the collector"
    );
    // With it, by its name: every event arrives, in log order.
    let from = db.log_indexes("org_acme").await.len() as i64;
    let stream = create(&app, &key, "localhost", port, json!(true)).await;
    assert_eq!(stream["destination"]["tls"], true, "{stream}");
    assert_eq!(stream["destination"]["host"], "localhost", "{stream}");
    let outcome = test(&app, &key, &stream).await;
    assert_eq!(outcome, json!({ "delivered": true, "error": null }));
    ingest(&app, &key, 100_000, "stream.syslog.tls").await;
    let messages = rsyslog.wait_for(&indexes_since(&db, from).await).await;
    assert!(messages.iter().any(|m| m["type"] == "activity.test"));
    // `tls` must be a Boolean.
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "bad", "syslog": { "host": "localhost", "port": 514, "tls": "yes" } } }),
    )
    .await;
    assert!(
        body["data"].is_null() && !body["errors"].is_null(),
        "{body}"
    );
}

async fn a_syslog_stream_reaches_rsyslog_in_order(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let rsyslog = Rsyslog::start().await;
    let from = db.log_indexes("org_acme").await.len() as i64;
    let body = gql(
        &app,
        &key,
        CREATE,
        json!({ "input": { "name": "syslog", "syslog": { "host": "127.0.0.1", "port": rsyslog.port } } }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let created = &body["data"]["createLogStream"];
    assert_eq!(created["destination"]["kind"], "syslog", "{body}");
    let id = created["id"].as_str().unwrap().to_owned();
    let test = gql(
        &app,
        &key,
        "mutation($id: ID!) { testLogStream(id: $id) { delivered error } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(test["data"]["testLogStream"]["delivered"], true, "{test}");
    ingest(&app, &key, 100_000, "stream.syslog").await;
    let messages = rsyslog.wait_for(&indexes_since(&db, from).await).await;
    assert!(messages.iter().any(|m| m["type"] == "activity.test"));
    // Ports at and past their edges, a private host without the flag.
    let strict = TestApp::spawn(&db.db).await;
    for (host, port, kind) in [
        ("syslog.example.com", 0, "port_range"),
        ("syslog.example.com", 65_536, "port_range"),
        ("10.0.0.1", 514, "private_target"),
        ("not a host", 514, "host_invalid"),
    ] {
        let body = gql(
            &strict,
            &key,
            CREATE,
            json!({ "input": { "name": "edge", "syslog": { "host": host, "port": port } } }),
        )
        .await;
        assert_eq!(
            body["errors"][0]["extensions"]["details"]["detail"][0]["type"], kind,
            "{host}:{port}: {body}"
        );
    }
    let body = gql(
        &strict,
        &key,
        CREATE,
        json!({ "input": { "name": "edge", "syslog": { "host": "syslog.example.com", "port": 65_535 } } }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    // Both destinations at once is not one destination.
    let body = gql(
        &strict,
        &key,
        CREATE,
        json!({ "input": { "name": "both", "webhook": webhook("https://hooks.example.com/"),
                           "syslog": { "host": "syslog.example.com", "port": 514 } } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "missing_destination",
        "{body}"
    );
}

/// Renames racing for one name: one wins, the other is told the name is
/// taken (never a 500), every time.
async fn two_renames_to_one_name_at_once_end_in_one_name_taken(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let hook = webhook("http://127.0.0.1:9/hook");
    let a = create(&app, &key, json!({ "name": "a", "webhook": hook })).await;
    let b = create(&app, &key, json!({ "name": "b", "webhook": hook })).await;
    const RENAME: &str = "mutation($id: ID!, $name: String!) { updateLogStream(id: $id, input: { name: $name }) { name } }";
    for round in 0..5 {
        let name = format!("same {round}");
        let (first, second) = tokio::join!(
            gql(&app, &key, RENAME, json!({ "id": a, "name": name })),
            gql(&app, &key, RENAME, json!({ "id": b, "name": name })),
        );
        let outcomes: Vec<String> = [first, second]
            .iter()
            .map(|body| {
                match body["errors"][0]["extensions"]["details"]["detail"][0]["type"].as_str() {
                    Some(kind) => kind.to_owned(),
                    None => {
                        assert_eq!(
                            body["data"]["updateLogStream"]["name"],
                            name.as_str(),
                            "{body}"
                        );
                        "renamed".to_owned()
                    }
                }
            })
            .collect();
        let mut sorted = outcomes.clone();
        sorted.sort();
        assert_eq!(sorted, ["name_taken", "renamed"], "{outcomes:?}");
    }
}

/// moto's S3 API server, running until dropped; objects are made and read
/// back with boto3 (`tests/receivers/s3.py`).
struct S3Server {
    _process: Running,
    endpoint: String,
}

impl S3Server {
    async fn start() -> S3Server {
        let port = crate::common::free_port();
        let bin = python_tools();
        let child = std::process::Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server runs (tests/conformance/requirements.txt)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "moto_server did not listen");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        S3Server {
            _process: Running(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    fn boto(&self, command: &str, bucket: &str) -> Value {
        let out = std::process::Command::new(python_tools().join("python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/receivers/s3.py"
            ))
            .args([self.endpoint.as_str(), command, bucket])
            .output()
            .expect("the S3 reader runs");
        assert!(
            out.status.success(),
            "s3.py {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every object of the bucket, in key order: (key, its lines).
    fn objects(&self, bucket: &str) -> Vec<(String, Vec<Value>)> {
        let read = self.boto("read", bucket);
        read["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                assert_eq!(o["newline_ended"], true, "{o}");
                (
                    o["key"].as_str().unwrap().to_owned(),
                    o["lines"].as_array().unwrap().clone(),
                )
            })
            .collect()
    }
}

fn s3_destination(endpoint: &str, bucket: &str) -> Value {
    json!({
        "endpoint": endpoint,
        "bucket": bucket,
        "prefix": "/logs/acme/",
        "accessKeyId": "AKIATESTSTREAMS",
        "secretAccessKey": S3_SECRET,
    })
}

const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A stream to a bucket that does not exist yet fails with S3's answer kept
/// and delivers nothing; once the bucket is made and the stream resumed,
/// every one of 100,000 events arrives in gzip NDJSON objects named by org, hour and log
/// index range, in log order, and the checkpoint and a test delivery too.
async fn an_s3_stream_writes_gzip_ndjson_objects_read_back_in_order(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let s3 = S3Server::start().await;
    let from = db.log_indexes("org_acme").await.len() as i64;
    let body = gql(
        &app,
        &key,
        "mutation($input: LogStreamInput!) { createLogStream(input: $input) \
           { id destination { kind endpoint bucket prefix region accessKeyId } } }",
        json!({ "input": { "name": "bucket", "s3": s3_destination(&s3.endpoint, "audit-trail") } }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let created = &body["data"]["createLogStream"];
    assert_eq!(
        created["destination"],
        json!({ "kind": "s3", "endpoint": s3.endpoint, "bucket": "audit-trail",
                "prefix": "logs/acme", "region": "us-east-1", "accessKeyId": "AKIATESTSTREAMS" })
    );
    assert!(!body.to_string().contains(S3_SECRET));
    let id = created["id"].as_str().unwrap().to_owned();
    ingest(&app, &key, 100_000, "stream.s3").await;
    // No bucket: S3 answers 404 NoSuchBucket, a refusal, kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failing = loop {
        let s = stream(&app, &key, &id).await;
        if s["status"] == "FAILING" {
            break s;
        }
        assert!(Instant::now() < deadline, "never failing: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let why = failing["lastError"].as_str().unwrap();
    assert!(why.contains("404") && why.contains("NoSuchBucket"), "{why}");
    assert!(!why.contains(S3_SECRET), "{why}");
    assert_eq!(failing["deliveredTotal"], 0);
    assert_eq!(failing["nextLogIndex"], from);
    s3.boto("create", "audit-trail");
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { resumeLogStream(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        body["data"]["resumeLogStream"]["status"], "ACTIVE",
        "{body}"
    );
    let expected: Vec<i64> = db
        .log_indexes("org_acme")
        .await
        .into_iter()
        .filter(|i| *i >= from)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let s = stream(&app, &key, &id).await;
        if s["lagEvents"] == 0 && s["deliveredTotal"] == expected.len() {
            assert_eq!(s["status"], "ACTIVE");
            assert!(s["lastError"].is_null(), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "not caught up: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut arrived = Vec::new();
    let mut seen = HashSet::new();
    let mut actions = std::collections::BTreeMap::<String, usize>::new();
    let objects = s3.objects("audit-trail");
    // (A checkpoint signed meanwhile is looked at below.)
    for (object, lines) in objects.iter().filter(|(k, _)| !k.contains("/checkpoints/")) {
        let (first, last) = object_range("logs/acme/org_acme", object)
            .unwrap_or_else(|| panic!("object name {object}"));
        let indexes: Vec<i64> = lines
            .iter()
            .map(|l| l["log_index"].as_i64().unwrap())
            .collect();
        assert_eq!(indexes.first(), Some(&first), "{object}");
        assert_eq!(indexes.last(), Some(&last), "{object}");
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{object}");
        for line in lines {
            assert_eq!(line["org_id"], "org_acme");
            if seen.insert(line["id"].as_str().unwrap().to_owned()) {
                arrived.push(line["log_index"].as_i64().unwrap());
                *actions
                    .entry(line["action"].as_str().unwrap().into())
                    .or_default() += 1;
            }
        }
    }
    assert!(objects.len() >= 100, "batches of at most 1,000 events");
    assert_eq!(arrived, expected, "every event once, in log order");
    // The refusal was recorded in the org's log, and streamed after the events.
    assert_eq!(
        actions,
        [
            ("stream.s3".to_owned(), 100_000),
            ("log_stream.refused".to_owned(), 1)
        ]
        .into()
    );
    // The log's checkpoint lands beside the events it covers.
    let body = gql(
        &app,
        &key,
        "{ org(id: \"org_acme\") { checkpoint { treeSize note } } }",
        json!({}),
    )
    .await;
    let checkpoint = body["data"]["org"]["checkpoint"].clone();
    let size = checkpoint["treeSize"].as_i64().unwrap();
    let wanted = format!("logs/acme/org_acme/checkpoints/{size:020}.ndjson.gz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let objects = s3.objects("audit-trail");
        if let Some((_, lines)) = objects.iter().find(|(k, _)| *k == wanted) {
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0]["type"], "log.checkpoint");
            assert_eq!(lines[0]["tree_size"], size);
            assert_eq!(lines[0]["checkpoint"], checkpoint["note"]);
            break;
        }
        assert!(Instant::now() < deadline, "no {wanted} in the bucket");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = gql(
        &app,
        &key,
        "mutation($id: ID!) { testLogStream(id: $id) { delivered error } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        body["data"]["testLogStream"],
        json!({ "delivered": true, "error": null })
    );
    let tests: Vec<_> = s3
        .objects("audit-trail")
        .into_iter()
        .filter(|(k, _)| k.starts_with("logs/acme/org_acme/tests/"))
        .collect();
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].1[0]["type"], "activity.test");
    // The secret access key is sealed at rest.
    let rows = db
        .rows("SELECT destination, secret_sealed FROM log_streams", vec![])
        .await;
    for i in 0..2 {
        let text: String = rows[0].try_get_by_index(i).unwrap();
        assert!(!text.contains(S3_SECRET), "in clear at rest: {text}");
    }
}

/// The log index range of an object named
/// `{prefix}/{yyyy}/{mm}/{dd}/{hh}/{first:020}-{last:020}.ndjson.gz`.
fn object_range(prefix: &str, name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [y, m, d, h, file] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (first, last) = file.strip_suffix(".ndjson.gz")?.split_once('-')?;
    let shaped = digits(y, 4) && digits(m, 2) && digits(d, 2) && digits(h, 2);
    (shaped && digits(first, 20) && digits(last, 20))
        .then(|| Some((first.parse().ok()?, last.parse().ok()?)))?
}

async fn bad_s3_destinations_are_refused_with_limits_at_their_edge(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let strict = TestApp::spawn(&db.db).await;
    let good = json!({ "bucket": "audit-trail", "accessKeyId": "AKIA1", "secretAccessKey": "s" });
    let with = |field: &str, value: Value| {
        let mut s3 = good.clone();
        s3[field] = value;
        s3
    };
    let prefix_at_edge = vec!["p"; 256].join("/");
    assert_eq!(prefix_at_edge.len(), 511);
    for (s3, field, kind) in [
        (with("bucket", json!("ab")), "bucket", "bucket_invalid"),
        (
            with("bucket", json!("a".repeat(64))),
            "bucket",
            "bucket_invalid",
        ),
        (with("bucket", json!("Audit")), "bucket", "bucket_invalid"),
        (with("bucket", json!("-audit")), "bucket", "bucket_invalid"),
        (
            with("bucket", json!("192.168.1.1")),
            "bucket",
            "bucket_invalid",
        ),
        (with("prefix", json!("a/../b")), "prefix", "prefix_invalid"),
        (with("prefix", json!("a//b")), "prefix", "prefix_invalid"),
        (with("prefix", json!("a b")), "prefix", "prefix_invalid"),
        (
            with("prefix", json!("p".repeat(513))),
            "prefix",
            "prefix_invalid",
        ),
        (with("region", json!("US East")), "region", "region_invalid"),
        (
            with("accessKeyId", json!("")),
            "accessKeyId",
            "access_key_invalid",
        ),
        (
            with("accessKeyId", json!("k".repeat(129))),
            "accessKeyId",
            "access_key_invalid",
        ),
        (
            with("secretAccessKey", json!("")),
            "secretAccessKey",
            "secret_invalid",
        ),
        (
            with("secretAccessKey", json!("s".repeat(1025))),
            "secretAccessKey",
            "secret_invalid",
        ),
        (
            with("endpoint", json!("http://s3.example.com")),
            "endpoint",
            "url_scheme",
        ),
        (
            with("endpoint", json!("https://10.0.0.1:9000")),
            "endpoint",
            "private_target",
        ),
        (
            with("endpoint", json!("https://169.254.169.254")),
            "endpoint",
            "private_target",
        ),
        (
            with("endpoint", json!("https://localhost:9000")),
            "endpoint",
            "private_target",
        ),
        (
            with("endpoint", json!("https://s3.example.com/?x=1")),
            "endpoint",
            "url_query",
        ),
        (
            with("endpoint", json!("https://u:p@s3.example.com")),
            "endpoint",
            "url_credentials",
        ),
        (
            with("endpoint", json!("not a url")),
            "endpoint",
            "url_parsing",
        ),
    ] {
        let body = gql(
            &strict,
            &key,
            CREATE,
            json!({ "input": { "name": "edge", "s3": s3 } }),
        )
        .await;
        let problem = &body["errors"][0]["extensions"]["details"]["detail"][0];
        assert_eq!(problem["type"], kind, "{s3}: {body}");
        assert_eq!(
            problem["loc"],
            json!(["input", "s3", field]),
            "{s3}: {body}"
        );
        assert!(
            !body.to_string().contains(&"s".repeat(1025)),
            "the secret is not echoed"
        );
    }
    // At the edges, taken (AWS's own endpoint when none is given).
    for (n, s3) in [
        with("bucket", json!("abc")),
        with("bucket", json!("a".repeat(63))),
        with("prefix", json!(prefix_at_edge)),
        with("accessKeyId", json!("k".repeat(128))),
        with("secretAccessKey", json!("s".repeat(1024))),
        with("endpoint", json!("https://s3.example.com/")),
    ]
    .into_iter()
    .enumerate()
    {
        let body = gql(
            &strict,
            &key,
            CREATE,
            json!({ "input": { "name": format!("edge {n}"), "s3": s3 } }),
        )
        .await;
        assert!(body["errors"].is_null(), "{s3}: {body}");
    }
    let body = gql(
        &strict,
        &key,
        "{ org(id: \"org_acme\") { logStreams { name destination { kind endpoint bucket prefix region } } } }",
        json!({}),
    )
    .await;
    let streams = body["data"]["org"]["logStreams"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(streams.len(), 6, "{body}");
    assert_eq!(streams[0]["destination"]["endpoint"], Value::Null);
    assert_eq!(streams[0]["destination"]["region"], "us-east-1");
    assert_eq!(
        streams[5]["destination"]["endpoint"],
        "https://s3.example.com"
    );
    // Two destinations at once is not one destination.
    let body = gql(
        &strict,
        &key,
        CREATE,
        json!({ "input": { "name": "both", "s3": good, "webhook": webhook("https://hooks.example.com/") } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["type"], "missing_destination",
        "{body}"
    );
}

/// While nothing answers at the endpoint the stream keeps its cursor, says
/// why in `lastError` and tries again; once the server is up, everything
/// from the cursor arrives, in order.
async fn an_s3_stream_waits_out_an_unreachable_server_and_loses_nothing(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, streaming()).await;
    let port = crate::common::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let from = db.log_indexes("org_acme").await.len() as i64;
    let id = create(
        &app,
        &key,
        json!({ "name": "later", "s3": s3_destination(&endpoint, "later") }),
    )
    .await;
    ingest(&app, &key, 1_500, "stream.s3").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = stream(&app, &key, &id).await;
        if let Some(why) = s["lastError"].as_str() {
            assert!(why.contains("later/"), "names the object: {why}");
            assert_eq!(
                s["status"], "ACTIVE",
                "a network failure is tried again: {s}"
            );
            assert_eq!(s["nextLogIndex"], from);
            assert_eq!(s["deliveredTotal"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "no failure noted: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server comes back whole: its bucket is made before the stream's
    // port answers (a stream that reached it first would rightly be refused
    // with NoSuchBucket and fail), then the port forwards to it.
    let s3 = S3Server::start().await;
    s3.boto("create", "later");
    let _forward = forward(port, &s3.endpoint).await;
    let expected: Vec<i64> = db
        .log_indexes("org_acme")
        .await
        .into_iter()
        .filter(|i| *i >= from)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = stream(&app, &key, &id).await;
        if s["lagEvents"] == 0 {
            assert!(s["lastError"].is_null(), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "not caught up: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut seen = HashSet::new();
    let arrived: Vec<i64> = s3
        .objects("later")
        .iter()
        .filter(|(k, _)| !k.contains("/checkpoints/"))
        .flat_map(|(_, lines)| lines.clone())
        .filter(|l| seen.insert(l["id"].as_str().unwrap().to_owned()))
        .map(|l| l["log_index"].as_i64().unwrap())
        .collect();
    assert_eq!(arrived, expected);
}

/// Forwards every connection to `port` on loopback to `to` (`http://host:port`)
/// until dropped.
struct Forward(tokio::task::JoinHandle<()>);

impl Drop for Forward {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn forward(port: u16, to: &str) -> Forward {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the stream's port is free again");
    let to = to.trim_start_matches("http://").to_owned();
    Forward(tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    }))
}
