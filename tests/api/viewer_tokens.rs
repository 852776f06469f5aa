//! Viewer tokens at the API: made with `viewer:create`, read-only, confined
//! to their workspaces, user and filter on every read they may make (and
//! refused on every other), alive for their TTL until revoked, usable only
//! from their origins and only in their org.

use std::time::{Duration, Instant};

use activity_gateway::domain::permission::Role;
use activity_gateway::domain::time::parse_timestamp;
use serde_json::{json, Value};

use crate::common::{read, TestApp, TestDb};
use crate::live::{ingest, wait_for_subscriptions, Subscriber};

on_both_backends!(
    a_viewer_token_reads_only_its_confinement_and_cannot_widen_it,
    a_viewer_token_is_refused_everywhere_else,
    a_viewer_token_lives_its_ttl_and_ends_when_revoked,
    a_viewer_token_answers_only_its_origins_and_only_in_its_org,
    viewer_tokens_are_made_with_viewer_create_from_checked_input,
    a_viewer_tokens_live_tail_carries_only_its_confinement,
    a_viewer_tokens_export_holds_only_its_events_and_only_it_downloads_it,
    a_viewer_token_made_on_one_gateway_works_and_is_revoked_on_another,
);

const CREATE: &str = "mutation($input: ViewerTokenInput!) { createViewerToken(input: $input) { id token expiresAt } }";
const PRODUCTION: &str = "ws_acme_production";

/// `createViewerToken` with an admin key: the token made, or the errors.
async fn create(app: &TestApp, key: &str, input: Value) -> Value {
    let (status, body) = app
        .graphql_with(CREATE, json!({ "input": input }), |r| {
            r.header("X-Api-Key", key)
        })
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

pub(crate) async fn token(app: &TestApp, key: &str, input: Value) -> (String, String) {
    let body = create(app, key, input).await;
    let made = &body["data"]["createViewerToken"];
    assert!(body["errors"].is_null(), "{body}");
    (
        made["token"].as_str().unwrap().to_owned(),
        made["id"].as_str().unwrap().to_owned(),
    )
}

/// `revokeViewerToken` with an admin key: its answer.
pub(crate) async fn revoke(app: &TestApp, key: &str, id: &str) -> Value {
    let (status, body) = app
        .graphql_with(
            "mutation($id: ID!) { revokeViewerToken(id: $id) }",
            json!({ "id": id }),
            |r| r.header("X-Api-Key", key),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A request as the viewer page sends it: `Authorization: Bearer`, and the
/// page's origin when given. Answers status, headers and body.
async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    origin: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {token}"));
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    (status, headers, body)
}

/// A GET as the page sends it, from no origin.
async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = call(app, token, reqwest::Method::GET, path, None, None).await;
    (status, body)
}

async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let (status, _, body) = call(
        app,
        token,
        reqwest::Method::POST,
        "/graphql",
        Some(json!({ "query": query, "variables": variables })),
        None,
    )
    .await;
    assert!(status == 200 || status == 403, "{status} {body}");
    body
}

const FEED: &str = "query($filter: ActivityFilterInput, $after: String) { org(id: \"org_acme\") { activity(first: 200, filter: $filter, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id action workspaceId userId workspace { id } } } } }";
const SUMMARY: &str = "query($filter: ActivityFilterInput) { org(id: \"org_acme\") { activitySummary(hours: 168, filter: $filter) { totalRequests startTime endTime buckets { totalRequests } } } }";

