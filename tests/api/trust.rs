//! Credentials, permissions and tenancy an auditor can trust: secrets nobody
//! can compute, every read behind its permission, per-org event identity,
//! sealed cursors, and reads that never change what they read.

use std::collections::BTreeSet;

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::permission::{Permission, Role};
use activity_gateway::seed::{self, SeedOptions};
use activity_gateway::service::keys::NewKey;
use base64::Engine as _;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

on_both_backends!(
    seeding_twice_with_one_seed_gives_different_key_secrets,
    malformed_secrets_are_refused_like_unknown_ones,
    graphql_directory_reads_need_activity_read,
    node_needs_the_permission_of_the_kind_of_id_it_resolves,
    an_activity_id_is_unique_within_its_org_only,
    events_stored_before_per_org_ids_keep_their_ids_and_order,
    forged_and_foreign_cursors_answer_one_and_the_same_422,
    a_recorded_read_of_a_feed_does_not_change_that_feed,
);

/// A key of org_acme with exactly these permissions.
async fn key_with_only(db: &TestDb, permissions: &[Permission]) -> String {
    db.key_with(NewKey {
        org_id: "org_acme".into(),
        role: None,
        permissions: permissions.iter().copied().collect::<BTreeSet<_>>(),
        user_id: None,
        name: None,
    })
    .await
}

async fn one_id(db: &TestDb, sql: &str) -> String {
    let row = db
        .db
        .query_one_raw(Statement::from_string(db.db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("a row for {sql}"));
    row.try_get::<String>("", "id").unwrap()
}

async fn key_hashes(db: &TestDb) -> Vec<(String, String)> {
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            db.db.get_database_backend(),
            "SELECT id, secret_hash FROM api_keys ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "id").unwrap(),
                r.try_get::<String>("", "secret_hash").unwrap(),
            )
        })
        .collect()
}

async fn seeding_twice_with_one_seed_gives_different_key_secrets(db: TestDb) {
    let options = SeedOptions {
        events: 100,
        days: 2,
        seed: 42,
    };
    seed::seed(&db.db, &options, |_| {}).await.unwrap();
    let first = key_hashes(&db).await;
    assert!(!first.is_empty(), "the demo set has service keys");
    seed::seed(&db.db, &options, |_| {}).await.unwrap();
    let second = key_hashes(&db).await;
    let ids = |v: &[(String, String)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&second), "the seed decides the data");
    for ((id, a), (_, b)) in first.iter().zip(&second) {
        assert_ne!(a, b, "key {id}: the seed must never decide a secret");
    }
}

async fn malformed_secrets_are_refused_like_unknown_ones(db: TestDb) {
    db.seed(50).await;
    let good = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &good).await;
    assert_eq!(status, 200);
    let unknown_but_well_formed = format!("agk_{}", "A".repeat(43));
    for secret in [
        unknown_but_well_formed.as_str(),
        "demo-key_acme_ingest-00112233445566778899aabbccddeeff",
        &good[..good.len() - 1],
        &format!("{good}x"),
        &good.replacen("agk_", "agx_", 1),
        &format!("{}!", &good[..good.len() - 1]),
    ] {
        let (status, body) = app.get("/v1/orgs/org_acme/activity?limit=1", secret).await;
        assert_eq!(status, 401, "{secret}: {body}");
        assert_eq!(body["error"], "AUTHENTICATION_FAILED");
    }
}

fn first_error(body: &Value) -> &Value {
    &body["errors"][0]
}

fn assert_forbidden(body: &Value, permission: &str) {
    let error = first_error(body);
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{body}");
    assert_eq!(
        error["extensions"]["details"]["required_permission"], permission,
        "{body}"
    );
}

async fn graphql_directory_reads_need_activity_read(db: TestDb) {
    db.seed(50).await;
    let app = TestApp::spawn(&db.db).await;
    for only in [
        Permission::DocsRead,
        Permission::ActivityWrite,
        Permission::ActivityExport,
    ] {
        let key = key_with_only(&db, &[only]).await;
        for query in [
            r#"{ org(id: "org_acme") { users { nodes { email } } } }"#,
            r#"{ org(id: "org_acme") { workspaces { nodes { name } } } }"#,
            r#"{ viewer { org { name } } }"#,
        ] {
            let (status, body) = app.graphql(&key, query).await;
            assert_eq!(status, 200);
            assert_forbidden(&body, "activity:read");
            assert!(
                !body.to_string().contains('@'),
                "{only:?} read an email: {body}"
            );
        }
    }
}

