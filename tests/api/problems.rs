//! Problems: created and resolved over REST and GraphQL, listed, and
//! refused when they must be, one behaviour per test, on both backends.
//! The demo data set holds 8 problems of `org_acme`, 3 of them resolved.

use std::collections::HashSet;

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use serde_json::{json, Value};

on_both_backends!(
    a_problem_is_created_then_resolved_unresolved_and_resolved_again_as_its_fields_follow,
    graphql_creates_a_problem_linked_to_an_activity_and_a_session_lists_it_first_and_resolves_it,
    the_problems_page_size_is_served_at_its_edges_and_refused_past_them,
    an_unknown_or_another_orgs_problem_or_reference_answers_404_alike,
    a_viewer_is_refused_creating_or_resolving_problems_with_403_naming_the_permission,
    invalid_problem_bodies_answer_422_at_their_field_while_the_limits_pass,
);

/// The demo data set, a member of `org_acme`, and the application.
async fn member_app(db: &TestDb) -> (TestApp, String) {
    db.seed(50).await;
    let member = db.key("org_acme", Role::Member).await;
    (TestApp::spawn(&db.db).await, member)
}

/// Creates a problem over REST and answers its id.
async fn create(app: &TestApp, key: &str) -> String {
    let (status, created) = app
        .post_artifact(
            key,
            "problem",
            json!({ "type": "latency", "message": "p95 above 2s" }),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    created["problem_id"].as_str().unwrap().to_owned()
}

async fn a_problem_is_created_then_resolved_unresolved_and_resolved_again_as_its_fields_follow(
    db: TestDb,
) {
    let (app, member) = member_app(&db).await;
    let (status, created) = app
        .post_artifact(
            &member,
            "problem",
            json!({ "type": "latency", "message": "p95 above 2s" }),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        (&created["success"], &created["message"]),
        (&json!(true), &json!("Problem created"))
    );
    let id = created["problem_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("prb_"));

    // Resolving is the default: updated_at moves, resolved_* follow.
    let (status, resolved) = app
        .post_artifact(&member, "resolve", json!({ "problem_id": id }))
        .await;
    assert_eq!(
        (status, &resolved["resolved"], &resolved["problem_id"]),
        (200, &json!(true), &json!(id))
    );
    let problem_query = format!(
        r#"{{ node(id: "{id}") {{ ... on Problem {{ id type message resolved resolvedAt resolvedBy updatedAt }} }} }}"#
    );
    let after_resolve = app.execute(&member, &problem_query).await["data"]["node"].clone();
    assert_eq!(
        (&after_resolve["resolved"], &after_resolve["updatedAt"]),
        (&json!(true), &resolved["updated_at"])
    );
    assert!(
        after_resolve["resolvedAt"].is_string()
            && after_resolve["resolvedBy"]
                .as_str()
                .unwrap()
                .starts_with("key_")
    );
    let (_, unresolved) = app
        .post_artifact(
            &member,
            "resolve",
            json!({ "problem_id": id, "resolved": false }),
        )
        .await;
    assert_eq!(unresolved["resolved"], false);
    assert!(unresolved["updated_at"].as_str().unwrap() >= resolved["updated_at"].as_str().unwrap());
    let after_unresolve = app.execute(&member, &problem_query).await["data"]["node"].clone();
    assert_eq!(
        (
            &after_unresolve["resolvedAt"],
            &after_unresolve["resolvedBy"]
        ),
        (&Value::Null, &Value::Null)
    );
    let (_, again) = app
        .post_artifact(&member, "resolve", json!({ "problem_id": id }))
        .await;
    assert_eq!(again["resolved"], true);
    app.stop().await;
}

async fn graphql_creates_a_problem_linked_to_an_activity_and_a_session_lists_it_first_and_resolves_it(
    db: TestDb,
) {
    let (app, member) = member_app(&db).await;
    let (_, page) = app.get("/v1/orgs/org_acme/activity?limit=1", &member).await;
    let (_, sessions) = app
        .post_artifact(&member, "search", json!({ "page_size": 1 }))
        .await;
    let activity = page["activities"][0]["id"].as_str().unwrap().to_owned();
    let session = sessions["data"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mutation = format!(
        r#"mutation {{ createProblem(type: "access", message: "odd emulation", activityId: "{activity}", sessionId: "{session}") {{
            problemId success problem {{ type activity {{ id }} session {{ id kind }} }} }} }}"#
    );
    let body = app.execute(&member, &mutation).await;
    let made = &body["data"]["createProblem"];
    assert_eq!(made["success"], true, "{body}");
    assert_eq!(
        (
            &made["problem"]["activity"]["id"],
            &made["problem"]["session"]["id"]
        ),
        (&json!(activity), &json!(session))
    );
    let id = made["problemId"].as_str().unwrap().to_owned();
    let body = app.execute(&member, &format!(r#"mutation {{ resolveProblem(problemId: "{id}") {{ resolved problem {{ resolved }} }} }}"#)).await;
    assert_eq!(
        body["data"]["resolveProblem"],
        json!({ "resolved": true, "problem": { "resolved": true } })
    );
    let body = app.execute(&member, r#"{ org(id: "org_acme") { all: problems(first: 3) { totalCount edges { node { id } } } open: problems(resolved: false) { totalCount } } }"#).await;
    let all = &body["data"]["org"]["all"];
    assert_eq!(
        all["totalCount"], 9,
        "8 demo problems and the new one: {body}"
    );
    assert_eq!(all["edges"][0]["node"]["id"], json!(id), "newest first");
    assert_eq!(
        body["data"]["org"]["open"]["totalCount"], 5,
        "the demo's 5 open ones; the new one is resolved"
    );
    // Walking the pages yields each problem once.
    let mut walked: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let arg = after
            .as_ref()
            .map(|a| format!(r#", after: "{a}""#))
            .unwrap_or_default();
        let body = app.execute(&member, &format!(r#"{{ org(id: "org_acme") {{ problems(first: 3{arg}) {{ nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }} }}"#)).await;
        let page = &body["data"]["org"]["problems"];
        walked.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(Into::into);
    }
    assert_eq!(walked.len(), 9);
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 9);
    app.stop().await;
}

async fn the_problems_page_size_is_served_at_its_edges_and_refused_past_them(db: TestDb) {
    let (app, member) = member_app(&db).await;
    for (first, kind) in [(0, "greater_than_equal"), (201, "less_than_equal")] {
        let body = app
            .execute(
                &member,
                &format!(
                    r#"{{ org(id: "org_acme") {{ problems(first: {first}) {{ totalCount }} }} }}"#
                ),
            )
            .await;
        let detail = &body["errors"][0]["extensions"]["details"]["detail"][0];
        assert_eq!(
            (&detail["loc"], &detail["type"]),
            (&json!(["first"]), &json!(kind)),
            "{body}"
        );
    }
    for (first, served) in [(1, 1), (200, 8)] {
        let body = app.execute(&member, &format!(r#"{{ org(id: "org_acme") {{ problems(first: {first}) {{ nodes {{ id }} }} }} }}"#)).await;
        let nodes = body["data"]["org"]["problems"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), served, "{body}");
    }
    app.stop().await;
}

async fn an_unknown_or_another_orgs_problem_or_reference_answers_404_alike(db: TestDb) {
    let (app, member) = member_app(&db).await;
    let theirs = db.key("org_globex", Role::Admin).await;
    let id = create(&app, &member).await;
    for unknown in ["prb_nope", "prb_globex_01"] {
        let (status, body) = app
            .post_artifact(&member, "resolve", json!({ "problem_id": unknown }))
            .await;
        assert_eq!(
            (status, &body["error"], &body["details"]["resource_id"]),
            (404, &json!("RESOURCE_NOT_FOUND"), &json!(unknown))
        );
    }
    let (status, _) = app
        .post_artifact(&theirs, "resolve", json!({ "problem_id": id }))
        .await;
    assert_eq!(status, 404, "another org's problem is unknown to it");
    let (status, _) = app
        .post_artifact(
            &member,
            "problem",
            json!({ "type": "x", "message": "y", "session_id": "ses_globex_00001" }),
        )
        .await;
    assert_eq!(status, 404, "references must be the org's own");
    app.stop().await;
}

async fn a_viewer_is_refused_creating_or_resolving_problems_with_403_naming_the_permission(
    db: TestDb,
) {
    let (app, member) = member_app(&db).await;
    let viewer = db.key("org_acme", Role::Viewer).await;
    let id = create(&app, &member).await;
    let (status, body) = app
        .post_artifact(&viewer, "problem", json!({ "type": "x", "message": "y" }))
        .await;
    assert_eq!(
        (status, &body["details"]["required_permission"]),
        (403, &json!("problem:create"))
    );
    let (status, body) = app
        .post_artifact(&viewer, "resolve", json!({ "problem_id": id }))
        .await;
    assert_eq!(
        (status, &body["details"]["required_permission"]),
        (403, &json!("problem:resolve"))
    );
    let (_, body) = app
        .graphql(
            &viewer,
            r#"mutation { createProblem(type: "x", message: "y") { success } }"#,
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["required_permission"],
        "problem:create"
    );
    app.stop().await;
}

async fn invalid_problem_bodies_answer_422_at_their_field_while_the_limits_pass(db: TestDb) {
    let (app, member) = member_app(&db).await;
    let long = |n: usize| "x".repeat(n);
    for (body, loc, kind) in [
        (
            json!({ "message": "m" }),
            json!(["body", "type"]),
            "missing",
        ),
        (
            json!({ "type": "t" }),
            json!(["body", "message"]),
            "missing",
        ),
        (
            json!({ "type": "", "message": "m" }),
            json!(["body", "type"]),
            "string_too_short",
        ),
        (
            json!({ "type": "t", "message": "   " }),
            json!(["body", "message"]),
            "string_too_short",
        ),
        (
            json!({ "type": long(101), "message": "m" }),
            json!(["body", "type"]),
            "string_too_long",
        ),
        (
            json!({ "type": "t", "message": long(4001) }),
            json!(["body", "message"]),
            "string_too_long",
        ),
        (
            json!({ "type": 5, "message": "m" }),
            json!(["body", "type"]),
            "string_type",
        ),
    ] {
        let (status, answer) = app.post_artifact(&member, "problem", body.clone()).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(
            (&answer["detail"][0]["loc"], &answer["detail"][0]["type"]),
            (&loc, &json!(kind)),
            "{answer}"
        );
    }
    let (_, both) = app.post_artifact(&member, "problem", json!({})).await;
    assert_eq!(
        both["detail"].as_array().unwrap().len(),
        2,
        "every missing field is reported"
    );
    let (status, _) = app
        .post_artifact(
            &member,
            "problem",
            json!({ "type": long(100), "message": long(4000) }),
        )
        .await;
    assert_eq!(status, 200, "at the limits");
    let (status, body) = app
        .post_artifact(&member, "resolve", json!({ "resolved": true }))
        .await;
    assert_eq!(
        (status, &body["detail"][0]["loc"]),
        (422, &json!(["body", "problem_id"]))
    );
    let body = app
        .execute(
            &member,
            r#"mutation { createProblem(type: "", message: "m") { success } }"#,
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["detail"][0]["loc"],
        json!(["type"])
    );
    app.stop().await;
}
