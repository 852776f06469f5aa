//! The GraphQL limits: every query in the README passes, abusive ones fail with
//! BAD_USER_INPUT; node(id:) keeps tenants apart.

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use serde_json::json;

on_both_backends!(
    every_readme_query_passes_and_abusive_ones_fail,
    node_answers_another_orgs_ids_like_unknown_ones,
    the_standard_introspection_query_passes_and_a_self_multiplying_one_fails,
    ints_past_32_bits_are_refused_before_anything_runs,
);

/// graphql-js's `getIntrospectionQuery()` (v16, default options), which
/// GraphiQL, codegen and schema fetchers send: its `ofType` chain goes nine
/// levels down.
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description
  type { ...TypeRef }
  defaultValue
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name } } } } } } } } }
}
"#;

/// The ```graphql blocks of the README.
fn readme_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .split("```graphql")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect()
}

async fn every_readme_query_passes_and_abusive_ones_fail(db: TestDb) {
    db.seed(500).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let queries = readme_queries();
    assert!(!queries.is_empty());
    let (subscriptions, queries): (Vec<&String>, Vec<&String>) = queries
        .iter()
        .partition(|q| q.trim_start().starts_with("subscription"));
    // Over HTTP a subscription is refused only after it was parsed and
    // validated (limits included): that refusal alone says it is a valid one.
    assert!(!subscriptions.is_empty());
    for q in subscriptions {
        let (_, body) = app.graphql(&key, q).await;
        assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(
            body["errors"][0]["message"], "Subscriptions are not supported on this transport.",
            "{body}"
        );
    }
    for q in queries {
        let (status, body) = app.graphql(&key, q).await;
        assert_eq!(status, 200);
        assert!(body["errors"].is_null(), "README query fails: {body}");
        assert!(
            body["data"]["org"]["workspaces"]["nodes"]
                .as_array()
                .unwrap()
                .len()
                == 3
        );
        assert!(
            body["data"]["org"]["activitySummary"]["totalRequests"]
                .as_i64()
                .unwrap()
                >= 0
        );
    }
    // Directives: the limit refuses directive overloading (the same directive
    // repeated) before validation; 8 on a field reach validation, 9 do not.
    let with = |n: usize| {
        format!(
            "{{ viewer {{ principalId {} }} }}",
            "@include(if: true) ".repeat(n)
        )
    };
    let (_, two) = app
        .graphql(
            &key,
            "{ viewer { principalId @include(if: true) @skip(if: false) } }",
        )
        .await;
    assert!(two["errors"].is_null(), "{two}");
    let (_, eight) = app.graphql(&key, &with(8)).await;
    let messages = |v: &serde_json::Value| {
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        messages(&eight)
            .iter()
            .all(|m| m.contains("Duplicate directive")),
        "{eight}"
    );
    let (_, nine) = app.graphql(&key, &with(9)).await;
    assert_eq!(nine["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(messages(&nine).len(), 1);
    assert!(messages(&nine)[0].contains("directives"), "{nine}");
    // Depth: 12 levels pass, 13 fail.
    let nested = |levels: usize| {
        // viewer(1) org(2) then workspaces { nodes { apps { nodes ... } } } pairs.
        let mut q = String::from("id");
        let mut depth = 3;
        let mut inner = vec!["nodes", "apps", "nodes", "endpoints", "nodes"];
        let mut wrappers = vec!["workspaces"];
        while depth < levels {
            wrappers.push(inner.remove(0));
            depth += 1;
        }
        for w in wrappers.iter().rev() {
            // Small pages: this is about depth, not the cost of a fan-out.
            let field = if *w == "nodes" {
                w.to_string()
            } else {
                format!("{w}(first: 2)")
            };
            q = format!("{field} {{ {q} }}");
        }
        format!("{{ viewer {{ org {{ {q} }} }} }}")
    };
    let (_, body) = app.graphql(&key, &nested(8)).await;
    assert!(body["errors"].is_null(), "{body}");
    let deep = "{ viewer { org { workspaces { nodes { apps { nodes { endpoints { nodes { activity { nodes { workspace { apps { nodes { id } } } } } } } } } } } } } }";
    let (_, body) = app.graphql(&key, deep).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    // Complexity: a full page of 200 with every relation passes; many wide
    // pages at once do not.
    let full = "{ org(id: \"org_acme\") { activity(first: 200) { totalCount nodes { id timestamp traceId userId workspaceId appId endpointId augmentationId principalType principalId tokenId tokenType method path resourceType resourceId action statusCode success errorCode durationMs executionId stagesCompleted totalStages tokenUsage tokensTotal metadata user { email } workspace { name } app { name } endpoint { name } augmentation { name } } } } }";
    let (_, body) = app.graphql(&key, full).await;
    assert!(body["errors"].is_null(), "{}", body["errors"]);
    let wide: String = (0..60)
        .map(|i| format!("a{i}: activity(first: 200) {{ nodes {{ id action }} }} "))
        .collect();
    let (_, body) = app
        .graphql(&key, &format!("{{ org(id: \"org_acme\") {{ {wide} }} }}"))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{}",
        body["errors"]
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{}",
        body["errors"]
    );
}

async fn node_answers_another_orgs_ids_like_unknown_ones(db: TestDb) {
    db.seed(200).await;
    let globex = db.key("org_globex", Role::Admin).await;
    let acme = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, page) = app.get("/v1/orgs/org_acme/activity?limit=1", &acme).await;
    let acme_event = page["activities"][0]["id"].as_str().unwrap().to_owned();
    for (theirs, unknown) in [
        ("ws_acme_production", "ws_nope"),
        ("app_acme_production_billing", "app_nope"),
        ("ep_acme_production_billing_get", "ep_nope"),
        ("aug_acme_production_enrich", "aug_nope"),
        ("usr_acme_01", "usr_nope"),
        ("org_acme", "org_nope"),
        (acme_event.as_str(), "act_nope"),
    ] {
        let q = |id: &str| format!("{{ node(id: \"{id}\") {{ id }} }}");
        let (_, a) = app.graphql(&globex, &q(theirs)).await;
        let (_, b) = app.graphql(&globex, &q(unknown)).await;
        assert_eq!(a["data"]["node"], serde_json::Value::Null);
        assert_eq!(
            a["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
            "{theirs}"
        );
        let strip =
            |v: &serde_json::Value, id: &str| v["errors"][0].to_string().replace(id, "<id>");
        assert_eq!(strip(&a, theirs), strip(&b, unknown), "{theirs}");
        let (_, own) = app.graphql(&acme, &q(theirs)).await;
        assert_eq!(own["data"]["node"]["id"], json!(theirs));
    }
}

async fn the_standard_introspection_query_passes_and_a_self_multiplying_one_fails(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, body) = app.graphql(&key, INTROSPECTION_QUERY).await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{}", body["errors"]);
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(
        types.iter().any(|t| t["name"] == "Activity"),
        "{} types",
        types.len()
    );
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "QueryRoot");
    // Introspection's list fields nested three deep multiply the schema by
    // itself: refused whole, before it runs (graphql-js's rule).
    let two = "{ __schema { types { fields { type { fields { name } } } } } }";
    let (_, body) = app.graphql(&key, two).await;
    assert!(body["errors"].is_null(), "{body}");
    let three =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let (_, body) = app.graphql(&key, three).await;
    refused_before_running(&body, "introspection");
    // A chain counts every level: `__type`, each `ofType`, then `name`. Sixteen
    // levels pass, seventeen do not.
    let chain = |of_types: usize| {
        format!(
            "{{ __type(name: \"Org\") {{ {} name {} }} }}",
            "ofType {".repeat(of_types),
            "}".repeat(of_types)
        )
    };
    let (_, body) = app.graphql(&key, &chain(14)).await;
    assert!(body["errors"].is_null(), "{body}");
    // It ran: `Org` is a named type, so its `ofType` is null.
    assert_eq!(body["data"]["__type"], json!({ "ofType": null }), "{body}");
    let (_, body) = app.graphql(&key, &chain(15)).await;
    refused_before_running(&body, "introspection");
}

