//! Feeds at every level: REST and GraphQL agree, cursors walk
//! every event exactly once, every limit holds at and past its edge.

use std::collections::HashSet;

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::permission::{Permission, Role};
use activity_gateway::service::events::{insert_batch, EventRow};
use activity_gateway::service::keys::NewKey;
use serde_json::{json, Value};

on_both_backends!(
    every_rest_route_and_its_graphql_twin_give_the_same_events_in_the_same_order,
    a_cursor_walk_yields_every_event_once_newest_first_while_events_arrive,
    limits_hold_at_and_past_their_edges_and_every_422_names_its_location,
    cursors_replayed_on_another_feed_or_tampered_answer_422,
    a_missing_permission_answers_403_naming_it,
    the_same_bad_value_is_refused_with_the_same_type_msg_and_ctx_on_both_transports,
    the_org_feed_filters_by_app_and_endpoint_like_their_own_feeds,
    free_text_search_matches_substrings_the_same_way_on_both_backends,
    each_entity_feed_reads_its_partial_index,
);

const WS: &str = "ws_acme_production";
const APP: &str = "app_acme_production_search";
const EP: &str = "ep_acme_production_search_get";
const AUG: &str = "aug_acme_production_enrich";
const USER: &str = "usr_acme_05";

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// GraphQL's `activity` connection under `path` (e.g. `["org"]`).
fn gql_ids(body: &Value, path: &[&str]) -> (Vec<String>, u64) {
    let mut v = &body["data"];
    for p in path {
        v = &v[*p];
    }
    let conn = &v["activity"];
    assert!(conn.is_object(), "no connection at {path:?}: {body}");
    (ids(&conn["nodes"]), conn["totalCount"].as_u64().unwrap())
}