/// Every event of the feed, page after page.
async fn whole_feed(app: &TestApp, token: &str, filter: Value) -> (i64, Vec<Value>) {
    let (mut nodes, mut after, mut total) = (Vec::new(), Value::Null, -1);
    loop {
        let body = gql(
            app,
            token,
            FEED,
            json!({ "filter": filter, "after": after }),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
        let page = &body["data"]["org"]["activity"];
        total = page["totalCount"].as_i64().unwrap_or(total);
        nodes.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return (total, nodes);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

async fn a_viewer_token_reads_only_its_confinement_and_cannot_widen_it(db: TestDb) {
    db.seed(1_500).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let in_production = format!("org_id = 'org_acme' AND workspace_id = '{PRODUCTION}'");
    let expected = db.count_events(&in_production).await;
    assert!(expected > 0 && expected < db.count_events("org_id = 'org_acme'").await);
    let (viewer, _) = token(
        &app,
        &key,
        json!({ "allowedOrigins": [], "workspaceIds": [PRODUCTION] }),
    )
    .await;
    // The feed, page by page: exactly the workspace's events, none twice.
    let (total, nodes) = whole_feed(&app, &viewer, Value::Null).await;
    assert_eq!(total, expected);
    assert_eq!(nodes.len() as i64, expected);
    assert!(nodes
        .iter()
        .all(|n| n["workspaceId"] == PRODUCTION && n["workspace"]["id"] == PRODUCTION));
    let ids: std::collections::HashSet<&str> =
        nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), nodes.len());
    // Asking for another workspace narrows to nothing: never wider.
    let (total, nodes) =
        whole_feed(&app, &viewer, json!({ "workspaceId": "ws_acme_staging" })).await;
    assert_eq!((total, nodes.len()), (0, 0));
    // Narrowing further works as for anyone.
    let reads = db
        .count_events(&format!("{in_production} AND action = 'read'"))
        .await;
    let (total, nodes) = whole_feed(&app, &viewer, json!({ "actions": ["read"] })).await;
    assert_eq!((total, nodes.len() as i64), (reads, reads));
    // The summary and its buckets count the workspace's events of the window.
    let body = gql(&app, &viewer, SUMMARY, json!({})).await;
    let summary = &body["data"]["org"]["activitySummary"];
    assert!(body["errors"].is_null(), "{body}");
    let (start, end) = (
        parse_timestamp(summary["startTime"].as_str().unwrap()).unwrap(),
        parse_timestamp(summary["endTime"].as_str().unwrap()).unwrap(),
    );
    let in_window = db
        .count_events(&format!("{in_production} AND ts >= {start} AND ts < {end}"))
        .await;
    assert_eq!(summary["totalRequests"], in_window, "{body}");
    let bucketed: i64 = summary["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["totalRequests"].as_i64().unwrap())
        .sum();
    assert_eq!(bucketed, in_window);
    // REST: the org's feed and summary, confined the same way.
    let (status, page) = get(&app, &viewer, "/v1/orgs/org_acme/activity?limit=200").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], expected);
    assert!(page["activities"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["workspace_id"] == PRODUCTION));
    let (status, summary) = get(
        &app,
        &viewer,
        "/v1/orgs/org_acme/activity/summary?hours=168",
    )
    .await;
    assert_eq!(status, 200, "{summary}");
    let (start, end) = (
        parse_timestamp(summary["start_time"].as_str().unwrap()).unwrap(),
        parse_timestamp(summary["end_time"].as_str().unwrap()).unwrap(),
    );
    let in_window = db
        .count_events(&format!("{in_production} AND ts >= {start} AND ts < {end}"))
        .await;
    assert_eq!(summary["total_requests"], in_window, "{summary}");
    // A cursor of the admin's feed is not the viewer's.
    let body = app
        .graphql_with(FEED, json!({}), |r| r.header("X-Api-Key", &key))
        .await
        .1;
    let admins_cursor = body["data"]["org"]["activity"]["pageInfo"]["endCursor"].clone();
    let body = gql(&app, &viewer, FEED, json!({ "after": admins_cursor })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );

    // A user and a fixed filter: the same, and the time range of the filter holds.
    let user = db.rows("SELECT user_id FROM activity_events WHERE org_id = 'org_acme' AND user_id IS NOT NULL GROUP BY user_id ORDER BY COUNT(*) DESC", vec![]).await[0]
        .try_get_by_index::<String>(0)
        .unwrap();
    let (viewer, _) = token(
        &app,
        &key,
        json!({ "allowedOrigins": [], "userId": user, "filter": { "status": "ERROR" } }),
    )
    .await;
    let expected = db
        .count_events(&format!(
            "org_id = 'org_acme' AND user_id = '{user}' AND NOT success"
        ))
        .await;
    let (total, nodes) = whole_feed(&app, &viewer, json!({ "status": "SUCCESS" })).await;
    assert_eq!(
        (total, nodes.len()),
        (0, 0),
        "success within errors only is nothing"
    );
    let (total, nodes) =
        whole_feed(&app, &viewer, json!({ "userIds": [user, "usr_acme_02"] })).await;
    assert_eq!((total, nodes.len() as i64), (expected, expected));
    assert!(nodes.iter().all(|n| n["userId"] == user.as_str()));
}