async fn node_needs_the_permission_of_the_kind_of_id_it_resolves(db: TestDb) {
    db.seed(200).await;
    let session = one_id(
        &db,
        "SELECT id FROM sessions WHERE org_id = 'org_acme' LIMIT 1",
    )
    .await;
    let activity = one_id(
        &db,
        "SELECT id FROM activity_events WHERE org_id = 'org_acme' LIMIT 1",
    )
    .await;
    let problem = one_id(
        &db,
        "SELECT id FROM problems WHERE org_id = 'org_acme' LIMIT 1",
    )
    .await;
    let app = TestApp::spawn(&db.db).await;
    let docs_only = key_with_only(&db, &[Permission::DocsRead]).await;
    let cases = [
        (
            format!(
                r#"{{ node(id: "{session}") {{ ... on Session {{ ipAddress userAgent }} }} }}"#
            ),
            "session:read",
        ),
        (
            format!(r#"{{ node(id: "{activity}") {{ ... on Activity {{ path }} }} }}"#),
            "activity:read",
        ),
        (
            format!(r#"{{ node(id: "{problem}") {{ ... on Problem {{ message }} }} }}"#),
            "activity:read",
        ),
        (
            r#"{ node(id: "usr_acme_01") { ... on User { email } } }"#.to_owned(),
            "activity:read",
        ),
    ];
    for (query, permission) in &cases {
        let (_, body) = app.graphql(&docs_only, query).await;
        assert_forbidden(&body, permission);
        assert!(body["data"]["node"].is_null(), "{body}");
    }
    // Holding activity:read is not enough for a session.
    let reader = key_with_only(&db, &[Permission::ActivityRead]).await;
    let (_, body) = app.graphql(&reader, &cases[0].0).await;
    assert_forbidden(&body, "session:read");
    // And the right permission reads it.
    let sessions = key_with_only(&db, &[Permission::SessionRead]).await;
    let (_, body) = app.graphql(&sessions, &cases[0].0).await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["node"]["ipAddress"].is_string(), "{body}");
}

async fn ingest(app: &TestApp, key: &str, org: &str, events: Value) -> (u16, Value) {
    app.post_json(key, &format!("/v1/orgs/{org}/activity"), &events)
        .await
}

async fn an_activity_id_is_unique_within_its_org_only(db: TestDb) {
    db.seed(50).await;
    let acme = db.key("org_acme", Role::Admin).await;
    let globex = db.key("org_globex", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let id = "act_0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let (status, body) = ingest(
        &app,
        &globex,
        "org_globex",
        json!([{ "id": id, "action": "globex-secret" }]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 1);
    // The same id in another org: stored, not reported as a duplicate.
    let (status, body) = ingest(
        &app,
        &acme,
        "org_acme",
        json!([{ "id": id, "action": "acme-own" }]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 1, "{body}");
    assert_eq!(body["duplicates"], 0, "{body}");
    // Idempotency still holds within one org.
    let (_, body) = ingest(
        &app,
        &acme,
        "org_acme",
        json!([{ "id": id, "action": "acme-own" }]),
    )
    .await;
    assert_eq!(
        (body["stored"].clone(), body["duplicates"].clone()),
        (json!(0), json!(1))
    );
    let query = format!(r#"{{ node(id: "{id}") {{ ... on Activity {{ id action }} }} }}"#);
    let (_, body) = app.graphql(&acme, &query).await;
    assert_eq!(body["data"]["node"]["action"], "acme-own", "{body}");
    let (_, body) = app.graphql(&globex, &query).await;
    assert_eq!(body["data"]["node"]["action"], "globex-secret", "{body}");
    assert_eq!(
        db.count_events(&format!("id = '{id}'")).await,
        2,
        "one event per org"
    );
}

async fn events_stored_before_per_org_ids_keep_their_ids_and_order(_migrated: TestDb) {
    use migration::MigratorTrait as _;
    let db = TestDb::empty(_migrated.backend).await.unwrap();
    migration::Migrator::up(&db.db, Some(1)).await.unwrap();
    let insert = |seq_id: &str, org: &str| {
        format!(
            "INSERT INTO activity_events (id, org_id, ts, action, status_code, success, duration_ms, token_usage, tokens_total, metadata) VALUES ('{seq_id}', '{org}', 1, 'old', 200, true, 5, '{{}}', 0, '{{}}')"
        )
    };
    for (id, org) in [("act_a", "org_x"), ("act_b", "org_x"), ("act_c", "org_y")] {
        db.db.execute_unprepared(&insert(id, org)).await.unwrap();
    }
    activity_gateway::db::migrate(&db.db).await.unwrap();
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            db.db.get_database_backend(),
            "SELECT seq, id, org_id FROM activity_events ORDER BY seq",
        ))
        .await
        .unwrap();
    let kept: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "seq").unwrap(),
                r.try_get("", "id").unwrap(),
                r.try_get("", "org_id").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (1, "act_a".to_owned(), "org_x".to_owned()),
            (2, "act_b".to_owned(), "org_x".to_owned()),
            (3, "act_c".to_owned(), "org_y".to_owned())
        ]
    );
    // The same id in another org is now welcome; in the same org it is not.
    db.db
        .execute_unprepared(&insert("act_a", "org_y"))
        .await
        .unwrap();
    assert!(db
        .db
        .execute_unprepared(&insert("act_a", "org_x"))
        .await
        .is_err());
    let row = db
        .db
        .query_one_raw(Statement::from_string(
            db.db.get_database_backend(),
            "SELECT MAX(seq) AS n FROM activity_events",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        4,
        "seq goes on after the rebuild"
    );
}