async fn every_rest_route_and_its_graphql_twin_give_the_same_events_in_the_same_order(db: TestDb) {
    db.seed(6_000).await;
    let user_key = db
        .key_with(NewKey {
            org_id: "org_acme".into(),
            role: Some(Role::Viewer),
            permissions: Default::default(),
            user_id: Some(USER.into()),
            name: None,
        })
        .await;
    let app = TestApp::spawn(&db.db).await;
    let conn = "(first: 40, filter: FILTER) { totalCount nodes { id } }";
    let feed =
        |selection: &str, filter: &str| selection.replace("CONN", &conn.replace("FILTER", filter));
    let o = "/v1/orgs/org_acme";
    // (REST path and query, GraphQL query, where the connection is in the answer)
    let cases: Vec<(String, String, Vec<&str>)> = vec![
        (format!("{o}/activity?limit=40"), feed("{ org(id: \"org_acme\") { activity CONN } }", "{}"), vec!["org"]),
        (format!("{o}/workspaces/{WS}/activity?limit=40"), feed(&format!("{{ node(id: \"{WS}\") {{ ... on Workspace {{ activity CONN }} }} }}"), "{}"), vec!["node"]),
        (
            format!("{o}/users/{USER}/activity?limit=40&workspace_id={WS}"),
            feed(&format!("{{ node(id: \"{USER}\") {{ ... on User {{ activity CONN }} }} }}"), &format!("{{ workspaceId: \"{WS}\" }}")),
            vec!["node"],
        ),
        (format!("{o}/workspaces/{WS}/apps/{APP}/activity?limit=40"), feed(&format!("{{ node(id: \"{APP}\") {{ ... on App {{ activity CONN }} }} }}"), "{}"), vec!["node"]),
        (
            format!("{o}/workspaces/{WS}/apps/{APP}/endpoints/{EP}/activity?limit=40"),
            feed(&format!("{{ node(id: \"{EP}\") {{ ... on Endpoint {{ activity CONN }} }} }}"), "{}"),
            vec!["node"],
        ),
        (
            format!("{o}/workspaces/{WS}/augmentations/{AUG}/activity?limit=40"),
            feed(&format!("{{ node(id: \"{AUG}\") {{ ... on Augmentation {{ activity CONN }} }} }}"), "{}"),
            vec!["node"],
        ),
        (
            format!("{o}/workspaces/{WS}/activity/actions/update?limit=40"),
            feed(&format!("{{ node(id: \"{WS}\") {{ ... on Workspace {{ activity CONN }} }} }}"), "{ actions: [\"update\"] }"),
            vec!["node"],
        ),
        (
            format!("{o}/workspaces/{WS}/resources/{EP}/activity?limit=40"),
            feed(&format!("{{ node(id: \"{WS}\") {{ ... on Workspace {{ activity CONN }} }} }}"), &format!("{{ resourceId: \"{EP}\" }}")),
            vec!["node"],
        ),
        (
            format!("{o}/workspaces/{WS}/activity/search?limit=40&action=read&resource_type=endpoint&status=success&min_duration_ms=20&max_duration_ms=400"),
            feed(
                &format!("{{ node(id: \"{WS}\") {{ ... on Workspace {{ activity CONN }} }} }}"),
                "{ actions: [\"read\"], resourceTypes: [\"endpoint\"], status: SUCCESS, minDurationMs: 20, maxDurationMs: 400 }",
            ),
            vec!["node"],
        ),
        (
            format!("{o}/workspaces/{WS}/activity/search?limit=40&user_id={USER}&status=error"),
            feed(&format!("{{ node(id: \"{WS}\") {{ ... on Workspace {{ activity CONN }} }} }}"), &format!("{{ userIds: [\"{USER}\"], status: ERROR }}")),
            vec!["node"],
        ),
        (format!("{o}/me/activity?limit=40"), feed("{ viewer { user { activity CONN } } }", "{}"), vec!["viewer", "user"]),
        (
            format!("{o}/me/activity?limit=40&workspace_id={WS}&start_time=2000-01-01T00:00:00"),
            feed("{ viewer { user { activity CONN } } }", &format!("{{ workspaceId: \"{WS}\", startTime: \"2000-01-01T00:00:00Z\" }}")),
            vec!["viewer", "user"],
        ),
    ];
    for (rest, gql, path) in &cases {
        let (status, body) = app.get(rest, &user_key).await;
        assert_eq!(status, 200, "{rest}: {body}");
        let rest_ids = ids(&body["activities"]);
        assert!(
            !rest_ids.is_empty(),
            "{rest} found nothing: the comparison would prove nothing"
        );
        let (gstatus, gbody) = app.graphql(&user_key, gql).await;
        assert_eq!(gstatus, 200);
        assert!(gbody["errors"].is_null(), "{gql}: {gbody}");
        let (gql_ids, gql_total) = gql_ids(&gbody, path);
        assert_eq!(rest_ids, gql_ids, "{rest} vs its GraphQL twin");
        assert_eq!(body["total"].as_u64().unwrap(), gql_total, "{rest} total");
        assert_eq!(body["has_more"].as_bool().unwrap(), gql_total > 40);
    }
    // The five summary routes and their twins.
    let summaries = [
        (format!("{o}/activity/summary?hours=168"), "{ org(id: \"org_acme\") { activitySummary(hours: 168) { FIELDS } } }".to_owned(), vec!["org"]),
        (format!("{o}/workspaces/{WS}/activity/summary?hours=168"), format!("{{ node(id: \"{WS}\") {{ ... on Workspace {{ activitySummary(hours: 168) {{ FIELDS }} }} }} }}"), vec!["node"]),
        (format!("{o}/users/{USER}/activity/summary?hours=168"), format!("{{ node(id: \"{USER}\") {{ ... on User {{ activitySummary(hours: 168) {{ FIELDS }} }} }} }}"), vec!["node"]),
        (
            format!("{o}/workspaces/{WS}/apps/{APP}/endpoints/{EP}/activity/summary?hours=168"),
            format!("{{ node(id: \"{EP}\") {{ ... on Endpoint {{ activitySummary(hours: 168) {{ FIELDS }} }} }} }}"),
            vec!["node"],
        ),
        (format!("{o}/me/activity/summary?hours=168"), "{ viewer { user { activitySummary(hours: 168) { FIELDS } } } }".to_owned(), vec!["viewer", "user"]),
    ];
    for (rest, gql, path) in summaries {
        let (status, r) = app.get(&rest, &user_key).await;
        assert_eq!(status, 200, "{rest}: {r}");
        assert!(r["total_requests"].as_i64().unwrap() > 0, "{rest} is empty");
        let g = app.execute(&user_key, &gql.replace("FIELDS", "totalRequests successfulRequests failedRequests totalTokensUsed byAction { key count }")).await;
        let mut s = &g["data"];
        for p in &path {
            s = &s[*p];
        }
        let s = &s["activitySummary"];
        assert_eq!(r["total_requests"], s["totalRequests"], "{rest}: {g}");
        assert_eq!(r["successful_requests"], s["successfulRequests"]);
        assert_eq!(r["failed_requests"], s["failedRequests"]);
        assert_eq!(r["total_tokens_used"], s["totalTokensUsed"]);
        let by_action: serde_json::Map<String, Value> = s["byAction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["key"].as_str().unwrap().to_owned(), c["count"].clone()))
            .collect();
        assert_eq!(r["by_action"], Value::Object(by_action));
    }
}

fn event(org: &str, ts: i64, n: usize) -> EventRow {
    EventRow {
        id: format!("act_test{:012}{n:08}", ts.rem_euclid(1_000_000_000_000)),
        org_id: org.into(),
        ts,
        workspace_id: Some(WS.into()),
        action: "read".into(),
        resource_type: Some("workspace".into()),
        status_code: 200,
        success: true,
        duration_ms: 5,
        token_usage: "{}".into(),
        metadata: "{}".into(),
        ..Default::default()
    }
}

async fn a_cursor_walk_yields_every_event_once_newest_first_while_events_arrive(db: TestDb) {
    db.seed(15_500).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let path = "/v1/orgs/org_acme/activity".to_owned();
    let first_total = {
        let (_, body) = app.get(&format!("{path}?limit=1"), &key).await;
        body["total"].as_u64().unwrap()
    };
    // A quiet walk: total equals what was walked.
    let walk = |with_inserts: bool| {
        let app = &app;
        let key = key.clone();
        let path = path.clone();
        let db = &db;
        async move {
            let mut seen: Vec<(String, String)> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut page = 0;
            loop {
                let url = match &cursor {
                    Some(c) => format!("{path}?limit=200&cursor={c}"),
                    None => format!("{path}?limit=200"),
                };
                let (status, body) = app.get(&url, &key).await;
                assert_eq!(status, 200, "{body}");
                for a in body["activities"].as_array().unwrap() {
                    seen.push((
                        a["timestamp"].as_str().unwrap().to_owned(),
                        a["id"].as_str().unwrap().to_owned(),
                    ));
                }
                if with_inserts {
                    // Newer and older events arrive between pages.
                    let now = activity_gateway::domain::time::now_micros();
                    let oldest = seen.last().map(|_| now - 10 * 86_400_000_000).unwrap();
                    insert_batch(
                        &db.db,
                        vec![
                            event("org_acme", now + page, page as usize),
                            event("org_acme", oldest - page, page as usize + 500_000),
                        ],
                        false,
                    )
                    .await
                    .unwrap();
                }
                page += 1;
                match body["next_cursor"].as_str() {
                    Some(c) => {
                        assert!(body["has_more"].as_bool().unwrap());
                        cursor = Some(c.to_owned());
                    }
                    None => break,
                }
            }
            seen
        }
    };
    let quiet = walk(false).await;
    assert!(
        quiet.len() >= 10_000,
        "the walk covers at least 10,000 events: {}",
        quiet.len()
    );
    assert_eq!(quiet.len() as u64, first_total);
    let unique: HashSet<&String> = quiet.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), quiet.len(), "no event twice");
    let mut sorted = quiet.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(sorted, quiet, "newest first, by timestamp then id");

    let busy = walk(true).await;
    let busy_ids: HashSet<&String> = busy.iter().map(|(_, id)| id).collect();
    assert_eq!(
        busy_ids.len(),
        busy.len(),
        "no event twice while events arrive"
    );
    for (_, id) in &quiet {
        assert!(
            busy_ids.contains(id),
            "{id} existed when the walk began and was missed"
        );
    }
    let mut sorted = busy.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(sorted, busy, "still newest first");
}

