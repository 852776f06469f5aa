//! Hostile input and bad luck cost no data and no availability: a corpus of
//! hostile requests against the real server, limits at and past their edges,
//! and the recorder keeping every event that can be stored.

use std::time::{Duration, Instant};

use crate::common::{read, TestApp, TestDb};
use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

on_both_backends!(
    every_request_of_the_abuse_corpus_is_refused_cleanly_while_honest_events_are_kept,
    nul_answers_422_at_its_location,
    one_unstorable_recorded_event_costs_no_other_event,
    numbers_are_bounded_at_and_past_their_maxima_and_summaries_hold_at_them,
    the_configured_body_limit_is_the_one_that_applies,
    graphql_batches_hold_ten_operations_and_share_one_budget,
    cancelled_requests_leave_no_connection_inside_a_transaction,
    empty_query_values_answer_422_at_their_location,
    exported_cells_that_look_like_formulas_are_neutralised,
    a_credential_past_its_requests_in_flight_gets_429,
    slow_headers_and_surplus_connections_are_cut_off,
    an_internal_error_names_an_error_id_and_nothing_internal,
    long_uris_and_large_headers_answer_in_the_envelope_at_and_past_their_edges,
    a_session_search_page_is_bounded_at_and_past_its_edge,
    summaries_hold_over_rows_stored_before_the_maxima,
    requests_that_are_not_http_answer_in_the_envelope,
    texts_that_look_like_array_or_sql_syntax_are_stored_as_written,
);

