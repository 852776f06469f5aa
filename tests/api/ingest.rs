//! Batch ingest: idempotent, all-or-nothing, tenant-safe, and
//! summaries stay exact.

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::feed::{ActivityFilter, Scope};
use activity_gateway::domain::permission::Role;
use activity_gateway::domain::time::{format_micros, now_micros, MICROS_PER_HOUR};
use activity_gateway::service::events::{insert_batch, EventRow};
use activity_gateway::service::{rollups, summary};
use sea_orm::TransactionTrait;
use serde_json::{json, Value};

on_both_backends!(
    a_resent_batch_stores_nothing_twice,
    a_batch_with_bad_items_stores_nothing_and_reports_every_one,
    ids_of_another_org_are_refused_like_unknown_ids,
    the_batch_limit_holds_at_and_past_its_edge,
    ingested_events_complete_their_hierarchy_and_keep_summaries_exact,
    the_mutation_ingests_like_the_route_and_both_need_activity_write,
    every_field_bound_holds_at_and_past_its_edge,
    every_column_is_stored_as_given_set_or_null_in_batches_of_any_size,
);

async fn post(app: &TestApp, key: &str, org: &str, body: &Value) -> (u16, Value) {
    read(
        app.client
            .post(app.url(&format!("/v1/orgs/{org}/activity")))
            .header("X-Api-Key", key)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn event(n: usize) -> Value {
    json!({
        "id": format!("act_ingest{n:022}"),
        "timestamp": format_micros(now_micros() - (n as i64) * 60_000_000),
        "workspace_id": "ws_acme_staging",
        "user_id": "usr_acme_03",
        "action": "execute",
        "resource_type": "endpoint",
        "status_code": if n.is_multiple_of(5) { 502 } else { 200 },
        "duration_ms": 100 + n,
        "token_usage": { "prompt_tokens": 10, "completion_tokens": n },
        "metadata": { "source": "test", "n": n }
    })
}

async fn a_resent_batch_stores_nothing_twice(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let before = db.count_events("org_id = 'org_acme'").await;
    let batch = Value::Array((0..50).map(event).collect());
    let (status, first) = post(&app, &key, "org_acme", &batch).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (
            first["received"].as_u64(),
            first["stored"].as_u64(),
            first["duplicates"].as_u64()
        ),
        (Some(50), Some(50), Some(0))
    );
    let (_, again) = post(&app, &key, "org_acme", &batch).await;
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(50))
    );
    assert_eq!(again["ids"], first["ids"]);
    assert_eq!(db.count_events("org_id = 'org_acme'").await, before + 50);
    // Events without ids get new ones, each stored once.
    let anonymous = json!([{ "action": "read" }, { "action": "read" }]);
    let (_, body) = post(&app, &key, "org_acme", &anonymous).await;
    let ids = body["ids"].as_array().unwrap();
    assert_eq!(body["stored"], 2);
    assert!(ids.iter().all(|i| i.as_str().unwrap().starts_with("act_")) && ids[0] != ids[1]);
    // The stored event answers exactly what was sent.
    let (_, page) = app
        .get(
            "/v1/orgs/org_acme/users/usr_acme_03/activity?limit=200",
            &key,
        )
        .await;
    let stored = page["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "act_ingest0000000000000000000007")
        .unwrap()
        .clone();
    assert_eq!(
        stored["token_usage"],
        json!({ "completion_tokens": 7, "prompt_tokens": 10 })
    );
    assert_eq!(stored["metadata"], json!({ "source": "test", "n": 7 }));
    assert_eq!(
        (stored["success"].as_bool(), stored["duration_ms"].as_i64()),
        (Some(true), Some(107))
    );
}