async fn error_at(app: &TestApp, key: &str, path: &str) -> Vec<(Value, String)> {
    let (status, body) = app.get(path, key).await;
    assert_eq!(status, 422, "{path}: {body}");
    body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["loc"].clone(), d["type"].as_str().unwrap().to_owned()))
        .collect()
}

async fn limits_hold_at_and_past_their_edges_and_every_422_names_its_location(db: TestDb) {
    db.seed(600).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let o = "/v1/orgs/org_acme";
    for (limit, expected) in [(1, 1), (200, 200)] {
        let (status, body) = app.get(&format!("{o}/activity?limit={limit}"), &key).await;
        assert_eq!(status, 200);
        assert_eq!(body["activities"].as_array().unwrap().len(), expected);
    }
    let (_, body) = app.get(&format!("{o}/activity"), &key).await;
    assert_eq!(
        body["activities"].as_array().unwrap().len(),
        50,
        "default limit"
    );
    assert_eq!(
        error_at(&app, &key, &format!("{o}/activity?limit=0")).await,
        [(json!(["query", "limit"]), "greater_than_equal".to_owned())]
    );
    assert_eq!(
        error_at(&app, &key, &format!("{o}/activity?limit=201")).await,
        [(json!(["query", "limit"]), "less_than_equal".to_owned())]
    );
    assert_eq!(
        error_at(&app, &key, &format!("{o}/activity?limit=ten")).await,
        [(json!(["query", "limit"]), "int_parsing".to_owned())]
    );
    let (_, body) = app.get(&format!("{o}/activity?limit=500"), &key).await;
    assert_eq!(
        body["detail"][0],
        json!({ "loc": ["query", "limit"], "msg": "Input should be less than or equal to 200", "type": "less_than_equal", "input": "500", "ctx": { "le": 200 } })
    );

    for hours in [1, 168] {
        let (status, body) = app
            .get(&format!("{o}/activity/summary?hours={hours}"), &key)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        error_at(&app, &key, &format!("{o}/activity/summary?hours=0")).await,
        [(json!(["query", "hours"]), "greater_than_equal".to_owned())]
    );
    assert_eq!(
        error_at(&app, &key, &format!("{o}/activity/summary?hours=169")).await,
        [(json!(["query", "hours"]), "less_than_equal".to_owned())]
    );
    assert_eq!(
        error_at(&app, &key, &format!("{o}/workspaces/{WS}/activity/search?start_time=soon&end_time=2026-01-01&status=maybe&min_duration_ms=-1&max_duration_ms=x&cursor=zz"))
            .await,
        [
            (json!(["query", "start_time"]), "datetime_parsing".to_owned()),
            (json!(["query", "status"]), "literal_error".to_owned()),
            (json!(["query", "min_duration_ms"]), "greater_than_equal".to_owned()),
            (json!(["query", "max_duration_ms"]), "int_parsing".to_owned()),
            (json!(["query", "cursor"]), "value_error".to_owned()),
        ]
    );
    assert_eq!(
        error_at(
            &app,
            &key,
            &format!("{o}/activity?start_time=2026-01-02&end_time=2026-01-01")
        )
        .await,
        [(json!(["query", "end_time"]), "value_error".to_owned())]
    );
    // GraphQL: the same limits, as BAD_USER_INPUT.
    for (first, ok) in [(1, true), (200, true), (0, false), (201, false)] {
        let (_, body) = app.graphql(&key, &format!("{{ org(id: \"org_acme\") {{ activity(first: {first}) {{ nodes {{ id }} }} }} }}")).await;
        if ok {
            assert_eq!(
                body["data"]["org"]["activity"]["nodes"]
                    .as_array()
                    .unwrap()
                    .len(),
                first as usize
            );
        } else {
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "first: {first}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["details"]["detail"][0]["loc"],
                json!(["first"])
            );
        }
    }
    for (hours, ok) in [(1, true), (168, true), (0, false), (169, false)] {
        let (_, body) = app.graphql(&key, &format!("{{ org(id: \"org_acme\") {{ activitySummary(hours: {hours}) {{ totalRequests }} }} }}")).await;
        assert_eq!(body["errors"].is_null(), ok, "hours {hours}: {body}");
    }
    // Depth and complexity: an abusive query fails with BAD_USER_INPUT, the README's pass.
    let deep = format!("{{ viewer {{ org {{ {} }} }} }}", "workspaces { nodes { apps { nodes { endpoints { nodes { activity { nodes { app { endpoints { nodes { activity { nodes { id } } } } } } } } } } } } }");
    let (_, body) = app.graphql(&key, &deep).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