async fn a_viewer_token_is_refused_everywhere_else(db: TestDb) {
    db.seed(200).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (viewer, _) = token(
        &app,
        &key,
        json!({ "allowedOrigins": [], "workspaceIds": [PRODUCTION] }),
    )
    .await;
    let event = db.rows("SELECT id FROM activity_events WHERE org_id = 'org_acme' AND workspace_id = 'ws_acme_staging' LIMIT 1", vec![]).await[0]
        .try_get_by_index::<String>(0)
        .unwrap();
    // GraphQL fields outside the viewer's list: 403 on the field.
    for query in [
        "{ org(id: \"org_acme\") { workspaces { nodes { id } } } }".to_owned(),
        "{ org(id: \"org_acme\") { users { nodes { id } } } }".to_owned(),
        "{ org(id: \"org_acme\") { checkpoint { treeSize } } }".to_owned(),
        format!("{{ node(id: \"{event}\") {{ id }} }}"),
        "mutation { createViewerToken(input: { allowedOrigins: [] }) { token } }".to_owned(),
        "mutation { refreshActivity { success } }".to_owned(),
    ] {
        let body = gql(&app, &viewer, &query, json!({})).await;
        // Every one is a valid query refused on the field, not a mistake
        // of the query's.
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{query}: {body}"
        );
        assert!(!body.to_string().contains(&event), "{query}: {body}");
    }
    // REST routes outside the list: 403, whatever the permission.
    for path in [
        "/v1/orgs/org_acme/workspaces/ws_acme_staging/activity".to_owned(),
        "/v1/orgs/org_acme/me/activity".to_owned(),
        "/v1/orgs/org_acme/log/checkpoint".to_owned(),
        format!("/v1/orgs/org_acme/activity/{event}/inclusion-proof"),
    ] {
        let (status, body) = get(&app, &viewer, &path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"], "FORBIDDEN", "{path}: {body}");
    }
    for (path, body) in [
        ("/v1/orgs/org_acme/activity", json!([{ "action": "read" }])),
        (
            "/v1/orgs/org_acme/viewer-tokens",
            json!({ "allowed_origins": [] }),
        ),
        ("/api/v5/artifacts/activity/export", json!({})),
        ("/api/v5/artifacts/activity/search", json!({})),
    ] {
        let (status, _, answer) =
            call(&app, &viewer, reqwest::Method::POST, path, Some(body), None).await;
        assert_eq!(status, 403, "{path}: {answer}");
    }
}

async fn a_viewer_token_lives_its_ttl_and_ends_when_revoked(db: TestDb) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Admin).await;
    // Recording on: the token's own requests are recorded as activity.
    let app = TestApp::spawn_with(&db.db, crate::common::recording(1_000)).await;
    let feed = "/v1/orgs/org_acme/activity?limit=1";
    // The default: 15 minutes.
    let before = activity_gateway::domain::time::now_micros();
    let body = create(&app, &key, json!({ "allowedOrigins": [] })).await;
    let expires = parse_timestamp(
        body["data"]["createViewerToken"]["expiresAt"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!((expires - before - 900_000_000).abs() < 5_000_000, "{body}");
    // One second: taken at once, refused from its end on.
    let (short, _) = token(&app, &key, json!({ "allowedOrigins": [], "ttlSeconds": 1 })).await;
    let made = Instant::now();
    let (status, _) = get(&app, &short, feed).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1_100).saturating_sub(made.elapsed())).await;
    let (status, body) = get(&app, &short, feed).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AUTHENTICATION_FAILED")),
        "{body}"
    );
    // The longest lifetime is a day; longer or shorter than a second is refused.
    for (ttl, ok) in [(86_400, true), (86_401, false), (0, false), (-5, false)] {
        let body = create(
            &app,
            &key,
            json!({ "allowedOrigins": [], "ttlSeconds": ttl }),
        )
        .await;
        if ok {
            assert!(body["errors"].is_null(), "{ttl}: {body}");
        } else {
            let detail = &body["errors"][0]["extensions"]["details"]["detail"][0];
            assert_eq!(detail["type"], "ttl_range", "{ttl}: {body}");
            assert_eq!(detail["loc"], json!(["input", "ttl_seconds"]), "{body}");
        }
    }
    // Revoked: refused within the credential cache's window, and after.
    let (viewer, id) = token(&app, &key, json!({ "allowedOrigins": [] })).await;
    let (status, _) = get(&app, &viewer, feed).await;
    assert_eq!(status, 200);
    let body = revoke(&app, &key, &id).await;
    assert_eq!(body["data"]["revokeViewerToken"], true, "{body}");
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (status, _) = get(&app, &viewer, feed).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still taken a second after revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = get(&app, &viewer, feed).await;
    assert_eq!(status, 401);
    // Only viewer tokens of the org are revoked here: not keys, not unknown ids.
    let key_id = db
        .rows(
            "SELECT id FROM api_keys WHERE org_id = 'org_acme' AND viewer IS NULL LIMIT 1",
            vec![],
        )
        .await[0]
        .try_get_by_index::<String>(0)
        .unwrap();
    for unknown in [key_id.as_str(), "key_nope"] {
        let body = revoke(&app, &key, unknown).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
            "{body}"
        );
    }
    // The token's use is recorded as activity with its id, like a key's.
    let recorded = format!(
        "SELECT COUNT(*) FROM activity_events WHERE token_id = '{id}' \
         AND token_type = 'viewer_token' AND principal_type = 'viewer_token'"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&db, &recorded).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the token's use was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let used = db
        .rows(
            "SELECT last_used_at FROM api_keys WHERE id = ?",
            vec![id.clone().into()],
        )
        .await[0]
        .try_get_by_index::<Option<i64>>(0)
        .unwrap();
    assert!(used.is_some());
}