async fn a_batch_with_bad_items_stores_nothing_and_reports_every_one(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let before = db.count_events("org_id = 'org_acme'").await;
    let mut items: Vec<Value> = (0..10).map(event).collect();
    items[2]["status_code"] = json!(700);
    items[4].as_object_mut().unwrap().remove("action");
    items[6]["duration_ms"] = json!("slow");
    items[7]["timestamp"] = json!("yesterday");
    items[8]["id"] = items[1]["id"].clone();
    items[9]["token_usage"] = json!({ "prompt_tokens": -3 });
    let (status, body) = post(&app, &key, "org_acme", &Value::Array(items.clone())).await;
    assert_eq!(status, 422, "{body}");
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    // A type error is reported alone: the items are parsed before anything else.
    assert_eq!(locs, [json!(["body", 6, "duration_ms"])]);
    items[6]["duration_ms"] = json!(5);
    let (status, body) = post(&app, &key, "org_acme", &Value::Array(items)).await;
    assert_eq!(status, 422);
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["body", 2, "status_code"]),
            json!(["body", 4, "action"]),
            json!(["body", 7, "timestamp"]),
            json!(["body", 8, "id"]),
            json!(["body", 9, "token_usage", "prompt_tokens"]),
        ]
    );
    assert_eq!(
        db.count_events("org_id = 'org_acme'").await,
        before,
        "nothing of a bad batch is stored"
    );
    // Not an array, not JSON, unknown fields.
    for (body, loc) in [
        (json!({ "action": "read" }), json!(["body"])),
        (
            json!([{ "action": "read", "colour": "red" }]),
            json!(["body", 0, "colour"]),
        ),
    ] {
        let (status, answer) = post(&app, &key, "org_acme", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["detail"][0]["loc"], loc);
    }
}

async fn ids_of_another_org_are_refused_like_unknown_ids(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let before = db.count_events("org_id = 'org_globex'").await;
    let cases = [
        ("workspace_id", "ws_globex_production", "ws_nope"),
        ("app_id", "app_globex_production_billing", "app_nope"),
        ("endpoint_id", "ep_globex_production_billing_get", "ep_nope"),
        (
            "augmentation_id",
            "aug_globex_production_enrich",
            "aug_nope",
        ),
        ("user_id", "usr_globex_01", "usr_nope"),
    ];
    for (field, theirs, unknown) in cases {
        let answer = |id: &str| json!([{ "action": "read", field: id }]);
        let (s1, a) = post(&app, &key, "org_acme", &answer(theirs)).await;
        let (s2, b) = post(&app, &key, "org_acme", &answer(unknown)).await;
        assert_eq!((s1, s2), (422, 422), "{field}");
        assert_eq!(a["detail"][0]["loc"], json!(["body", 0, field]));
        assert_eq!(
            a["detail"][0]["msg"], b["detail"][0]["msg"],
            "another org's id reads like an unknown one"
        );
    }
    // An endpoint of another app of the same org is refused too.
    let (status, body) = post(&app, &key, "org_acme", &json!([{ "action": "read", "app_id": "app_acme_staging_search", "endpoint_id": "ep_acme_staging_billing_get" }])).await;
    assert_eq!(
        (status, body["detail"][0]["loc"].clone()),
        (422, json!(["body", 0, "app_id"]))
    );
    // The org is always the credential's: posting to another org's path is a 404.
    let (status, body) = post(&app, &key, "org_globex", &json!([{ "action": "read" }])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("RESOURCE_NOT_FOUND"))
    );
    assert_eq!(db.count_events("org_id = 'org_globex'").await, before);
}

async fn the_batch_limit_holds_at_and_past_its_edge(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let before = db.count_events("org_id = 'org_acme'").await;
    let at_limit = Value::Array(
        (0..10_000)
            .map(|n| json!({ "action": "read", "id": format!("act_limit{n:023}") }))
            .collect(),
    );
    let (status, body) = post(&app, &key, "org_acme", &at_limit).await;
    assert_eq!((status, body["stored"].as_u64()), (200, Some(10_000)));
    assert_eq!(
        db.count_events("org_id = 'org_acme'").await,
        before + 10_000
    );
    let past = Value::Array((0..10_001).map(|_| json!({ "action": "read" })).collect());
    let (status, body) = post(&app, &key, "org_acme", &past).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));
    assert_eq!(body["detail"][0]["type"], "too_long");
    assert_eq!(body["detail"][0]["ctx"], json!({ "max_length": 10_000 }));
    let (status, body) = post(&app, &key, "org_acme", &json!([])).await;
    assert_eq!(
        (status, body["stored"].as_u64()),
        (200, Some(0)),
        "an empty batch stores nothing"
    );
}