async fn cursors_replayed_on_another_feed_or_tampered_answer_422(db: TestDb) {
    db.seed(600).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let o = "/v1/orgs/org_acme";
    let (_, body) = app
        .get(&format!("{o}/workspaces/{WS}/activity?limit=5"), &key)
        .await;
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let (status, _) = app
        .get(
            &format!("{o}/workspaces/{WS}/activity?limit=5&cursor={cursor}"),
            &key,
        )
        .await;
    assert_eq!(status, 200);
    for other in [
        format!("{o}/activity?cursor={cursor}"),
        format!("{o}/workspaces/ws_acme_staging/activity?cursor={cursor}"),
        format!("{o}/workspaces/{WS}/activity?cursor={cursor}&start_time=2020-01-01"),
        format!("{o}/workspaces/{WS}/activity/search?cursor={cursor}&action=read"),
    ] {
        assert_eq!(
            error_at(&app, &key, &other).await,
            [(json!(["query", "cursor"]), "value_error".to_owned())],
            "{other}"
        );
    }
    let mut tampered = cursor.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        error_at(
            &app,
            &key,
            &format!("{o}/workspaces/{WS}/activity?cursor={tampered}")
        )
        .await,
        [(json!(["query", "cursor"]), "value_error".to_owned())]
    );
    // Another org's cursor: refused like any cursor of another feed.
    let globex = db.key("org_globex", Role::Viewer).await;
    let (status, _) = app
        .get(
            &format!("/v1/orgs/org_globex/activity?cursor={cursor}"),
            &globex,
        )
        .await;
    assert_eq!(status, 422);
    // GraphQL `after` is bound the same way.
    let body = app.execute(&key, &format!("{{ org(id: \"org_acme\") {{ activity(after: \"{cursor}\") {{ nodes {{ id }} }} }} }}")).await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["loc"],
        json!(["after"])
    );
}