async fn a_viewer_token_answers_only_its_origins_and_only_in_its_org(db: TestDb) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (viewer, _) = token(
        &app,
        &key,
        json!({ "allowedOrigins": ["https://App.Example.com", "http://localhost:3000/"] }),
    )
    .await;
    let feed = "/v1/orgs/org_acme/activity?limit=1";
    let allow = |headers: &reqwest::header::HeaderMap| {
        headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        let (status, headers, _) = call(
            &app,
            &viewer,
            reqwest::Method::GET,
            feed,
            None,
            Some(origin),
        )
        .await;
        assert_eq!(status, 200, "{origin}");
        assert_eq!(allow(&headers).as_deref(), Some(origin));
        assert!(headers.get_all("vary").iter().any(|v| v == "Origin"));
    }
    for origin in [
        "https://evil.example",
        "http://app.example.com",
        "https://app.example.com:8443",
        "null",
    ] {
        let (status, headers, body) = call(
            &app,
            &viewer,
            reqwest::Method::GET,
            feed,
            None,
            Some(origin),
        )
        .await;
        assert_eq!(status, 403, "{origin}: {body}");
        assert_eq!(allow(&headers), None);
        let (status, headers, _) = call(
            &app,
            &viewer,
            reqwest::Method::POST,
            "/graphql",
            Some(json!({ "query": "{ viewer { principalType } }" })),
            Some(origin),
        )
        .await;
        assert_eq!((status, allow(&headers)), (403, None), "{origin}");
    }
    // Without an Origin (a server, not a browser) the token works; no CORS.
    let (status, headers, _) = call(&app, &viewer, reqwest::Method::GET, feed, None, None).await;
    assert_eq!((status, allow(&headers)), (200, None));
    // GraphQL says who the token is.
    let (status, headers, body) = call(
        &app,
        &viewer,
        reqwest::Method::POST,
        "/graphql",
        Some(json!({ "query": "{ viewer { principalType tokenType permissions } }" })),
        Some("https://app.example.com"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(allow(&headers).as_deref(), Some("https://app.example.com"));
    assert_eq!(
        body["data"]["viewer"],
        json!({ "principalType": "viewer_token", "tokenType": "viewer_token", "permissions": ["activity:read"] })
    );
    // A key gets no CORS, from any origin.
    let (status, headers, _) = read_with_headers(
        app.client
            .get(app.url(feed))
            .header("X-Api-Key", &key)
            .header("Origin", "https://app.example.com"),
    )
    .await;
    assert_eq!((status, allow(&headers)), (200, None));
    // A preflight carries no token: it is answered for an origin a live
    // token allows, and without CORS for any other.
    let preflight = |path: &'static str, origin: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header(
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204, "{path} {origin}");
            let headers = response.headers().clone();
            (
                allow(&headers),
                headers
                    .get("access-control-allow-headers")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    };
    for path in [
        "/graphql",
        "/v1/orgs/org_acme/activity",
        "/api/v5/artifacts/activity/export",
    ] {
        let (origin, headers) = preflight(path, "https://app.example.com").await;
        assert_eq!(origin.as_deref(), Some("https://app.example.com"), "{path}");
        let headers = headers.unwrap();
        assert!(headers.contains("authorization") && headers.contains("content-type"));
        assert_eq!(
            preflight(path, "https://evil.example").await,
            (None, None),
            "{path}"
        );
    }
    // Revoked (or expired), the token no longer opens its origins.
    let (_, id) = token(
        &app,
        &key,
        json!({ "allowedOrigins": ["https://once.example"] }),
    )
    .await;
    assert!(preflight("/graphql", "https://once.example")
        .await
        .0
        .is_some());
    let body = revoke(&app, &key, &id).await;
    assert_eq!(body["data"]["revokeViewerToken"], true, "{body}");
    assert_eq!(
        preflight("/graphql", "https://once.example").await,
        (None, None)
    );
    let _ = token(
        &app,
        &key,
        json!({ "allowedOrigins": ["https://brief.example"], "ttlSeconds": 1 }),
    )
    .await;
    assert!(preflight("/graphql", "https://brief.example")
        .await
        .0
        .is_some());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        preflight("/graphql", "https://brief.example").await,
        (None, None)
    );
    // A purge drops expired tokens' origins and keeps live ones'.
    let origins = |origin: &'static str| {
        let db = &db;
        async move {
            count(
                db,
                &format!("SELECT COUNT(*) FROM viewer_origins WHERE origin = '{origin}'"),
            )
            .await
        }
    };
    assert_eq!(origins("https://brief.example").await, 1);
    activity_gateway::service::retention::purge(&db.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(origins("https://brief.example").await, 0);
    assert_eq!(origins("https://app.example.com").await, 1);
    // Another org's routes answer as for an org that does not exist.
    let (status, body) = get(&app, &viewer, "/v1/orgs/org_globex/activity").await;
    assert_eq!(status, 404, "{body}");
    let body = gql(
        &app,
        &viewer,
        "{ org(id: \"org_globex\") { activity { nodes { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
        "{body}"
    );
    assert!(!body.to_string().contains("org_globex\",\"activity"));
}