async fn ingested_events_complete_their_hierarchy_and_keep_summaries_exact(db: TestDb) {
    db.seed(2_000).await;
    rollups::refresh(&db.db).await.unwrap();
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (start, end) = (
        now_micros() - 48 * MICROS_PER_HOUR,
        now_micros() + MICROS_PER_HOUR,
    );
    let ws = Scope::Workspace("ws_acme_research".into());
    let before = summary::summarize(
        &db.db,
        "org_acme",
        &ws,
        &ActivityFilter::default(),
        start,
        end,
    )
    .await
    .unwrap();
    // Only the endpoint is named: app and workspace follow from it.
    let batch: Vec<Value> = (0..40)
        .map(|n| json!({ "action": "update", "endpoint_id": "ep_acme_research_billing_create", "duration_ms": 3, "timestamp": format_micros(now_micros() - n * 3_600_000_000 / 2), "token_usage": { "t": 2 } }))
        .collect();
    let (status, body) = post(&app, &key, "org_acme", &Value::Array(batch)).await;
    assert_eq!(status, 200, "{body}");
    let (_, page) = app.get("/v1/orgs/org_acme/workspaces/ws_acme_research/apps/app_acme_research_billing/activity?limit=200", &key).await;
    let ids: Vec<&Value> = body["ids"].as_array().unwrap().iter().collect();
    let listed: Vec<&Value> = page["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert!(
        ids.iter().all(|i| listed.contains(i)),
        "the app's feed shows events that named only the endpoint"
    );
    let after = summary::summarize(
        &db.db,
        "org_acme",
        &ws,
        &ActivityFilter::default(),
        start,
        end,
    )
    .await
    .unwrap();
    assert_eq!(
        after.totals.requests,
        before.totals.requests + 40,
        "exact before a refresh"
    );
    assert_eq!(after.totals.tokens, before.totals.tokens + 80);
    assert_eq!(
        after.by_action.get("update").copied().unwrap_or(0),
        before.by_action.get("update").copied().unwrap_or(0) + 40
    );
    rollups::refresh(&db.db).await.unwrap();
    assert_eq!(
        summary::summarize(
            &db.db,
            "org_acme",
            &ws,
            &ActivityFilter::default(),
            start,
            end
        )
        .await
        .unwrap(),
        after,
        "and after"
    );
}

async fn the_mutation_ingests_like_the_route_and_both_need_activity_write(db: TestDb) {
    db.seed(10).await;
    let admin = db.key("org_acme", Role::Admin).await;
    let member = db.key("org_acme", Role::Member).await;
    let app = TestApp::spawn(&db.db).await;
    let mutation = "mutation($events: [ActivityInput!]!) { ingestActivity(events: $events) { received stored duplicates ids } }";
    let events = json!([{ "id": "act_gql0000000000000000000000001", "action": "read", "workspaceId": "ws_acme_staging", "tokenUsage": { "t": 5 } }, { "action": "delete" }]);
    let (_, body) = app
        .graphql_with(mutation, json!({ "events": events }), |r| {
            r.header("X-Api-Key", &admin)
        })
        .await;
    assert_eq!(body["data"]["ingestActivity"]["stored"], 2, "{body}");
    let (_, body) = app
        .graphql_with(mutation, json!({ "events": events }), |r| {
            r.header("X-Api-Key", &admin)
        })
        .await;
    assert_eq!(
        body["data"]["ingestActivity"]["stored"], 1,
        "the event with an id is not stored twice"
    );
    let bad = json!([{ "action": "read", "workspaceId": "ws_globex_staging" }, { "action": "read", "statusCode": 42 }]);
    let (_, body) = app
        .graphql_with(mutation, json!({ "events": bad }), |r| {
            r.header("X-Api-Key", &admin)
        })
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let locs: Vec<Value> = body["errors"][0]["extensions"]["details"]["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["events", 0, "workspace_id"]),
            json!(["events", 1, "status_code"])
        ]
    );
    let (_, body) = app
        .graphql_with(mutation, json!({ "events": [{ "action": "read" }] }), |r| {
            r.header("X-Api-Key", &member)
        })
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["required_permission"],
        "activity:write"
    );
    let (status, body) = post(&app, &member, "org_acme", &json!([{ "action": "read" }])).await;
    assert_eq!(
        (status, body["details"]["required_permission"].as_str()),
        (403, Some("activity:write"))
    );
    // Mutations are refused over GET.
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            "mutation { ingestActivity(events: []) { stored } }",
        )])
        .header("X-Api-Key", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
}