/// A request refused whole, as validation refuses: `BAD_USER_INPUT`, a
/// message that says `says`, and no data at all.
fn refused_before_running(body: &serde_json::Value, says: &str) {
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(says), "{body}");
    assert!(body.get("data").is_none(), "{body}");
}

async fn ints_past_32_bits_are_refused_before_anything_runs(db: TestDb) {
    db.seed(50).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let refused = |body: &serde_json::Value| refused_before_running(body, "2147483647");
    for literal in [
        r#"{ org(id: "org_acme") { sessions(pageSize: 2147483648) { totalCount } } }"#,
        r#"{ org(id: "org_acme") { activity(filter: { maxDurationMs: 2147483648 }) { totalCount } } }"#,
        r#"{ org(id: "org_acme") { activity(filter: { minDurationMs: -2147483649 }) { totalCount } } }"#,
        r#"{ org(id: "org_acme") { activity(first: 9223372036854775808) { totalCount } } }"#,
    ] {
        let (_, body) = app.graphql(&key, literal).await;
        refused(&body);
    }
    // The same through variables, a whole input object's included.
    let by_variable = r#"query($f: ActivityFilterInput, $n: Int) { org(id: "org_acme") { activity(filter: $f, first: $n) { totalCount } } }"#;
    for variables in [
        json!({ "f": { "maxDurationMs": 2147483648_i64 } }),
        json!({ "n": 4294967296_i64 }),
    ] {
        let (_, body) = app
            .graphql_with(by_variable, variables, |r| r.header("X-Api-Key", &key))
            .await;
        refused(&body);
    }
    // A variable's default value is held to the same range.
    let (_, body) = app
        .graphql(
            &key,
            r#"query($n: Int = 2147483648) { org(id: "org_acme") { activity(first: $n) { totalCount } } }"#,
        )
        .await;
    refused(&body);
    // At the edge: the largest Int is a valid duration bound, one that no
    // stored duration passes.
    let (_, body) = app
        .graphql(&key, r#"{ org(id: "org_acme") { all: activity { totalCount } bounded: activity(filter: { maxDurationMs: 2147483647 }) { totalCount } } }"#)
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(
        body["data"]["org"]["all"]["totalCount"].as_i64().unwrap() > 0,
        "{body}"
    );
    assert_eq!(
        body["data"]["org"]["bounded"], body["data"]["org"]["all"],
        "{body}"
    );
}