/// The 422 a bad cursor answers, without its `input` (which echoes the cursor).
fn cursor_refusal(body: &Value) -> Value {
    let detail = &body["detail"];
    assert_eq!(detail.as_array().map(Vec::len), Some(1), "{body}");
    json!({ "loc": detail[0]["loc"], "type": detail[0]["type"], "msg": detail[0]["msg"] })
}

async fn forged_and_foreign_cursors_answer_one_and_the_same_422(db: TestDb) {
    db.seed(500).await;
    let acme = db.key("org_acme", Role::Viewer).await;
    let globex = db.key("org_globex", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let feed = "/v1/orgs/org_acme/activity?limit=2";
    let (_, page) = app.get(feed, &acme).await;
    let genuine = page["next_cursor"].as_str().unwrap().to_owned();
    let (status, _) = app.get(&format!("{feed}&cursor={genuine}"), &acme).await;
    assert_eq!(status, 200);

    // A cursor forged the way an unkeyed checksum allows: same binding, other position.
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(genuine.split('.').next().unwrap())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let unkeyed_forgery = match raw.split('|').collect::<Vec<_>>()[..] {
        [version, _ts, id, bound, _sum] => {
            use sha2::Digest as _;
            let payload = format!("{version}|9999999999999999|{id}|{bound}");
            let sum = hex::encode(
                &sha2::Sha256::digest(format!("activity-gateway cursor\n{payload}").as_bytes())
                    [..6],
            );
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{payload}|{sum}"))
        }
        _ => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{raw}x")),
    };
    // A sealed cursor's payload swapped for another position, its tag kept.
    let forged = match genuine.split_once('.') {
        Some((_, tag)) => format!(
            "{}.{tag}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("c2|9999999999999999|act_x")
        ),
        None => unkeyed_forgery.clone(),
    };
    let (_, globex_page) = app
        .get("/v1/orgs/org_globex/activity?limit=2", &globex)
        .await;
    let foreign = globex_page["next_cursor"].as_str().unwrap().to_owned();
    let (_, ws_page) = app
        .get(
            "/v1/orgs/org_acme/workspaces/ws_acme_production/activity?limit=2",
            &acme,
        )
        .await;
    let other_scope = ws_page["next_cursor"].as_str().unwrap().to_owned();
    let mut answers = Vec::new();
    for cursor in [
        forged.as_str(),
        unkeyed_forgery.as_str(),
        foreign.as_str(),
        other_scope.as_str(),
        "not-a-cursor",
        "AAAA",
    ] {
        let (status, body) = app.get(&format!("{feed}&cursor={cursor}"), &acme).await;
        assert_eq!(status, 422, "{cursor}: {body}");
        answers.push(cursor_refusal(&body));
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "every bad cursor answers alike: {answers:?}"
    );
    // GraphQL connections alike: problems, children and feeds.
    for query in [
        r#"{ org(id: "org_acme") { activity(first: 1, after: "CURSOR") { totalCount } } }"#,
        r#"{ org(id: "org_acme") { problems(first: 1, after: "CURSOR") { nodes { id } } } }"#,
    ] {
        let (_, body) = app.graphql(&acme, &query.replace("CURSOR", &forged)).await;
        assert_eq!(
            first_error(&body)["extensions"]["code"],
            "BAD_USER_INPUT",
            "{body}"
        );
    }
}

async fn a_recorded_read_of_a_feed_does_not_change_that_feed(db: TestDb) {
    db.seed(300).await;
    let key = db
        .key_with(NewKey {
            org_id: "org_acme".into(),
            role: Some(Role::Viewer),
            permissions: Default::default(),
            user_id: Some("usr_acme_04".into()),
            name: None,
        })
        .await;
    let app = TestApp::spawn_with(&db.db, crate::common::recording(1_000)).await;
    let feed = "/v1/orgs/org_acme/workspaces/ws_acme_production/apps/app_acme_production_search/endpoints/ep_acme_production_search_get/activity?limit=5";
    let (status, first) = app.get(feed, &key).await;
    assert_eq!(status, 200, "{first}");
    for _ in 0..3 {
        app.get(feed, &key).await;
    }
    // The reads are recorded, as the caller's own activity...
    let recorded_reads = "org_id = 'org_acme' AND user_id = 'usr_acme_04' AND path LIKE '%/endpoints/ep_acme_production_search_get/activity'";
    let mut recorded = 0;
    for _ in 0..200 {
        recorded = db.count_events(recorded_reads).await;
        if recorded >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(recorded >= 4, "recorded reads: {recorded}");
    // ...with no hierarchy ids, so the feed they read is unchanged.
    let with_ids = db
        .count_events(&format!(
            "{recorded_reads} AND (workspace_id IS NOT NULL OR app_id IS NOT NULL OR endpoint_id IS NOT NULL OR augmentation_id IS NOT NULL)"
        ))
        .await;
    assert_eq!(with_ids, 0, "a recorded read carries hierarchy ids");
    let (_, again) = app.get(feed, &key).await;
    assert_eq!(first["total"], again["total"], "reading a feed changed it");
    assert_eq!(first["activities"], again["activities"]);
    let (_, mine) = app
        .get("/v1/orgs/org_acme/me/activity?limit=50", &key)
        .await;
    assert!(
        mine["activities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["resource_id"] == "ep_acme_production_search_get"),
        "{mine}"
    );
}

// ---- the permission matrix, generated from the operation registry ----------

mod matrix {
    use super::*;
    use activity_gateway::auth::Principal;
    use activity_gateway::domain::ids::IdKind;
    use activity_gateway::operations::{
        graphql_operations, node_permission, operations, Access, Body, Method,
    };

    on_both_backends!(
        every_rest_operation_answers_403_naming_its_permission_and_only_that,
        every_graphql_field_answers_forbidden_naming_its_permission,
        the_live_tail_needs_activity_read,
    );

    /// A key of org_acme holding every permission but `missing`.
    async fn all_but(db: &TestDb, missing: Permission) -> String {
        let rest: Vec<Permission> = Permission::ALL
            .into_iter()
            .filter(|p| *p != missing)
            .collect();
        key_with_only(db, &rest).await
    }

    /// A route pattern of the registry made concrete with org_acme's ids.
    fn concrete(path: &str) -> String {
        [
            ("{org_id}", "org_acme"),
            ("{workspace_id}", "ws_acme_production"),
            ("{app_id}", "app_acme_production_search"),
            ("{endpoint_id}", "ep_acme_production_search_get"),
            ("{augmentation_id}", "aug_acme_production_enrich"),
            ("{user_id}", "usr_acme_05"),
            ("{action}", "read"),
            ("{resource_id}", "anything"),
            ("{upload_id}", "exp_unknown"),
            ("{activity_id}", "act_unknown"),
        ]
        .iter()
        .fold(path.to_owned(), |p, (from, to)| p.replace(from, to))
    }

    async fn every_rest_operation_answers_403_naming_its_permission_and_only_that(db: TestDb) {
        db.seed(100).await;
        let app = TestApp::spawn(&db.db).await;
        let ops = operations();
        assert_eq!(ops.len(), 28, "every REST operation is in the registry");
        for op in ops {
            let url = app.url(&concrete(op.path));
            let call = |key: String| {
                let request = match op.method {
                    Method::Get => app.client.get(&url),
                    Method::Post => app.client.post(&url).json(&match op.body {
                        Body::ArrayOf { .. } => json!([]),
                        _ => json!({}),
                    }),
                };
                async move { read(request.header("X-Api-Key", key).send().await.unwrap()).await }
            };
            let (status, body) = call(all_but(&db, op.permission).await).await;
            assert_eq!(status, 403, "{} {}: {body}", op.operation_id, op.path);
            assert_eq!(body["error"], "FORBIDDEN");
            assert_eq!(
                body["details"]["required_permission"],
                op.permission.as_str(),
                "{}",
                op.operation_id
            );
            // The declared permission alone is enough to get past authorization.
            let (status, body) = call(key_with_only(&db, &[op.permission]).await).await;
            assert_ne!(
                status, 403,
                "{} with only its permission: {body}",
                op.operation_id
            );
        }
    }

    /// A query that reaches `field` (a registry name) from the root.
    fn reaching(field: &str) -> String {
        let (owner, name) = field.split_once('.').unwrap_or(("Query", field));
        let at_org = |inner: &str| format!(r#"{{ org(id: "org_acme") {{ {inner} }} }}"#);
        let leaf = match name {
            "inclusionProof" => "inclusionProof { treeSize }".to_owned(),
            "checkpoint" => "checkpoint { treeSize }".to_owned(),
            "consistencyProof" => "consistencyProof(from: 1, to: 1) { hashes }".to_owned(),
            // Relations of an event or a problem are plain objects.
            _ if owner == "Activity" || owner == "Problem" => format!("{name} {{ id }}"),
            "activity" => "activity(first: 1) { totalCount }".to_owned(),
            "activitySummary" => "activitySummary(hours: 1) { totalRequests }".to_owned(),
            "sessions" => "sessions(pageSize: 1) { totalCount }".to_owned(),
            "sessionAnalytics" => "sessionAnalytics { sessionsCount }".to_owned(),
            "problems" => "problems(first: 1) { nodes { id } }".to_owned(),
            "retention" => "retention { days }".to_owned(),
            "logStreams" => "logStreams { id }".to_owned(),
            "workspaces" | "users" | "apps" | "augmentations" | "endpoints" => {
                format!("{name}(first: 1) {{ nodes {{ id }} }}")
            }
            other => format!("{other} {{ id }}"),
        };
        match owner {
            "Query" => match name {
                "viewer" => "{ viewer { principalId permissions } }".to_owned(),
                "org" => at_org("id"),
                "activityDocs" => "{ activityDocs { name } }".to_owned(),
                other => panic!("no query reaches the root field {other}"),
            },
            "Viewer" => format!("{{ viewer {{ {leaf} }} }}"),
            "Org" => at_org(&leaf),
            "Workspace" => at_org(&format!("workspaces(first: 1) {{ nodes {{ {leaf} }} }}")),
            "App" => at_org(&format!(
                "workspaces(first: 1) {{ nodes {{ apps(first: 1) {{ nodes {{ {leaf} }} }} }} }}"
            )),
            "Endpoint" => at_org(&format!(
                "workspaces(first: 1) {{ nodes {{ apps(first: 1) {{ nodes {{ endpoints(first: 1) {{ nodes {{ {leaf} }} }} }} }} }} }}"
            )),
            "Augmentation" => at_org(&format!(
                "workspaces(first: 1) {{ nodes {{ augmentations(first: 1) {{ nodes {{ {leaf} }} }} }} }}"
            )),
            "User" => r#"{ node(id: "usr_acme_05") { ... on User { LEAF } } }"#.replace("LEAF", &leaf),
            "Activity" => at_org(&format!("activity(first: 1) {{ nodes {{ {leaf} }} }}")),
            "Problem" => at_org(&format!("problems(first: 5) {{ nodes {{ {leaf} }} }}")),
            other => panic!("no query reaches fields of {other}"),
        }
    }

    fn mutation(field: &str) -> String {
        match field {
            "ingestActivity" => r#"mutation { ingestActivity(events: []) { stored } }"#,
            "createProblem" => {
                r#"mutation { createProblem(type: "t", message: "m") { problemId } }"#
            }
            "resolveProblem" => r#"mutation { resolveProblem(problemId: "prb_x") { problemId } }"#,
            "refreshActivity" => r#"mutation { refreshActivity { success } }"#,
            "exportActivity" => r#"mutation { exportActivity { uploadId } }"#,
            "setRetention" => r#"mutation { setRetention(days: 30) { days } }"#,
            "createLogStream" => {
                r#"mutation { createLogStream(input: { name: "s", webhook: { url: "https://hooks.example.com/", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" } }) { id } }"#
            }
            "updateLogStream" => {
                r#"mutation { updateLogStream(id: "lst_x", input: { name: "t" }) { id } }"#
            }
            "deleteLogStream" => r#"mutation { deleteLogStream(id: "lst_x") { id } }"#,
            "pauseLogStream" => r#"mutation { pauseLogStream(id: "lst_x") { id } }"#,
            "resumeLogStream" => r#"mutation { resumeLogStream(id: "lst_x") { id } }"#,
            "testLogStream" => r#"mutation { testLogStream(id: "lst_x") { delivered } }"#,
            "createViewerToken" => {
                r#"mutation { createViewerToken(input: { allowedOrigins: [] }) { token } }"#
            }
            "revokeViewerToken" => r#"mutation { revokeViewerToken(id: "key_x") }"#,
            other => panic!("no mutation for {other}"),
        }
        .to_owned()
    }

    fn forbidden_naming(body: &Value) -> Vec<String> {
        body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["extensions"]["code"] == "FORBIDDEN")
            .map(|e| {
                e["extensions"]["details"]["required_permission"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    async fn every_graphql_field_answers_forbidden_naming_its_permission(db: TestDb) {
        db.seed(300).await;
        let app = TestApp::spawn(&db.db).await;
        let session = one_id(
            &db,
            "SELECT id FROM sessions WHERE org_id = 'org_acme' LIMIT 1",
        )
        .await;
        for op in graphql_operations() {
            match op.access {
                Access::Needs(permission) => {
                    if op.kind == "subscription" {
                        continue; // the_live_tail_needs_activity_read
                    }
                    let query = if op.kind == "mutation" {
                        mutation(op.field)
                    } else {
                        reaching(op.field)
                    };
                    let (status, body) = app.graphql(&all_but(&db, permission).await, &query).await;
                    assert_eq!(status, 200, "{}: {body}", op.field);
                    assert!(
                        forbidden_naming(&body).contains(&permission.as_str().to_owned()),
                        "{} without {}: {body}",
                        op.field,
                        permission.as_str()
                    );
                }
                Access::ByIdKind => {
                    for kind in IdKind::ALL {
                        let id = match kind {
                            IdKind::Session => session.clone(),
                            IdKind::Key => continue, // keys are never nodes
                            other => activity_gateway::domain::ids::new_id(other),
                        };
                        let permission = node_permission(kind);
                        let query = format!(r#"{{ node(id: "{id}") {{ id }} }}"#);
                        let (_, body) = app.graphql(&all_but(&db, permission).await, &query).await;
                        assert_eq!(
                            forbidden_naming(&body),
                            [permission.as_str()],
                            "node({id}): {body}"
                        );
                    }
                }
                Access::Open => {
                    let only_docs = key_with_only(&db, &[Permission::DocsRead]).await;
                    let (_, body) = app.graphql(&only_docs, &reaching(op.field)).await;
                    assert!(body["errors"].is_null(), "{}: {body}", op.field);
                }
            }
        }
    }

    async fn the_live_tail_needs_activity_read(db: TestDb) {
        use async_graphql::futures_util::StreamExt as _;
        db.seed(20).await;
        let settings = std::sync::Arc::new(crate::common::test_settings());
        let schema = activity_gateway::graphql::build_schema(
            db.db.clone(),
            Default::default(),
            settings.clone(),
        );
        let principal = |permissions: &[Permission]| Principal {
            org_id: "org_acme".into(),
            principal_type: "api_key",
            principal_id: "key_test".into(),
            user_id: None,
            token_id: Some("key_test".into()),
            token_type: "api_key",
            permissions: permissions.iter().copied().collect(),
            mcp_client: None,
            viewer_token: None,
        };
        let everything_else: Vec<Permission> = Permission::ALL
            .into_iter()
            .filter(|p| *p != Permission::ActivityRead)
            .collect();
        let request = async_graphql::Request::new(
            r#"subscription { activityAdded(orgId: "org_acme") { cursor } }"#,
        )
        .data(principal(&everything_else))
        .data(std::sync::Arc::new(
            activity_gateway::graphql::loaders::Loaders::new(&db.db, "org_acme", &settings),
        ));
        let first = schema.execute_stream(request).next().await.unwrap();
        let body = serde_json::to_value(&first).unwrap();
        assert_eq!(forbidden_naming(&body), ["activity:read"], "{body}");
    }

    /// Every root field, and every object-valued field of a node or of the
    /// viewer, is declared in the registry: a new field without a declared
    /// permission fails here.
    #[tokio::test]
    async fn every_field_that_reads_or_changes_data_declares_its_permission() {
        let sdl = activity_gateway::graphql::sdl();
        let declared: BTreeSet<String> = graphql_operations()
            .iter()
            .map(|op| op.field.to_owned())
            .collect();
        let scalars = [
            "ID", "String", "Int", "Float", "Boolean", "JSON", "DateTime",
        ];
        let enums: BTreeSet<&str> = sdl
            .lines()
            .filter_map(|l| l.strip_prefix("enum ").and_then(|r| r.split(' ').next()))
            .chain(sdl.lines().filter_map(|l| l.strip_prefix("scalar ")))
            .collect();
        let mut missing = Vec::new();
        for block in sdl.split("\ntype ").skip(1) {
            let header = block.lines().next().unwrap();
            let owner = header.split([' ', '{']).next().unwrap();
            let root = ["QueryRoot", "MutationRoot", "SubscriptionRoot"].contains(&owner);
            if !(root || header.contains("implements Node") || owner == "Viewer") {
                continue;
            }
            let body = block.split("\n}").next().unwrap();
            let mut in_description = false;
            for line in body.lines().skip(1) {
                let line = line.trim();
                if line.starts_with("\"\"\"") {
                    let one_line = line.len() > 3 && line.ends_with("\"\"\"");
                    in_description ^= !one_line;
                    continue;
                }
                if in_description || line.starts_with('@') {
                    continue;
                }
                let Some(name_end) = line.find(['(', ':']) else {
                    continue;
                };
                let name = &line[..name_end];
                let ty = line
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .trim()
                    .trim_matches(['[', ']', '!']);
                let is_object = !scalars.contains(&ty) && !enums.contains(ty);
                let key = if root {
                    name.to_owned()
                } else {
                    format!("{owner}.{name}")
                };
                if (root || is_object) && !declared.contains(&key) {
                    missing.push(key);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "fields without a declared permission: {missing:?}"
        );
    }
}

/// The README's permission table is the registry's, word for word.
#[test]
fn the_readme_lists_the_permission_of_every_operation() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = activity_gateway::docs::permission_table();
    assert!(
        readme.contains(&table),
        "README.md's permission table is stale; `activity-gateway permissions` prints it:\n{table}"
    );
}