async fn read_with_headers(
    request: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    (status, headers, body)
}

async fn viewer_tokens_are_made_with_viewer_create_from_checked_input(db: TestDb) {
    db.seed(50).await;
    let admin = db.key("org_acme", Role::Admin).await;
    let member = db.key("org_acme", Role::Member).await;
    let app = TestApp::spawn(&db.db).await;
    // A member lacks viewer:create.
    let body = create(&app, &member, json!({ "allowedOrigins": [] })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["required_permission"], "viewer:create",
        "{body}"
    );
    let (status, body) = app
        .post_json(
            &member,
            "/v1/orgs/org_acme/viewer-tokens",
            &json!({ "allowed_origins": [] }),
        )
        .await;
    assert_eq!(
        (status, body["details"]["required_permission"].as_str()),
        (403, Some("viewer:create")),
        "{body}"
    );
    // REST: snake_case in, {token, expires_at, id} out, and the token works.
    let (status, body) = app
        .post_json(&admin, "/v1/orgs/org_acme/viewer-tokens", &json!({ "ttl_seconds": 60, "allowed_origins": ["https://app.example.com"], "workspace_ids": [PRODUCTION], "filter": { "actions": ["read"] } }))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["expires_at", "id", "token"]);
    let token = body["token"].as_str().unwrap();
    let (status, page) = get(&app, token, "/v1/orgs/org_acme/activity?limit=200").await;
    assert_eq!(status, 200);
    assert_eq!(
        page["total"],
        db.count_events(&format!(
            "org_id = 'org_acme' AND workspace_id = '{PRODUCTION}' AND action = 'read'"
        ))
        .await
    );
    // Every problem at once, located; nothing stored.
    let keys_before = count(&db, "SELECT COUNT(*) FROM api_keys").await;
    let (status, body) = app
        .post_json(&admin, "/v1/orgs/org_acme/viewer-tokens", &json!({ "ttl_seconds": 90_000, "allowed_origins": ["https://ok.example", "ftp://x", "https://a.example/path", 7], "filter": { "status": "maybe", "start_time": "yesterday" } }))
        .await;
    assert_eq!(status, 422, "{body}");
    let mut locs: Vec<String> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].to_string())
        .collect();
    locs.sort();
    assert_eq!(
        locs,
        [
            r#"["body","allowed_origins",3]"#,
            r#"["body","filter","start_time"]"#,
            r#"["body","filter","status"]"#,
        ],
        "{body}"
    );
    let (status, body) = app
        .post_json(&admin, "/v1/orgs/org_acme/viewer-tokens", &json!({ "ttl_seconds": 90_000, "allowed_origins": ["https://ok.example", "ftp://x", "https://a.example/path"] }))
        .await;
    assert_eq!(status, 422, "{body}");
    let kinds: Vec<&str> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ttl_range", "origin_invalid", "origin_invalid"],
        "{body}"
    );
    // Origins at and past their limit.
    let origins = |n: usize| {
        (0..n)
            .map(|i| format!("https://o{i}.example"))
            .collect::<Vec<_>>()
    };
    let (status, body) = app
        .post_json(
            &admin,
            "/v1/orgs/org_acme/viewer-tokens",
            &json!({ "allowed_origins": origins(20) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post_json(
            &admin,
            "/v1/orgs/org_acme/viewer-tokens",
            &json!({ "allowed_origins": origins(21) }),
        )
        .await;
    assert_eq!(
        (status, body["detail"][0]["type"].as_str()),
        (422, Some("too_long")),
        "{body}"
    );
    // Workspaces at and past their limit (the same one, counted as given).
    for (n, status) in [(100, 200), (101, 422)] {
        let (got, body) = app
            .post_json(
                &admin,
                "/v1/orgs/org_acme/viewer-tokens",
                &json!({ "allowed_origins": [], "workspace_ids": vec![PRODUCTION; n] }),
            )
            .await;
        assert_eq!(got, status, "{n}: {body}");
        if status == 422 {
            assert_eq!(body["detail"][0]["loc"], json!(["body", "workspace_ids"]));
        }
    }
    // Workspaces and users must be the org's: another org's is unknown.
    for input in [
        json!({ "allowed_origins": [], "workspace_ids": ["ws_globex_production"] }),
        json!({ "allowed_origins": [], "user_id": "usr_globex_01" }),
    ] {
        let (status, body) = app
            .post_json(&admin, "/v1/orgs/org_acme/viewer-tokens", &input)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("RESOURCE_NOT_FOUND")),
            "{input}: {body}"
        );
    }
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM api_keys").await,
        keys_before + 2,
        "only the 20-origin and the 100-workspace tokens were stored"
    );
    // The secret is never stored, only its hash.
    let stored = format!(
        "SELECT COUNT(*) FROM api_keys WHERE secret_hash = '{token}' OR viewer LIKE '%{token}%'"
    );
    assert_eq!(count(&db, &stored).await, 0);
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.rows(sql, vec![]).await[0]
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn a_viewer_tokens_live_tail_carries_only_its_confinement(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (viewer, id) = token(
        &app,
        &key,
        json!({ "allowedOrigins": ["https://app.example.com"], "workspaceIds": [PRODUCTION] }),
    )
    .await;
    let bearer = format!("Bearer {viewer}");
    // From an origin the token does not allow, the socket is refused.
    let refused = Subscriber::open(
        &app,
        &[
            ("authorization", &bearer),
            ("origin", "https://evil.example"),
        ],
    )
    .await;
    assert!(refused.is_err());
    // The token in connection_init, with a forged origin in it, from a page
    // at an origin the token does not allow: refused too.
    let mut forged = Subscriber::open(&app, &[("origin", "https://evil.example")])
        .await
        .unwrap();
    forged
        .send(json!({ "type": "connection_init", "payload": { "Authorization": bearer, "Origin": "https://app.example.com" } }))
        .await;
    let answer = forged.message().await.unwrap_or(Value::Null);
    assert_ne!(answer["type"], "connection_ack", "{answer}");
    let mut subscriber = Subscriber::connect(
        &app,
        &[("origin", "https://app.example.com")],
        json!({ "Authorization": bearer }),
    )
    .await
    .unwrap();
    // Asking for another workspace too cannot widen the tail.
    subscriber
        .subscribe(json!({ "org": "org_acme", "filter": { "workspaceId": null } }))
        .await;
    wait_for_subscriptions(&app, &key, 1).await;
    let ids = ingest(
        &app,
        &key,
        "org_acme",
        json!([
            { "action": "read", "workspace_id": "ws_acme_staging" },
            { "action": "read", "workspace_id": PRODUCTION },
            { "action": "delete" },
            { "action": "update", "workspace_id": PRODUCTION },
        ]),
    )
    .await;
    let first = subscriber.edge().await;
    let second = subscriber.edge().await;
    assert_eq!(first["node"]["id"], ids[1].as_str());
    assert_eq!(second["node"]["id"], ids[3].as_str());
    // Revoked, the socket is closed: the next message is the close, so
    // nothing else arrived either.
    let body = revoke(&app, &key, &id).await;
    assert_eq!(body["data"]["revokeViewerToken"], true, "{body}");
    let closed = subscriber.message().await.unwrap_or(Value::Null);
    assert_eq!(closed["close"], 4403, "{closed}");
}

