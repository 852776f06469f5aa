//! Batch ingest: idempotent, all-or-nothing, tenant-safe, and
//! summaries stay exact.

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::feed::{ActivityFilter, Scope};
use activity_gateway::domain::permission::Role;
use activity_gateway::domain::time::{format_micros, now_micros, MICROS_PER_HOUR};
use activity_gateway::service::{rollups, summary};
use serde_json::{json, Value};

on_both_backends!(
    a_resent_batch_stores_nothing_twice,
    a_batch_with_bad_items_stores_nothing_and_reports_every_one,
    ids_of_another_org_are_refused_like_unknown_ids,
    the_batch_limit_holds_at_and_past_its_edge,
    ingested_events_complete_their_hierarchy_and_keep_summaries_exact,
    the_mutation_ingests_like_the_route_and_both_need_activity_write,
    every_field_bound_holds_at_and_past_its_edge,
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