/// The corpus's placeholders for bodies too large to write out.
fn generated(name: &str) -> Option<String> {
    let repeat = |s: &str, n: usize| s.repeat(n);
    Some(match name {
        "NESTED_ARRAYS_3000" => format!("{}{}", repeat("[", 3000), repeat("]", 3000)),
        "NESTED_METADATA_3000" => format!(
            r#"[{{"action":"x","metadata":{}1{}}}]"#,
            repeat(r#"{"a":"#, 3000),
            repeat("}", 3000)
        ),
        "HUGE_ACTION_1000000" => json!([{ "action": "a".repeat(1_000_000) }]).to_string(),
        "HUGE_ID_100000" => json!([{ "action": "x", "id": "i".repeat(100_000) }]).to_string(),
        "EVENTS_10001" => Value::Array(vec![json!({ "action": "x" }); 10_001]).to_string(),
        "HUGE_PROBLEM_5000" => json!({ "type": "t", "message": "m".repeat(5_000) }).to_string(),
        "GRAPHQL_FANOUT_40" => json!({ "query": fan_out(40) }).to_string(),
        "GRAPHQL_BATCH_1000" => batch(1_000).to_string(),
        "GRAPHQL_BATCH_11" => batch(11).to_string(),
        _ => return None,
    })
}

fn fan_out(aliases: usize) -> String {
    let one = r#"org(id: "org_acme") { workspaces { nodes { apps { nodes { endpoints { nodes { activitySummary(hours: 168) { totalRequests } } } } } } } }"#;
    let body: Vec<String> = (0..aliases).map(|i| format!("a{i}: {one}")).collect();
    format!("{{ {} }}", body.join(" "))
}

fn batch(operations: usize) -> Value {
    let one = json!({ "query": r#"{ org(id: "org_acme") { activitySummary(hours: 168) { totalRequests } } }"# });
    Value::Array(vec![one; operations])
}

/// What counts as a clean refusal: a 4xx in the envelope or the 422 shape,
/// or (GraphQL) an answer that is all errors.
fn refused_cleanly(path: &str, status: u16, body: &Value) -> bool {
    let envelope = body["error"].is_string() && body["status_code"] == status;
    let unprocessable = status == 422 && body["detail"].is_array();
    // GraphQL may refuse one field (a bad cursor on a nested connection):
    // every error is then the client's, and nothing internal.
    let client_codes = [
        "BAD_USER_INPUT",
        "FORBIDDEN",
        "RESOURCE_NOT_FOUND",
        "AUTHENTICATION_FAILED",
        "TOO_MANY_REQUESTS",
        "METHOD_NOT_ALLOWED",
    ];
    let graphql = path.starts_with("/graphql")
        && body["errors"].as_array().is_some_and(|errors| {
            !errors.is_empty()
                && errors.iter().all(|e| {
                    client_codes.contains(&e["extensions"]["code"].as_str().unwrap_or_default())
                })
        });
    match status {
        400..=499 => envelope || unprocessable || graphql,
        200 => graphql,
        _ => false,
    }
}

async fn send(app: &TestApp, key: &str, case: &Value) -> (u16, Value) {
    let path = case["path"].as_str().unwrap();
    let method = reqwest::Method::from_bytes(case["method"].as_str().unwrap().as_bytes()).unwrap();
    // The path goes out exactly as written: no client normalisation.
    let url = reqwest::Url::parse(&app.url(path)).unwrap();
    let mut request = app.client.request(method, url).header("X-Api-Key", key);
    let content_type = case["content_type"].as_str().unwrap_or("application/json");
    if let Some(body) = case.get("json") {
        request = request
            .header("content-type", content_type)
            .body(body.to_string());
    } else if let Some(raw) = case["raw"].as_str() {
        let body = generated(raw).unwrap_or_else(|| raw.to_owned());
        request = request.header("content-type", content_type).body(body);
    } else if let Some(hex) = case["raw_hex"].as_str() {
        request = request
            .header("content-type", content_type)
            .body(hex::decode(hex).unwrap());
    }
    let response = request.send().await.unwrap_or_else(|e| {
        panic!("{}: no answer at all ({e})", case["name"]);
    });
    read(response).await
}

async fn every_request_of_the_abuse_corpus_is_refused_cleanly_while_honest_events_are_kept(
    db: TestDb,
) {
    db.seed(2_000).await;
    let attacker = db.key("org_acme", Role::Admin).await;
    let honest = db.key("org_globex", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, crate::common::recording(65_536)).await;
    let corpus: Vec<Value> = serde_json::from_str(include_str!("../abuse/corpus.json")).unwrap();
    // An honest tenant ingests the whole time.
    let client = {
        let (client, url) = (app.client.clone(), app.url("/v1/orgs/org_globex/activity"));
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for batch in 0..20 {
                let events: Vec<Value> = (0..50)
                    .map(|i| json!({ "id": format!("act_honest_{batch}_{i}"), "action": "honest" }))
                    .collect();
                let (status, body) = read(
                    client
                        .post(&url)
                        .header("X-Api-Key", &honest)
                        .json(&events)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                if status == 200 {
                    acknowledged
                        .extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
                } else {
                    assert_eq!(status, 429, "{body}");
                }
            }
            acknowledged
        })
    };
    let mut unclean = Vec::new();
    for case in &corpus {
        let (status, body) = send(&app, &attacker, case).await;
        if !refused_cleanly(case["path"].as_str().unwrap(), status, &body) {
            unclean.push(format!(
                "{}: {status} {}",
                case["name"],
                body.to_string().chars().take(300).collect::<String>()
            ));
        }
    }
    assert!(
        unclean.is_empty(),
        "not refused cleanly:\n{}",
        unclean.join("\n")
    );
    let acknowledged = client.await.unwrap();
    assert_eq!(
        acknowledged.len(),
        1_000,
        "the honest client was never refused"
    );
    assert_eq!(
        db.count_events("org_id = 'org_globex' AND action = 'honest'")
            .await,
        1_000,
        "every acknowledged event is stored once"
    );
    // The server still answers everyone.
    let (status, _) = app
        .get("/v1/orgs/org_acme/activity?limit=1", &attacker)
        .await;
    assert_eq!(status, 200);
}

async fn nul_answers_422_at_its_location(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let cases = [
        (
            json!({ "method": "GET", "path": "/v1/orgs/org_acme/workspaces/ws%00/activity" }),
            json!(["path"]),
        ),
        (
            json!({ "method": "GET", "path": "/v1/orgs/org_acme/activity?start_time=%00" }),
            json!(["query", "start_time"]),
        ),
        (
            json!({ "method": "POST", "path": "/v1/orgs/org_acme/activity", "json": [{ "action": "ok" }, { "action": "a\u{0}" }] }),
            json!(["body", 1, "action"]),
        ),
        (
            json!({ "method": "POST", "path": "/api/v5/artifacts/activity/problem", "json": { "type": "t", "message": "m\u{0}" } }),
            json!(["body", "message"]),
        ),
        (
            json!({ "method": "POST", "path": "/graphql", "json": { "query": "query($a: [String!]) { org(id: \"org_acme\") { activity(filter: { actions: $a }) { totalCount } } }", "variables": { "a": ["x", "y\u{0}"] } } }),
            json!(["body", "variables", "a", 1]),
        ),
        (
            json!({ "method": "POST", "path": "/graphql", "json": { "query": "{ org(id: \"org_acme\\u0000\") { id } }" } }),
            json!(["body", "query"]),
        ),
    ];
    for (case, loc) in cases {
        let (status, body) = send(&app, &key, &case).await;
        assert_eq!(status, 422, "{case}: {body}");
        assert_eq!(body["detail"][0]["loc"], loc, "{case}: {body}");
        assert_eq!(body["detail"][0]["type"], "string_unstorable", "{body}");
    }
    assert_eq!(
        db.count_events("action = 'ok'").await,
        0,
        "a refused batch stores nothing"
    );
}

async fn poison(db: &TestDb) {
    // A database that refuses one row: what a row no backend can store looks like.
    let statements: &[&str] = match db.backend {
        crate::common::Backend::Sqlite => &["CREATE TRIGGER poison BEFORE INSERT ON activity_events WHEN NEW.action = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"],
        crate::common::Backend::Postgres => &[
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.action = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER poison BEFORE INSERT ON activity_events FOR EACH ROW EXECUTE FUNCTION poison()",
        ],
    };
    for sql in statements {
        db.db.execute_unprepared(sql).await.unwrap();
    }
}

fn row(org: &str, action: &str, path: &str) -> activity_gateway::service::events::EventRow {
    activity_gateway::service::events::EventRow {
        id: activity_gateway::domain::ids::new_id(activity_gateway::domain::ids::IdKind::Activity),
        org_id: org.into(),
        ts: activity_gateway::domain::time::now_micros(),
        trace_id: None,
        user_id: None,
        workspace_id: None,
        app_id: None,
        endpoint_id: None,
        augmentation_id: None,
        principal_type: None,
        principal_id: None,
        token_id: None,
        token_type: None,
        method: Some("GET".into()),
        path: Some(path.into()),
        resource_type: None,
        resource_id: None,
        action: action.into(),
        status_code: 200,
        success: true,
        error_code: None,
        duration_ms: 1,
        execution_id: None,
        stages_completed: None,
        total_stages: None,
        token_usage: "{}".into(),
        tokens_total: 0,
        metadata: "{}".into(),
    }
}

async fn one_unstorable_recorded_event_costs_no_other_event(db: TestDb) {
    db.seed(10).await;
    poison(&db).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn_with(&db.db, crate::common::recording(1_000)).await;
    // One batch: honest events of two orgs around a row the database refuses,
    // and one whose path holds a NUL (PostgreSQL cannot store it as is).
    app.recorder.record(row("org_acme", "read", "/a"));
    app.recorder.record(row("org_globex", "read", "/b"));
    app.recorder.record(row("org_acme", "poison", "/c"));
    app.recorder.record(row("org_globex", "read", "/d\u{0}e"));
    app.recorder.record(row("org_acme", "read", "/f"));
    let mut stored = 0;
    for _ in 0..100 {
        stored = db
            .count_events("action = 'read' AND path IN ('/a', '/b', '/d\u{FFFD}e', '/f')")
            .await;
        if stored == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored, 4, "every storable event was stored");
    assert_eq!(db.count_events("action = 'poison'").await, 0);
    assert_eq!(
        app.metric(&key, "activity_gateway_recorder_lost_total")
            .await,
        1
    );
    assert_eq!(
        app.metric(&key, "activity_gateway_recorder_dropped_total")
            .await,
        0
    );
}

async fn ingest(app: &TestApp, key: &str, events: Value) -> (u16, Value) {
    app.post_json(key, "/v1/orgs/org_acme/activity", &events)
        .await
}

async fn numbers_are_bounded_at_and_past_their_maxima_and_summaries_hold_at_them(db: TestDb) {
    use activity_gateway::service::ingest::{MAX_DURATION_MS, MAX_TOKENS};
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let past = [
        (
            json!({ "action": "x", "duration_ms": MAX_DURATION_MS + 1 }),
            json!([0, "duration_ms"]),
            "less_than_equal",
        ),
        (
            json!({ "action": "x", "token_usage": { "p": MAX_TOKENS + 1 } }),
            json!([0, "token_usage", "p"]),
            "less_than_equal",
        ),
        (
            json!({ "action": "x", "token_usage": { "p": MAX_TOKENS, "q": 1 } }),
            json!([0, "token_usage"]),
            "less_than_equal",
        ),
        (
            json!({ "action": "x", "duration_ms": -1 }),
            json!([0, "duration_ms"]),
            "greater_than_equal",
        ),
    ];
    for (event, loc, kind) in past {
        let (status, body) = ingest(&app, &key, json!([event])).await;
        assert_eq!(status, 422, "{event}: {body}");
        let mut expected = vec![json!("body")];
        expected.extend(loc.as_array().unwrap().iter().cloned());
        assert_eq!(body["detail"][0]["loc"], Value::Array(expected), "{body}");
        assert_eq!(body["detail"][0]["type"], kind, "{body}");
    }
    // At the maxima: accepted, and every aggregate stays exact.
    let at_max: Vec<Value> = (0..3)
        .map(|_| json!({ "action": "max", "duration_ms": MAX_DURATION_MS, "token_usage": { "p": MAX_TOKENS / 2, "q": MAX_TOKENS / 2 } }))
        .collect();
    let (status, body) = ingest(&app, &key, json!(at_max)).await;
    assert_eq!(status, 200, "{body}");
    let before = app
        .get("/v1/orgs/org_acme/activity/summary?hours=1", &key)
        .await;
    assert_eq!(before.0, 200, "{}", before.1);
    assert!(before.1["total_tokens_used"].as_i64().unwrap() >= 3 * MAX_TOKENS);
    assert!(before.1["avg_duration_ms"].as_f64().unwrap() > 0.0);
    app.post_artifact(&key, "refresh", json!({})).await;
    let (status, after) = app
        .get("/v1/orgs/org_acme/activity/summary?hours=168", &key)
        .await;
    assert_eq!(status, 200, "{after}");
    let (_, feed) = app.get("/v1/orgs/org_acme/activity?limit=1", &key).await;
    assert!(feed["total"].as_i64().unwrap() > 0);
    let (_, gql) = app
        .graphql(&key, r#"{ org(id: "org_acme") { activitySummary(hours: 168) { totalTokensUsed avgDurationMs buckets(interval: HOUR) { totalRequests } } activity(first: 1) { totalCount } } }"#)
        .await;
    assert!(gql["errors"].is_null(), "{gql}");
    assert_eq!(
        gql["data"]["org"]["activitySummary"]["totalTokensUsed"],
        after["total_tokens_used"]
    );
}

/// A JSON array of `events` realistic events, padded with spaces to `bytes`
/// when given.
fn realistic_batch(events: usize) -> String {
    let events: Vec<Value> = (0..events)
        .map(|i| {
            json!({
                "action": "execute", "method": "POST",
                "path": format!("/v1/workspaces/ws_acme_production/apps/app_acme_production_search/endpoints/ep_acme_production_search_get/run/{i}"),
                "resource_type": "endpoint", "resource_id": "ep_acme_production_search_get",
                "workspace_id": "ws_acme_production", "endpoint_id": "ep_acme_production_search_get",
                "status_code": 200, "duration_ms": 120, "trace_id": format!("{i:032x}"),
                "token_usage": { "prompt_tokens": 1200, "completion_tokens": 300 },
                "metadata": { "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", "ip": "203.0.113.7", "region": "eu-west-1", "request_id": format!("req-{i:016x}") }
            })
        })
        .collect();
    Value::Array(events).to_string()
}

fn padded(body: &str, bytes: usize) -> String {
    let mut padded = body.to_owned();
    padded.push_str(&" ".repeat(bytes - body.len()));
    padded
}

async fn post_raw(app: &TestApp, key: &str, body: String) -> (u16, Value) {
    read(
        app.client
            .post(app.url("/v1/orgs/org_acme/activity"))
            .header("X-Api-Key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The answer to a request that declares a body of `length` bytes, read
/// before any of the body is sent: a body over the limit is refused on its
/// `Content-Length` alone, never read.
async fn declared_past(app: &TestApp, key: &str, length: usize) -> (u16, Value) {
    let head = format!(
        "POST /v1/orgs/org_acme/activity HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    );
    exchange(app.addr, head.as_bytes()).await
}

/// Sends `bytes` as they are and reads the whole answer (the server closes
/// the connection): its status and JSON body (null when not JSON).
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn the_configured_body_limit_is_the_one_that_applies(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    // The default, 32 MiB: a realistic batch of 10,000 events (about 6 MiB) is taken.
    let app = TestApp::spawn(&db.db).await;
    let batch = realistic_batch(10_000);
    assert!(batch.len() > 5 * 1024 * 1024, "{}", batch.len());
    let (status, body) = post_raw(&app, &key, batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 10_000);
    let limit = HttpArgs::default().max_body_bytes;
    let (status, _) = post_raw(&app, &key, padded("[]", limit)).await;
    assert_eq!(status, 200, "at the edge");
    let (status, body) = declared_past(&app, &key, limit + 1).await;
    assert_eq!(status, 413, "past the edge");
    assert_eq!(body["error"], "PAYLOAD_TOO_LARGE");
    app.stop().await;
    // A changed setting moves the edge both ways.
    for limit in [4 * 1024 * 1024, 40 * 1024 * 1024] {
        let app = TestApp::spawn_with(
            &db.db,
            HttpArgs {
                max_body_bytes: limit,
                ..crate::common::test_settings()
            },
        )
        .await;
        let (status, _) = post_raw(&app, &key, padded("[]", limit)).await;
        assert_eq!(status, 200, "{limit}: at the edge");
        let (status, _) = declared_past(&app, &key, limit + 1).await;
        assert_eq!(status, 413, "{limit}: past the edge");
        app.stop().await;
    }
}

async fn post_graphql(app: &TestApp, key: &str, body: String) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("X-Api-Key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let (status, body) = read(response).await;
    (status, body, took)
}

async fn graphql_batches_hold_ten_operations_and_share_one_budget(db: TestDb) {
    db.seed(500).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // Ten operations: answered, each.
    let (status, body, _) = post_graphql(&app, &key, batch(10).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(10));
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|r| r["errors"].is_null()),
        "{body}"
    );
    // Eleven: refused whole, saying why.
    let (status, body, _) = post_graphql(&app, &key, batch(11).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 10"),
        "{body}"
    );
    // Operations that pass alone but not together: the budget is shared.
    let heavy = json!({ "query": r#"{ org(id: "org_acme") { activity(first: 200) { nodes { id action path user { email } workspace { name } } } } }"# });
    let (_, alone, _) = post_graphql(&app, &key, heavy.to_string()).await;
    assert!(alone["errors"].is_null(), "{alone}");
    let (_, together, _) =
        post_graphql(&app, &key, Value::Array(vec![heavy; 10]).to_string()).await;
    let refused = together
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("shared complexity budget"))
        })
        .count();
    assert!(refused >= 1, "{together}");
    // Abuse is refused whole, before any work (how fast: tests/refusal_speed.rs).
    for body in [
        json!({ "query": fan_out(40) }).to_string(),
        batch(1_000).to_string(),
    ] {
        let (status, answer, _) = post_graphql(&app, &key, body).await;
        assert!(status == 400 || answer["errors"].is_array(), "{answer}");
        assert!(answer["data"].is_null(), "{answer}");
    }
    // GraphQL's Int range: tests/graphql_limits.rs.
    // Child connections check their cursors like every other.
    for query in [
        r#"{ org(id: "org_acme") { workspaces(after: "garbage") { nodes { id } } } }"#,
        r#"{ org(id: "org_acme") { workspaces(first: 1) { nodes { apps(after: "garbage") { nodes { id } } } } } }"#,
    ] {
        let (_, body) = app.graphql(&key, query).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
    let (_, page) = app.graphql(&key, r#"{ org(id: "org_acme") { workspaces(first: 1) { pageInfo { endCursor } nodes { id } } } }"#).await;
    let cursor = page["data"]["org"]["workspaces"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, next) = app
        .graphql(&key, &format!(r#"{{ org(id: "org_acme") {{ workspaces(first: 1, after: "{cursor}") {{ nodes {{ id }} }} }} }}"#))
        .await;
    assert!(next["errors"].is_null(), "{next}");
    assert_ne!(
        next["data"]["org"]["workspaces"]["nodes"],
        page["data"]["org"]["workspaces"]["nodes"]
    );
}

async fn cancelled_requests_leave_no_connection_inside_a_transaction(db: TestDb) {
    db.seed(20_000).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // Clients that give up mid-request, over and over, on the routes that
    // run transactions: summaries, totals, ingest.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(3))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let (client, key) = (impatient.clone(), key.clone());
        let urls = [
            app.url("/v1/orgs/org_acme/activity/summary?hours=168"),
            app.url("/v1/orgs/org_acme/workspaces/ws_acme_production/activity?limit=50"),
            app.url("/v1/orgs/org_acme/activity"),
        ];
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let url = &urls[(i + round) % 3];
                let request = if url.ends_with("/activity") {
                    client.post(url).json(&json!([{ "action": "impatient" }]))
                } else {
                    client.get(url)
                };
                let _ = request.header("X-Api-Key", &key).send().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Then every request succeeds, on every pooled connection.
    let patient = reqwest::Client::new();
    for _ in 0..60 {
        for path in [
            "/v1/orgs/org_acme/activity/summary?hours=168",
            "/v1/orgs/org_acme/workspaces/ws_acme_production/activity?limit=50",
        ] {
            let (status, body) = read(
                patient
                    .get(app.url(path))
                    .header("X-Api-Key", &key)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{path}: {body}");
        }
        let (status, body) = ingest(&app, &key, json!([{ "action": "patient" }])).await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn empty_query_values_answer_422_at_their_location(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    for (path, name) in [
        ("/v1/orgs/org_acme/activity?limit=", "limit"),
        ("/v1/orgs/org_acme/activity/summary?hours=", "hours"),
        ("/v1/orgs/org_acme/activity?start_time=", "start_time"),
        ("/v1/orgs/org_acme/activity?end_time=", "end_time"),
        ("/v1/orgs/org_acme/activity?cursor=", "cursor"),
        (
            "/v1/orgs/org_acme/workspaces/ws_acme_production/activity/search?status=",
            "status",
        ),
        (
            "/v1/orgs/org_acme/workspaces/ws_acme_production/activity/search?min_duration_ms=",
            "min_duration_ms",
        ),
    ] {
        let (status, body) = app.get(path, &key).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", name]), "{body}");
        assert_eq!(body["detail"][0]["input"], "", "{body}");
    }
    // An empty text filter is no filter.
    let (status, _) = app
        .get(
            "/v1/orgs/org_acme/workspaces/ws_acme_production/activity/search?action=",
            &key,
        )
        .await;
    assert_eq!(status, 200);
}

async fn exported_cells_that_look_like_formulas_are_neutralised(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(
        &db.db,
        HttpArgs {
            export_dir: dir.path().to_owned(),
            ..crate::common::test_settings()
        },
    )
    .await;
    let formulas = [
        "=HYPERLINK(\"http://evil\",\"x\")",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tcmd",
        "\rcmd",
    ];
    let events: Vec<Value> = formulas
        .iter()
        .map(|f| json!({ "action": "ok", "path": f }))
        .collect();
    let (status, body) = ingest(&app, &key, json!(events)).await;
    assert_eq!(status, 200, "{body}");
    let (_, export) = app.post_artifact(&key, "export", json!({})).await;
    let id = export["upload_id"].as_str().unwrap();
    let response = app.finished_export(&key, id).await;
    let bytes = response.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut events_csv = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("events.csv").unwrap(), &mut events_csv)
        .unwrap();
    let mut reader = csv::Reader::from_reader(events_csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let path_at = headers.iter().position(|h| h == "path").unwrap();
    let paths: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[path_at].to_owned())
        .collect();
    for formula in formulas {
        assert!(
            paths.contains(&format!("'{formula}")),
            "{formula} in {paths:?}"
        );
        assert!(!paths.contains(&formula.to_owned()), "{formula} left as is");
    }
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("manifest.json").unwrap(), &mut manifest)
        .unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert!(
        manifest["formula_cells"]
            .as_str()
            .unwrap()
            .contains("OWASP"),
        "{manifest}"
    );
}

async fn a_credential_past_its_requests_in_flight_gets_429(db: TestDb) {
    db.seed(20_000).await;
    let busy = db.key("org_acme", Role::Admin).await;
    let other = db.key("org_acme", Role::Viewer).await;
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            &db.db,
            HttpArgs {
                max_in_flight_per_credential: 2,
                ..crate::common::test_settings()
            },
        )
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (app, busy) = (app.clone(), busy.clone());
        tasks.push(tokio::spawn(async move {
            let response = app
                .client
                .get(app.url("/v1/orgs/org_acme/workspaces/ws_acme_production/activity/search?min_duration_ms=1&limit=200"))
                .header("X-Api-Key", &busy)
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let (status, body) = read(response).await;
            (status, body, retry_after)
        }));
    }
    let mut limited = 0;
    for task in tasks {
        let (status, body, retry_after) = task.await.unwrap();
        match status {
            200 => {}
            429 => {
                limited += 1;
                assert_eq!(body["error"], "TOO_MANY_REQUESTS", "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        limited > 0,
        "40 requests at once, 2 places: some are refused"
    );
    // Another credential, and the same one once its requests are done, get in.
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &other).await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &busy).await;
    assert_eq!(status, 200);
}

async fn slow_headers_and_surplus_connections_are_cut_off(db: TestDb) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn_with(
        &db.db,
        HttpArgs {
            header_read_timeout_secs: 1,
            max_connections: 4,
            ..crate::common::test_settings()
        },
    )
    .await;
    // Headers that never end: the connection is closed after the timeout.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the slow connection was never closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Four idle connections fill the cap; a fifth is closed at once.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut surplus = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let _ = surplus
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(2), surplus.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok() && !String::from_utf8_lossy(&answer).contains("200"),
        "{answer:?}"
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &key).await;
    assert_eq!(status, 200, "places come back as connections close");
}

async fn an_internal_error_names_an_error_id_and_nothing_internal(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // A table gone from under the gateway: a real fault, not a client's.
    db.db
        .execute_unprepared("DROP TABLE problems")
        .await
        .unwrap();
    let (status, body) = app
        .post_artifact(&key, "problem", json!({ "type": "t", "message": "m" }))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "INTERNAL_SERVER_ERROR");
    assert_eq!(body["message"], "An unexpected error occurred");
    let id = body["details"]["error_id"].as_str().unwrap();
    assert_eq!(id.len(), 16, "{body}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let text = body.to_string().to_lowercase();
    for internal in ["problems", "sql", "table", "relation", "src/"] {
        assert!(!text.contains(internal), "{internal} leaked: {body}");
    }
}

async fn long_uris_and_large_headers_answer_in_the_envelope_at_and_past_their_edges(db: TestDb) {
    use activity_gateway::app::{MAX_HEADER_BYTES, MAX_URI_BYTES};
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let uri_of = |bytes: usize| {
        let start = "/v1/orgs/org_acme/activity?limit=1&pad=";
        format!("{start}{}", "x".repeat(bytes - start.len()))
    };
    let (status, _) = app.get(&uri_of(MAX_URI_BYTES), &key).await;
    assert_eq!(status, 200, "at the edge");
    let (status, body) = app.get(&uri_of(MAX_URI_BYTES + 1), &key).await;
    assert_eq!(
        (status, &body["error"]),
        (414, &json!("URI_TOO_LONG")),
        "{body}"
    );
    // Headers, sent by hand so that every header byte is known: names and
    // values count, the key's own included.
    let with_padding = |bytes: usize| {
        let (addr, key) = (app.addr, key.clone());
        async move {
            let fixed = "host".len()
                + 1
                + "x-api-key".len()
                + key.len()
                + "x-padding".len()
                + "connection".len()
                + "close".len();
            let head = format!(
                "GET /v1/orgs/org_acme/activity?limit=1 HTTP/1.1\r\nhost: h\r\nx-api-key: {key}\r\nx-padding: {}\r\nconnection: close\r\n\r\n",
                "p".repeat(bytes - fixed)
            );
            exchange(addr, head.as_bytes()).await
        }
    };
    let (status, body) = with_padding(MAX_HEADER_BYTES).await;
    assert_eq!(status, 200, "at the edge: {body}");
    let (status, body) = with_padding(MAX_HEADER_BYTES + 1).await;
    assert_eq!(
        (status, &body["error"]),
        (431, &json!("HEADERS_TOO_LARGE")),
        "{body}"
    );
}

async fn a_session_search_page_is_bounded_at_and_past_its_edge(db: TestDb) {
    use activity_gateway::domain::paging::SessionPaging;
    const MAX_PAGE: i64 = SessionPaging::MAX_PAGE;
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, body) = app
        .post_artifact(
            &key,
            "search",
            json!({ "page": MAX_PAGE, "page_size": 200 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([]), "a page past the end is empty");
    for page in [MAX_PAGE + 1, i64::MAX] {
        let (status, body) = app
            .post_artifact(&key, "search", json!({ "page": page, "page_size": 200 }))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "page"]));
        assert_eq!(body["detail"][0]["type"], "less_than_equal");
    }
    let (_, body) = app
        .graphql(
            &key,
            &format!(
                r#"{{ org(id: "org_acme") {{ sessions(page: {}) {{ totalCount }} }} }}"#,
                MAX_PAGE + 1
            ),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

/// An event as a store from before the maxima might hold it: id, time,
/// duration and tokens bound.
const LEGACY_EVENT: &str = "INSERT INTO activity_events (id, org_id, ts, action, status_code, success, duration_ms, token_usage, tokens_total, metadata) VALUES (?, 'org_acme', ?, 'legacy', 200, true, ?, '{}', ?, '{}')";

async fn summaries_hold_over_rows_stored_before_the_maxima(db: TestDb) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    // Rows an older gateway accepted, written straight to the table: sums of
    // them overflow 64 bits.
    let now = activity_gateway::domain::time::now_micros();
    for (i, (duration, tokens)) in [
        (4_611_686_018_427_387_904_i64, 0_i64),
        (4_611_686_018_427_387_904, 0),
        (1, i64::MAX),
        (1, i64::MAX),
    ]
    .into_iter()
    .enumerate()
    {
        db.run(
            LEGACY_EVENT,
            vec![
                format!("act_legacy_{i}").into(),
                (now - 1_000 - i as i64).into(),
                duration.into(),
                tokens.into(),
            ],
        )
        .await;
    }
    // Read from the raw rows, then again once a refresh folded them into the
    // rollups, twice (the second fold adds to the first).
    for (round, path) in [
        "/v1/orgs/org_acme/activity/summary?hours=1",
        "/v1/orgs/org_acme/activity/summary?hours=168",
        "/v1/orgs/org_acme/activity?limit=5",
    ]
    .repeat(3)
    .into_iter()
    .enumerate()
    {
        if round % 3 == 0 && round > 0 {
            activity_gateway::service::rollups::refresh(&db.db)
                .await
                .expect("a refresh over rows past the maxima");
            db.run(
                LEGACY_EVENT,
                vec![
                    format!("act_legacy_r{round}").into(),
                    (now - 2_000).into(),
                    i64::MAX.into(),
                    i64::MAX.into(),
                ],
            )
            .await;
        }
        let (status, body) = app.get(path, &key).await;
        assert_eq!(status, 200, "{path}: {body}");
        if let Some(avg) = body["avg_duration_ms"].as_f64() {
            assert!(avg > 0.0, "{body}");
            assert_eq!(
                body["total_tokens_used"],
                i64::MAX,
                "saturated, not wrapped: {body}"
            );
        }
    }
    let (_, gql) = app
        .graphql(&key, r#"{ org(id: "org_acme") { activitySummary(hours: 2) { totalTokensUsed avgDurationMs buckets(interval: HOUR) { totalRequests } } activity(first: 1) { totalCount } } }"#)
        .await;
    assert!(gql["errors"].is_null(), "{gql}");
    assert!(
        gql["data"]["org"]["activitySummary"]["avgDurationMs"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

/// What hyper refuses before the router sees it (a broken request line or
/// header, a head past hyper's own read buffer) answers in the envelope too,
/// and the server goes on serving.
async fn requests_that_are_not_http_answer_in_the_envelope(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let huge_header = format!(
        "GET /v1/orgs/org_acme/activity HTTP/1.1\r\nhost: h\r\nx-padding: {}\r\n\r\n",
        "p".repeat(600 * 1024)
    );
    for (bytes, status, code) in [
        (&b"GARBAGE\r\n\r\n"[..], 400, "BAD_REQUEST"),
        (
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            400,
            "BAD_REQUEST",
        ),
        (b"GET /\x01 HTTP/1.1\r\nhost: h\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET / HTTP/7.0\r\nhost: h\r\n\r\n", 400, "BAD_REQUEST"),
        (huge_header.as_bytes(), 431, "HEADERS_TOO_LARGE"),
    ] {
        let (answered, body) = exchange(app.addr, bytes).await;
        assert_eq!(answered, status, "{body}");
        assert_eq!(body["error"], code, "{body}");
        assert_eq!(body["status_code"], status, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &key).await;
    assert_eq!(status, 200, "still serving");
}

/// Texts made of the syntax of SQL or of PostgreSQL's array text (quotes,
/// backslashes, braces, commas, the word NULL, blanks) and the extremes of
/// each number come back from a batch as written, on both backends, and
/// absent values absent.
async fn texts_that_look_like_array_or_sql_syntax_are_stored_as_written(db: TestDb) {
    use activity_gateway::service::events::{insert_batch, EventRow};
    let texts = [
        "",
        " ",
        "NULL",
        "null",
        "\"",
        "\\",
        "\\\"",
        "{}",
        "{\"a\",NULL}",
        "a,b",
        " padded ",
        "line\nbreak\ttab",
        "');DROP TABLE activity_events;--",
        "ünïcødé ✓ 𝄞",
        "$1::text[]",
    ];
    let mut rows: Vec<EventRow> = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        let mut r = row("org_acme", text, text);
        r.trace_id = Some(text.to_string());
        r.resource_type = if n % 2 == 0 {
            None
        } else {
            Some(text.to_string())
        };
        r.error_code = Some("NULL".into()).filter(|_| n % 3 == 0);
        r.status_code = if n % 2 == 0 { i32::MAX } else { i32::MIN };
        r.duration_ms = if n % 2 == 0 { i64::MAX } else { i64::MIN };
        r.stages_completed = Some(n as i32).filter(|_| n % 2 == 1);
        r.success = n % 2 == 0;
        r.metadata = format!("{{\"text\":{}}}", serde_json::to_string(text).unwrap());
        rows.push(r);
    }
    insert_batch(&db.db, rows.clone(), false).await.unwrap();
    for written in rows {
        let stored = db
            .rows(
                "SELECT action, path, trace_id, resource_type, error_code, status_code, \
                 duration_ms, stages_completed, success, metadata, user_id \
                 FROM activity_events WHERE org_id = ? AND id = ?",
                vec!["org_acme".into(), written.id.as_str().into()],
            )
            .await;
        let r = &stored[0];
        let text = |at: usize| r.try_get_by_index::<Option<String>>(at).unwrap();
        assert_eq!(text(0).as_deref(), Some(written.action.as_str()));
        assert_eq!(text(1), written.path);
        assert_eq!(text(2), written.trace_id);
        assert_eq!(text(3), written.resource_type);
        assert_eq!(text(4), written.error_code);
        assert_eq!(r.try_get_by_index::<i32>(5).unwrap(), written.status_code);
        assert_eq!(r.try_get_by_index::<i64>(6).unwrap(), written.duration_ms);
        assert_eq!(
            r.try_get_by_index::<Option<i32>>(7).unwrap(),
            written.stages_completed
        );
        assert_eq!(r.try_get_by_index::<bool>(8).unwrap(), written.success);
        assert_eq!(text(9).as_deref(), Some(written.metadata.as_str()));
        assert_eq!(text(10), None);
    }
}
