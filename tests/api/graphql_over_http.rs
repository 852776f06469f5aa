//! GraphQL over HTTP, exactly: the spec's own audit suite (npm `graphql-http`,
//! pinned in `tests/conformance/`) against the real server on both backends,
//! and the behaviours the suite leaves to the server, each checked on its own.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use serde_json::{json, Value};

on_both_backends!(
    the_spec_audit_suite_passes_with_no_warning,
    answers_list_fields_in_selection_order,
    get_selects_the_named_operation,
    bodies_that_are_not_json_are_refused_unread,
    malformed_request_shapes_answer_400_with_plain_messages,
    graphql_response_json_answers_request_errors_with_400_and_no_data,
    persisted_queries_run_from_their_hash_within_their_org,
    get_refuses_a_mutation_named_by_its_hash,
    a_kept_document_is_checked_again_with_each_requests_variables,
);

/// `tests/conformance` with its pinned packages installed (`npm ci`, once).
fn conformance() -> PathBuf {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance"));
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if !*installed && !dir.join("node_modules/graphql-http/package.json").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (Node.js and npm are needed for the conformance suite)");
        assert!(status.success(), "npm ci in tests/conformance failed");
    }
    *installed = true;
    dir
}

async fn the_spec_audit_suite_passes_with_no_warning(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let output = tokio::process::Command::new("node")
        .arg("audit.mjs")
        .arg(app.url("/graphql"))
        .arg(&key)
        .current_dir(conformance())
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    // graphql-http 1.23.1 has 61 server audits: MUST, SHOULD and MAY alike.
    assert_eq!(results.len(), 61, "{results:?}");
    let not_ok: Vec<&Value> = results.iter().filter(|r| r["status"] != "ok").collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
}