async fn a_missing_permission_answers_403_naming_it(db: TestDb) {
    db.seed(10).await;
    let app = TestApp::spawn(&db.db).await;
    let docs_only = db
        .key_with(NewKey {
            org_id: "org_acme".into(),
            role: None,
            permissions: [Permission::DocsRead].into(),
            user_id: None,
            name: None,
        })
        .await;
    for path in [
        "/v1/orgs/org_acme/activity",
        "/v1/orgs/org_acme/activity/summary",
        "/v1/orgs/org_acme/me/activity",
    ] {
        let (status, body) = app.get(path, &docs_only).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(body["error"], "FORBIDDEN");
        assert_eq!(
            body["message"],
            "You don't have permission to perform this action"
        );
        assert_eq!(
            body["details"],
            json!({ "required_permission": "activity:read" })
        );
    }
    let (_, body) = app
        .graphql(
            &docs_only,
            "{ org(id: \"org_acme\") { activity { nodes { id } } } }",
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["required_permission"],
        "activity:read"
    );
}

/// REST's `detail[0]` and GraphQL's `extensions.details.detail[0]` for the
/// same value differ only in where they say it was.
async fn the_same_bad_value_is_refused_with_the_same_type_msg_and_ctx_on_both_transports(
    db: TestDb,
) {
    db.seed(5).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let refused = |item: &Value| {
        (
            item["type"].clone(),
            item["msg"].clone(),
            item["ctx"].clone(),
        )
    };
    let cases = [
        (
            "activity?limit=0",
            "activity(first: 0) { totalCount }",
            "first",
        ),
        (
            "activity?limit=201",
            "activity(first: 201) { totalCount }",
            "first",
        ),
        (
            "activity/summary?hours=0",
            "activitySummary(hours: 0) { totalRequests }",
            "hours",
        ),
        (
            "activity/summary?hours=169",
            "activitySummary(hours: 169) { totalRequests }",
            "hours",
        ),
    ];
    for (route, field, argument) in cases {
        let (status, rest) = app.get(&format!("/v1/orgs/org_acme/{route}"), &key).await;
        assert_eq!(status, 422, "{route}: {rest}");
        let (_, gql) = app
            .graphql(&key, &format!("{{ org(id: \"org_acme\") {{ {field} }} }}"))
            .await;
        let extensions = &gql["errors"][0]["extensions"];
        assert_eq!(
            (&extensions["code"], &extensions["status_code"]),
            (&json!("BAD_USER_INPUT"), &json!(422)),
            "{field}: {gql}"
        );
        let gql_item = &extensions["details"]["detail"][0];
        assert_eq!(
            refused(&rest["detail"][0]),
            refused(gql_item),
            "{route} vs {field}"
        );
        assert_eq!(gql_item["loc"], json!([argument]));
        let name = route.rsplit_once('?').unwrap().1.split('=').next().unwrap();
        assert_eq!(rest["detail"][0]["loc"], json!(["query", name]));
    }
    // A parse error is the client's input too: the same code and status_code.
    let (_, gql) = app.graphql(&key, "{ org(id: ").await;
    assert_eq!(
        (
            &gql["errors"][0]["extensions"]["code"],
            &gql["errors"][0]["extensions"]["status_code"]
        ),
        (&json!("BAD_USER_INPUT"), &json!(422)),
        "{gql}"
    );
}