async fn every_field_bound_holds_at_and_past_its_edge(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let day = 86_400_000_000;
    // (field, a value at the edge, a value just past it)
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "id",
            json!(format!("act_{}", "a".repeat(60))),
            json!(format!("act_{}", "a".repeat(61))),
        ),
        ("path", json!("/".repeat(2_048)), json!("/".repeat(2_049))),
        ("action", json!("x".repeat(64)), json!("x".repeat(65))),
        ("status_code", json!(100), json!(99)),
        ("status_code", json!(599), json!(600)),
        ("duration_ms", json!(0), json!(-1)),
        ("total_stages", json!(1_000), json!(1_001)),
        (
            "timestamp",
            json!("1970-01-01T00:00:00Z"),
            json!("1969-12-31T23:59:59Z"),
        ),
        (
            "timestamp",
            json!(format_micros(now_micros() + 360 * day)),
            json!(format_micros(now_micros() + 370 * day)),
        ),
    ];
    for (field, at_edge, past) in cases {
        let item = |value: &Value| {
            let mut e = json!({ "action": "read" });
            e[field] = value.clone();
            json!([e])
        };
        let (status, body) = post(&app, &key, "org_acme", &item(&at_edge)).await;
        assert_eq!(status, 200, "{field} at its edge: {body}");
        let (status, body) = post(&app, &key, "org_acme", &item(&past)).await;
        assert_eq!(status, 422, "{field} past its edge");
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", 0, field]),
            "{body}"
        );
    }
    // Stages completed may equal the total, not exceed it.
    let (status, _) = post(
        &app,
        &key,
        "org_acme",
        &json!([{ "action": "execute", "stages_completed": 3, "total_stages": 3 }]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &app,
        &key,
        "org_acme",
        &json!([{ "action": "execute", "stages_completed": 4, "total_stages": 3 }]),
    )
    .await;
    assert_eq!(
        (status, body["detail"][0]["loc"].clone()),
        (422, json!(["body", 0, "stages_completed"]))
    );
}

/// Texts a statement built by hand would mangle, and the empty text, which
/// must not read back as NULL.
const AWKWARD: [&str; 7] = [
    "",
    "a,b",
    "{\"x\": [1, 2]}",
    "it's \\ \"quoted\"",
    "NULL",
    "{}",
    "ünï ☃",
];

/// Every optional column set (texts from [`AWKWARD`]) on even `n`, none on odd.
fn stored_row(n: usize) -> EventRow {
    let id = format!("act_stored_{n:05}");
    let base = EventRow {
        org_id: "org_acme".into(),
        ts: 1_700_000_000_000_000 + n as i64,
        action: AWKWARD[n % AWKWARD.len()].into(),
        status_code: 200 + (n % 300) as i32,
        success: n.is_multiple_of(3),
        duration_ms: n as i64 * 7,
        token_usage: "{}".into(),
        tokens_total: n as i64,
        metadata: format!("{{\"n\":{n}}}"),
        ..EventRow::default()
    };
    if n % 2 == 1 {
        return EventRow { id, ..base };
    }
    let text = |k: usize| Some(format!("{}{}", AWKWARD[(n + k) % AWKWARD.len()], k));
    EventRow {
        id,
        trace_id: text(1),
        user_id: text(2),
        workspace_id: text(3),
        app_id: text(4),
        endpoint_id: text(5),
        augmentation_id: text(6),
        principal_type: Some(String::new()),
        principal_id: text(8),
        token_id: text(9),
        token_type: text(10),
        method: text(11),
        path: text(12),
        resource_type: text(13),
        resource_id: text(14),
        error_code: text(15),
        execution_id: text(16),
        stages_completed: Some(0),
        total_stages: Some(n as i32),
        ..base
    }
}