async fn post(
    app: &TestApp,
    key: &str,
    content_type: Option<&str>,
    accept: &str,
    body: &str,
) -> (u16, String) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("X-Api-Key", key)
        .header("Accept", accept)
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn answers_list_fields_in_selection_order(db: TestDb) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    // `totalCount` waits for the database, the names do not: resolved
    // concurrently, they would finish in the other order.
    let query = r#"{ org(id: "org_acme") { activity(first: 2) { totalCount pageInfo { hasNextPage } nodes { action id } } name id ... on Org { viewerName: name } } }"#;
    let (status, text) = post(
        &app,
        &key,
        Some("application/json"),
        "application/json",
        &json!({ "query": query }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let order = [
        "\"activity\"",
        "\"totalCount\"",
        "\"pageInfo\"",
        "\"nodes\"",
        "\"action\"",
        "\"id\"",
        "\"name\"",
        "\"viewerName\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| text.find(key).unwrap_or_else(|| panic!("{key} in {text}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

async fn get_selects_the_named_operation(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let get = |params: &[(&str, &str)]| {
        let request = app
            .client
            .get(app.url("/graphql"))
            .header("X-Api-Key", &key)
            .query(params);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let document = r#"query Viewer { viewer { principalId } } query Org { org(id: "org_acme") { id } } mutation Refresh { refreshActivity { refreshedViews } }"#;
    let (status, body) = get(&[("query", document), ("operationName", "Org")]).await;
    assert_eq!(
        (status, &body["data"]["org"]["id"]),
        (200, &json!("org_acme")),
        "{body}"
    );
    let (status, body) = get(&[("query", document), ("operationName", "Viewer")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["viewer"]["principalId"].is_string(), "{body}");
    // Selecting the mutation over GET is 405; naming none of several asks for a name.
    let (status, body) = get(&[("query", document), ("operationName", "Refresh")]).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (405, &json!("METHOD_NOT_ALLOWED")),
        "{body}"
    );
    let (status, body) = get(&[("query", document)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Operation name required"),
        "{body}"
    );
    // Variables travel as JSON text.
    let (status, body) = get(&[
        ("query", "query($id: ID!) { org(id: $id) { id } }"),
        ("variables", r#"{"id":"org_acme"}"#),
    ])
    .await;
    assert_eq!(
        (status, &body["data"]["org"]["id"]),
        (200, &json!("org_acme")),
        "{body}"
    );
    let (status, body) = get(&[
        ("query", "{ viewer { principalId } }"),
        ("variables", "[1]"),
    ])
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.get("data").is_none(), "{body}");
}

async fn bodies_that_are_not_json_are_refused_unread(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let before = db.count_events("action = 'forged'").await;
    let mutation = json!({ "query": r#"mutation { ingestActivity(events: [{ action: "forged" }]) { ingested } }"# }).to_string();
    // What a cross-site form or `text/plain` fetch can send without asking first.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/graphql"),
        Some("application/json; charset=latin1"),
    ] {
        let (status, text) = post(&app, &key, content_type, "application/json", &mutation).await;
        assert_eq!(status, 415, "{content_type:?}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{body}"
        );
    }
    assert_eq!(
        db.count_events("action = 'forged'").await,
        before,
        "nothing ran"
    );
    // JSON, with or without a UTF-8 charset, runs.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
    ] {
        let (status, text) = post(
            &app,
            &key,
            Some(content_type),
            "application/json",
            r#"{"query":"{ __typename }"}"#,
        )
        .await;
        assert_eq!(status, 200, "{content_type}: {text}");
    }
    // No credential: 401 whatever the body and its type, before reading it.
    for (content_type, body) in [
        (Some("text/plain"), ""),
        (Some("application/json"), "{"),
        (None, ""),
    ] {
        let mut request = app.client.post(app.url("/graphql")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        assert_eq!(request.send().await.unwrap().status(), 401);
    }
}

async fn malformed_request_shapes_answer_400_with_plain_messages(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    for (body, says) in [
        ("", "empty"),
        ("{", "not valid JSON"),
        ("42", "JSON object"),
        ("[]", "no operation"),
        ("[42]", "Operation 0 is not a JSON object"),
        (r#"{"variables":{}}"#, "`query` is missing"),
        (r#"{"query":{"a":1}}"#, "`query` must be a string"),
        (
            r#"{"query":"{ __typename }","operationName":7}"#,
            "`operationName`",
        ),
        (
            r#"{"query":"{ __typename }","variables":"{}"}"#,
            "`variables`",
        ),
        (
            r#"{"query":"{ __typename }","extensions":[1]}"#,
            "`extensions`",
        ),
        (
            r#"[{"query":"{ __typename }"},{"query":false}]"#,
            "Operation 1: `query` must be a string",
        ),
    ] {
        let (status, text) = post(
            &app,
            &key,
            Some("application/json"),
            "application/json",
            body,
        )
        .await;
        assert_eq!(status, 400, "{body}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        assert!(answer.get("data").is_none(), "{text}");
        for internal in ["enum", "variant", "BatchRequest", "serde", "struct"] {
            assert!(!message.contains(internal), "{body}: {message}");
        }
    }
}

async fn graphql_response_json_answers_request_errors_with_400_and_no_data(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let new_media = "application/graphql-response+json";
    for query in [
        "{",                                                                            // parse
        "{ nope }", // validation
        r#"{ org(id: "org_acme") { sessions(pageSize: 2147483648) { totalCount } } }"#, // Int range
    ] {
        let body = json!({ "query": query }).to_string();
        let (status, text) = post(&app, &key, Some("application/json"), new_media, &body).await;
        assert_eq!(status, 400, "{query}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert!(answer.get("data").is_none(), "{text}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        // The legacy media type keeps 200, still without `data`.
        let (status, text) = post(
            &app,
            &key,
            Some("application/json"),
            "application/json",
            &body,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(
            serde_json::from_str::<Value>(&text)
                .unwrap()
                .get("data")
                .is_none(),
            "{text}"
        );
    }
    // A variable that cannot be coerced is a request error too.
    let body = json!({ "query": "query($n: Int) { org(id: \"org_acme\") { activity(first: $n) { totalCount } } }", "variables": { "n": "many" } }).to_string();
    let (status, text) = post(&app, &key, Some("application/json"), new_media, &body).await;
    assert_eq!(status, 400, "{text}");
    // Once execution began, the answer is 200 with `data`, errors or not.
    let body = json!({ "query": r#"{ viewer { principalId } node(id: "act_missing") { id } }"# })
        .to_string();
    let (status, text) = post(&app, &key, Some("application/json"), new_media, &body).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert!(
        answer["data"]["viewer"]["principalId"].is_string(),
        "{text}"
    );
    assert!(answer["errors"].is_array(), "{text}");
}

/// Apollo's `extensions.persistedQuery`, with the hash of `query`.
fn persisted(query: &str, version: u64) -> Value {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(query.as_bytes()));
    json!({ "persistedQuery": { "version": version, "sha256Hash": hash } })
}

async fn post_json(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    let (status, text) = post(
        app,
        key,
        Some("application/json"),
        "application/json",
        &body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap())
}

/// A GET that names its operation by `extensions` alone.
async fn get_by_hash(app: &TestApp, key: &str, extensions: &Value) -> reqwest::Response {
    app.client
        .get(app.url("/graphql"))
        .header("X-Api-Key", key)
        .query(&[("extensions", extensions.to_string())])
        .send()
        .await
        .unwrap()
}

async fn persisted_queries_run_from_their_hash_within_their_org(db: TestDb) {
    db.seed(10).await;
    let acme = db.key("org_acme", Role::Viewer).await;
    let globex = db.key("org_globex", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let query = "{ viewer { principalId tokenType } }";
    let extensions = persisted(query, 1);

    // A hash never sent with its text is not known: Apollo's client then sends both.
    let (status, body) = post_json(&app, &acme, json!({ "extensions": extensions })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    let (status, with_text) = post_json(
        &app,
        &acme,
        json!({ "query": query, "extensions": extensions }),
    )
    .await;
    assert_eq!(status, 200, "{with_text}");
    assert_eq!(with_text["data"]["viewer"]["tokenType"], "api_key");

    // Then the hash alone is enough, over POST and over GET.
    let (status, by_hash) = post_json(&app, &acme, json!({ "extensions": extensions })).await;
    assert_eq!((status, &by_hash), (200, &with_text));
    let response = get_by_hash(&app, &acme, &extensions).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), with_text);

    // Another org cannot use, or learn of, the text acme sent.
    let (_, body) = post_json(&app, &globex, json!({ "extensions": extensions })).await;
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );

    // A hash that is not the text's, and an unknown version, are refused.
    let wrong = persisted("{ viewer { principalId } }", 1);
    let (_, body) = post_json(&app, &acme, json!({ "query": query, "extensions": wrong })).await;
    assert_eq!(
        (
            &body["errors"][0]["message"],
            &body["errors"][0]["extensions"]["code"]
        ),
        (
            &json!("provided sha does not match query"),
            &json!("BAD_USER_INPUT")
        ),
        "{body}"
    );
    let (_, body) = post_json(
        &app,
        &acme,
        json!({ "query": query, "extensions": persisted(query, 2) }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["message"], "Unsupported persisted query version",
        "{body}"
    );
    // Without `query` and without a persisted query, `query` is still missing.
    let (status, body) = post_json(&app, &acme, json!({ "extensions": {} })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["message"], "`query` is missing", "{body}");
}

async fn get_refuses_a_mutation_named_by_its_hash(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let mutation = "mutation { refreshActivity { refreshedViews } }";
    let extensions = persisted(mutation, 1);
    let (status, body) = post_json(
        &app,
        &key,
        json!({ "query": mutation, "extensions": extensions }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["refreshActivity"].is_object(), "{body}");
    let response = get_by_hash(&app, &key, &extensions).await;
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

async fn a_kept_document_is_checked_again_with_each_requests_variables(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let query =
        r#"query($n: Int) { org(id: "org_acme") { activity(first: $n) { nodes { id } } } }"#;
    let (status, body) = post_json(
        &app,
        &key,
        json!({ "query": query, "variables": { "n": 3 } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["org"]["activity"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // The same text again, kept parsed: its new variable is still checked first.
    let (status, body) = post_json(
        &app,
        &key,
        json!({ "query": query, "variables": { "n": 4_294_967_296_i64 } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is not a 32-bit Int"),
        "{body}"
    );
}