/// `appId` and `endpointId` in the org feed's filter list exactly the events
/// the app's and the endpoint's own feeds list, with exact totals, and a
/// cursor stays bound to them.
async fn the_org_feed_filters_by_app_and_endpoint_like_their_own_feeds(db: TestDb) {
    db.seed(800).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let org_feed = |filter: Value| {
        let (app, key) = (&app, &key);
        async move {
            let (status, body) = app
                .graphql_with(
                    "query($filter: ActivityFilterInput) { org(id: \"org_acme\") { activity(first: 200, filter: $filter) { totalCount pageInfo { endCursor } nodes { id } } } }",
                    json!({ "filter": filter }),
                    |r| r.header("X-Api-Key", key),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    for (filter, own, column, id) in [
        (
            json!({ "appId": APP }),
            format!("/v1/orgs/org_acme/workspaces/{WS}/apps/{APP}/activity?limit=200"),
            "app_id",
            APP,
        ),
        (
            json!({ "endpointId": EP }),
            format!(
                "/v1/orgs/org_acme/workspaces/{WS}/apps/{APP}/endpoints/{EP}/activity?limit=200"
            ),
            "endpoint_id",
            EP,
        ),
    ] {
        let body = org_feed(filter.clone()).await;
        let (filtered, total) = gql_ids(&body, &["org"]);
        let (status, page) = app.get(&own, &key).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(filtered, ids(&page["activities"]), "{filter}");
        let expected = db
            .count_events(&format!("org_id = 'org_acme' AND {column} = '{id}'"))
            .await;
        assert_eq!(total as i64, expected);
        assert!(expected > 0);
    }
    // Both at once, and another app's endpoint: nothing.
    let body = org_feed(json!({ "appId": "app_acme_production_billing", "endpointId": EP })).await;
    assert_eq!(gql_ids(&body, &["org"]), (vec![], 0));
    // A cursor of the app's filter is not one of another app's.
    let body = org_feed(json!({ "appId": APP })).await;
    let cursor = body["data"]["org"]["activity"]["pageInfo"]["endCursor"].clone();
    let (_, body) = app
        .graphql_with(
            "query($after: String) { org(id: \"org_acme\") { activity(after: $after, filter: { appId: \"app_acme_production_billing\" }) { nodes { id } } } }",
            json!({ "after": cursor }),
            |r| r.header("X-Api-Key", &key),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["loc"],
        json!(["after"]),
        "{body}"
    );
    // Text a database cannot store is refused where it is.
    let (status, body) = app
        .graphql_with(
            "query($filter: ActivityFilterInput) { org(id: \"org_acme\") { activity(filter: $filter) { nodes { id } } } }",
            json!({ "filter": { "endpointId": "ep\u{0}" } }),
            |r| r.header("X-Api-Key", &key),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "variables", "filter", "endpointId"]),
        "{body}"
    );
}

/// `search` finds substrings in the events' text columns: ASCII letters in
/// any case, nothing else folded, `%` and `_` literal, with exact totals
/// and summaries, and a limit at its edge.
async fn free_text_search_matches_substrings_the_same_way_on_both_backends(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let paths = [
        "/alpha/needle",
        "/ALPHA/NEEDLE",
        "/x%y",
        "/xAy",
        "/a_b",
        "/aXb",
        "/café",
        "/CAFÉ",
        "/back\\slash",
    ];
    let events: Vec<Value> = paths
        .iter()
        .map(|p| json!({ "action": "searched", "path": p }))
        .collect();
    let (status, body) = app
        .post_json(&key, "/v1/orgs/org_acme/activity", &Value::Array(events))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    let search = |text: &str| {
        let (app, key, text) = (&app, &key, text.to_owned());
        async move {
            let (status, body) = app
                .graphql_with(
                    "query($filter: ActivityFilterInput) { org(id: \"org_acme\") { activity(first: 200, filter: $filter) { totalCount nodes { id } } activitySummary(hours: 1, filter: $filter) { totalRequests } } }",
                    json!({ "filter": { "actions": ["searched"], "search": text } }),
                    |r| r.header("X-Api-Key", key),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert!(body["errors"].is_null(), "{body}");
            let (mut found, total) = gql_ids(&body, &["org"]);
            assert_eq!(found.len() as u64, total);
            assert_eq!(
                body["data"]["org"]["activitySummary"]["totalRequests"],
                total
            );
            found.sort();
            found
        }
    };
    let of = |indexes: &[usize]| {
        let mut chosen: Vec<String> = indexes.iter().map(|i| ids[*i].clone()).collect();
        chosen.sort();
        chosen
    };
    assert_eq!(search("needle").await, of(&[0, 1]), "ASCII in any case");
    assert_eq!(search("NeEdLe").await, of(&[0, 1]));
    assert_eq!(search("x%y").await, of(&[2]), "% is literal");
    assert_eq!(search("a_b").await, of(&[4]), "_ is literal");
    assert_eq!(search("café").await, of(&[6]), "no folding beyond ASCII");
    assert_eq!(search("CAF").await, of(&[6, 7]));
    assert_eq!(search("\\").await, of(&[8]), "a backslash is literal");
    assert_eq!(
        search("searched").await,
        of(&[0, 1, 2, 3, 4, 5, 6, 7, 8]),
        "the action is searched too"
    );
    assert_eq!(search("nowhere").await, Vec::<String>::new());
    // At and past the limit.
    assert_eq!(search(&"n".repeat(200)).await, Vec::<String>::new());
    let (_, body) = app
        .graphql_with(
            "query($filter: ActivityFilterInput) { org(id: \"org_acme\") { activity(filter: $filter) { nodes { id } } } }",
            json!({ "filter": { "search": "n".repeat(201) } }),
            |r| r.header("X-Api-Key", &key),
        )
        .await;
    let detail = &body["errors"][0]["extensions"]["details"]["detail"][0];
    assert_eq!(detail["type"], "string_too_long", "{body}");
    assert_eq!(detail["loc"], json!(["filter", "search"]), "{body}");
}

/// The feed indexes led by a column an event may leave empty (a recorded
/// API call names no workspace, app, endpoint, augmentation or user) hold
/// only the events that have it, and each entity's feed still reads its
/// index: the feed's `column = value` implies `column IS NOT NULL`, and both
/// planners take that. On PostgreSQL, scans other than by index are turned
/// off for the question, so that the small table's plan shows what the
/// index allows rather than what is cheapest at 400 rows.
async fn each_entity_feed_reads_its_partial_index(db: TestDb) {
    use activity_gateway::domain::feed::{ActivityFilter, Scope};
    use activity_gateway::service::activity;
    use entity::activity_event::Column;
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    db.seed(400).await;
    let backend = db.db.get_database_backend();
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Statement>::new()));
    let statements = log.clone();
    counted.set_metric_callback(move |info| {
        statements.lock().unwrap().push(info.statement.clone());
    });
    let resource: String = db
        .rows(
            "SELECT resource_id FROM activity_events \
             WHERE workspace_id = ? AND resource_id IS NOT NULL LIMIT 1",
            vec![WS.into()],
        )
        .await[0]
        .try_get_by_index(0)
        .unwrap();
    let scopes = [
        ("workspace_ts", "workspace_id", Scope::Workspace(WS.into())),
        ("app_ts", "app_id", Scope::App(APP.into())),
        ("endpoint_ts", "endpoint_id", Scope::Endpoint(EP.into())),
        (
            "augmentation_ts",
            "augmentation_id",
            Scope::Augmentation(AUG.into()),
        ),
        ("user_ts", "user_id", Scope::User(USER.into())),
        (
            "workspace_action_ts",
            "workspace_id",
            Scope::WorkspaceAction {
                workspace_id: WS.into(),
                action: "read".into(),
            },
        ),
        (
            "workspace_resource_ts",
            "workspace_id",
            Scope::WorkspaceResource {
                workspace_id: WS.into(),
                resource_id: resource,
            },
        ),
    ];
    for (index, column, scope) in scopes {
        let name = format!("ix_activity_events_{index}");
        let definition = match backend {
            DbBackend::Postgres => "SELECT indexdef FROM pg_indexes WHERE indexname = ?",
            _ => "SELECT sql FROM sqlite_master WHERE name = ?",
        };
        let rows = db.rows(definition, vec![name.as_str().into()]).await;
        let definition: String = rows[0].try_get_by_index(0).unwrap();
        assert!(
            definition.contains(&format!("{column} IS NOT NULL")),
            "{definition}"
        );
        let query = activity::PageQuery {
            org_id: "org_acme",
            scope: &scope,
            filter: &ActivityFilter::default(),
            limit: 20,
            cursor: None,
            columns: &[Column::Action],
            related: &[],
        };
        let (events, _) = activity::page_rows(&counted, &query).await.unwrap();
        assert!(!events.is_empty(), "{scope:?} has events");
        let page = log.lock().unwrap().pop().expect("the page's statement");
        let values = page.values.clone().map(|v| v.0).unwrap_or_default();
        let plan: Vec<String> = match backend {
            DbBackend::Postgres => {
                let txn = db.db.begin().await.unwrap();
                txn.execute_unprepared(
                    "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
                )
                .await
                .unwrap();
                let rows = txn
                    .query_all_raw(Statement::from_sql_and_values(
                        backend,
                        format!("EXPLAIN {}", page.sql),
                        values,
                    ))
                    .await
                    .unwrap();
                txn.rollback().await.unwrap();
                rows.iter()
                    .map(|r| r.try_get_by_index(0).unwrap())
                    .collect()
            }
            _ => db
                .db
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    format!("EXPLAIN QUERY PLAN {}", page.sql),
                    values,
                ))
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String>("", "detail").unwrap())
                .collect(),
        };
        assert!(
            plan.iter().any(|step| step.contains(&name)),
            "{scope:?} reads {name}: {plan:?}"
        );
    }
}