/// Reads back what [`insert_batch`] stored: on PostgreSQL it binds one array
/// per column (with a mask of each row's NULLs), on SQLite a list of rows.
async fn every_column_is_stored_as_given_set_or_null_in_batches_of_any_size(db: TestDb) {
    // Past the 1,000 rows of one statement, then a resend with one new row.
    let rows: Vec<EventRow> = (0..1_500).map(stored_row).collect();
    let txn = db.db.begin().await.unwrap();
    assert_eq!(
        insert_batch(&txn, rows.clone(), false).await.unwrap(),
        1_500
    );
    txn.commit().await.unwrap();
    let resent: Vec<EventRow> = (0..1_501).map(stored_row).collect();
    let txn = db.db.begin().await.unwrap();
    assert_eq!(
        insert_batch(&txn, resent.clone(), true).await.unwrap(),
        1,
        "only the new row is stored again"
    );
    txn.commit().await.unwrap();

    let stored = db
        .rows(
            "SELECT id, org_id, ts, trace_id, user_id, workspace_id, app_id, endpoint_id, \
             augmentation_id, principal_type, principal_id, token_id, token_type, method, path, \
             resource_type, resource_id, action, status_code, success, error_code, duration_ms, \
             execution_id, stages_completed, total_stages, token_usage, tokens_total, metadata \
             FROM activity_events WHERE org_id = ? ORDER BY id",
            vec!["org_acme".into()],
        )
        .await;
    let read: Vec<EventRow> = stored
        .iter()
        .map(|r| {
            let text = |i: usize| r.try_get_by_index::<Option<String>>(i).unwrap();
            EventRow {
                id: r.try_get_by_index(0).unwrap(),
                org_id: r.try_get_by_index(1).unwrap(),
                ts: r.try_get_by_index(2).unwrap(),
                trace_id: text(3),
                user_id: text(4),
                workspace_id: text(5),
                app_id: text(6),
                endpoint_id: text(7),
                augmentation_id: text(8),
                principal_type: text(9),
                principal_id: text(10),
                token_id: text(11),
                token_type: text(12),
                method: text(13),
                path: text(14),
                resource_type: text(15),
                resource_id: text(16),
                action: r.try_get_by_index(17).unwrap(),
                status_code: r.try_get_by_index(18).unwrap(),
                success: r.try_get_by_index(19).unwrap(),
                error_code: text(20),
                duration_ms: r.try_get_by_index(21).unwrap(),
                execution_id: text(22),
                stages_completed: r.try_get_by_index(23).unwrap(),
                total_stages: r.try_get_by_index(24).unwrap(),
                token_usage: r.try_get_by_index(25).unwrap(),
                tokens_total: r.try_get_by_index(26).unwrap(),
                metadata: r.try_get_by_index(27).unwrap(),
            }
        })
        .collect();
    assert_eq!(read.len(), resent.len());
    for (got, sent) in read.iter().zip(&resent) {
        assert_eq!(got, sent);
    }
    // Numbered densely in the order given, the repeats leaving no gap.
    let indexes = db.log_indexes("org_acme").await;
    assert_eq!(indexes, (0..1_501).collect::<Vec<i64>>());
    let last = db
        .rows(
            "SELECT id FROM activity_events WHERE org_id = ? AND log_index = 1500",
            vec!["org_acme".into()],
        )
        .await;
    assert_eq!(
        last[0].try_get_by_index::<String>(0).unwrap(),
        "act_stored_01500"
    );
}