async fn a_viewer_tokens_export_holds_only_its_events_and_only_it_downloads_it(db: TestDb) {
    db.seed(300).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // Without canExport a token may not export.
    let (reader, _) = token(&app, &key, json!({ "allowedOrigins": [] })).await;
    let (status, body) = app.post_artifact(&reader, "export", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["details"]["required_permission"], "activity:export");
    // With it, the ZIP holds the workspace's events alone.
    let (exporter, _) = token(
        &app,
        &key,
        json!({ "allowedOrigins": [], "workspaceIds": [PRODUCTION], "canExport": true }),
    )
    .await;
    let (status, job) = app.post_artifact(&exporter, "export", json!({})).await;
    assert_eq!(status, 200, "{job}");
    let mine = job["upload_id"].as_str().unwrap().to_owned();
    let zip = app.finished_export(&exporter, &mine).await;
    assert_eq!(zip.status(), 200);
    let bytes = zip.bytes().await.unwrap();
    let workspaces = crate::common::zip_csv_column(&bytes, "events.csv", "workspace_id");
    let expected = db
        .count_events(&format!(
            "org_id = 'org_acme' AND workspace_id = '{PRODUCTION}'"
        ))
        .await;
    assert_eq!(workspaces.len() as i64, expected);
    assert!(workspaces.iter().all(|w| w == PRODUCTION));
    // The org's own export is not the token's to download, nor is one
    // token's export another's.
    let (status, job) = app.post_artifact(&key, "export", json!({})).await;
    assert_eq!(status, 200, "{job}");
    let whole = job["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(app.finished_export(&key, &whole).await.status(), 200);
    let (other, _) = token(
        &app,
        &key,
        json!({ "allowedOrigins": [], "workspaceIds": [PRODUCTION], "canExport": true }),
    )
    .await;
    for (token, upload) in [(&exporter, &whole), (&other, &mine)] {
        let (status, body) = get(
            &app,
            token,
            &format!("/api/v5/artifacts/activity/exports/{upload}"),
        )
        .await;
        assert_eq!(status, 404, "{body}");
    }
    // A token's export is an export of the org: its admin may fetch it.
    assert_eq!(app.finished_export(&key, &mine).await.status(), 200);
}

/// Two gateways on one database, each with its own credential cache: a
/// token made through one is taken by the other, and revoked through one is
/// refused by the other within a second.
async fn a_viewer_token_made_on_one_gateway_works_and_is_revoked_on_another(db: TestDb) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Admin).await;
    let first = TestApp::spawn(&db.db).await;
    let second = TestApp::spawn(&db.db).await;
    let (viewer, id) = token(&first, &key, json!({ "allowedOrigins": [] })).await;
    let feed = "/v1/orgs/org_acme/activity?limit=1";
    // Both gateways know the token (and keep it in their caches).
    for app in [&first, &second] {
        assert_eq!(get(app, &viewer, feed).await.0, 200);
    }
    let body = revoke(&first, &key, &id).await;
    assert_eq!(body["data"]["revokeViewerToken"], true, "{body}");
    let deadline = Instant::now() + Duration::from_secs(1);
    while get(&second, &viewer, feed).await.0 != 401 {
        assert!(
            Instant::now() < deadline,
            "the other gateway still takes it"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(get(&first, &viewer, feed).await.0, 401);
}
