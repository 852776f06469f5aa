//! Refresh, export and docs: the rest of the artifact routes and their
//! GraphQL twins, on both backends (problems: `problems.rs`).

use std::collections::BTreeMap;
use std::io::Read;

use crate::common::{read, test_settings, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use activity_gateway::operations::{artifact_operations, graphql_operations};
use serde_json::{json, Value};

on_both_backends!(
    refresh_makes_summaries_equal_the_raw_aggregation_and_returns_tags,
    export_is_a_valid_zip_whose_manifest_holds,
    an_export_is_its_orgs_alone_and_a_viewer_may_not_make_one,
    the_graphql_twin_makes_an_export_that_is_a_node_with_its_jobs_state,
    the_docs_list_every_rest_operation_of_the_openapi_document_with_its_permission,
    the_docs_list_every_graphql_operation_of_the_schema_with_its_permission,
    the_docs_list_every_permission_with_what_needs_it,
    the_docs_narrow_to_one_entity_and_answer_404_for_an_unknown_one_on_both_transports,
    the_export_command_writes_the_same_zip,
    an_export_whose_runner_went_silent_is_taken_over_or_failed,
    an_org_may_have_two_exports_queued_and_others_still_export,
    an_expired_export_answers_404_and_is_deleted,
    a_half_written_export_left_by_a_killed_process_is_removed_once_abandoned,
);

const ROUTE: &str = "/api/v5/artifacts/activity";

/// The org's totals over the last 24 hours straight from the table.
async fn raw_last_day(db: &TestDb) -> (i64, i64) {
    let since = activity_gateway::domain::time::now_micros()
        - 24 * activity_gateway::domain::time::MICROS_PER_HOUR;
    let all = db
        .count_events(&format!("org_id = 'org_acme' AND ts >= {since}"))
        .await;
    let failed = db
        .count_events(&format!(
            "org_id = 'org_acme' AND ts >= {since} AND success = false"
        ))
        .await;
    (all, failed)
}

async fn refresh_makes_summaries_equal_the_raw_aggregation_and_returns_tags(db: TestDb) {
    db.seed(2_000).await;
    let admin = db.key("org_acme", Role::Admin).await;
    let member = db.key("org_acme", Role::Member).await;
    let app = TestApp::spawn(&db.db).await;
    let recent = activity_gateway::domain::time::format_micros(
        activity_gateway::domain::time::now_micros() - 3_600_000_000,
    );
    let batch: Vec<Value> = (0..300).map(|i| json!({ "action": "execute", "timestamp": recent, "status_code": if i % 3 == 0 { 500 } else { 200 } })).collect();
    let (status, _) = read(
        app.client
            .post(app.url("/v1/orgs/org_acme/activity"))
            .header("X-Api-Key", &admin)
            .json(&batch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    let (status, refreshed) = app.post_artifact(&admin, "refresh", json!(null)).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["success"], true);
    assert_eq!(
        refreshed["refreshed_views"],
        json!(["activity_rollups_hourly"])
    );
    let tags: Vec<&str> = refreshed["invalidated_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"activity-summary:org_acme") && tags.contains(&"session-analytics:org_acme"),
        "{tags:?}"
    );
    let (_, summary) = app
        .get("/v1/orgs/org_acme/activity/summary?hours=24", &admin)
        .await;
    let (all, failed) = raw_last_day(&db).await;
    assert_eq!(
        (
            summary["total_requests"].as_i64().unwrap(),
            summary["failed_requests"].as_i64().unwrap()
        ),
        (all, failed)
    );

    // The GraphQL twin, and its permission.
    let body = app
        .execute(
            &admin,
            "mutation { refreshActivity { success refreshedViews invalidatedTags } }",
        )
        .await;
    assert_eq!(
        body["data"]["refreshActivity"]["refreshedViews"],
        json!(["activity_rollups_hourly"])
    );
    assert_eq!(
        body["data"]["refreshActivity"]["invalidatedTags"]
            .as_array()
            .unwrap()
            .len(),
        tags.len()
    );
    let (status, body) = app.post_artifact(&member, "refresh", json!(null)).await;
    assert_eq!(
        (status, &body["details"]["required_permission"]),
        (403, &json!("activity:refresh"))
    );
    app.stop().await;
}

fn zip_entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid ZIP");
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        out.insert(file.name().to_owned(), data);
    }
    out
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

async fn export_is_a_valid_zip_whose_manifest_holds(db: TestDb) {
    // Enough events for the org's export to read several pages of 2,000.
    db.seed(4_000).await;
    let exports = tempfile::tempdir().unwrap();
    let settings = activity_gateway::config::HttpArgs {
        export_dir: exports.path().to_owned(),
        ..test_settings()
    };
    let app = TestApp::spawn_with(&db.db, settings).await;
    let member = db.key("org_acme", Role::Member).await;
    // Values a naive CSV writer would break.
    let tricky = "He said \"stop\", then left,\nand came back; ok";
    let (status, _) = app
        .post_artifact(
            &member,
            "problem",
            json!({ "type": "quoting, \"csv\"", "message": tricky }),
        )
        .await;
    assert_eq!(status, 200);

    let (status, answer) = app.post_artifact(&member, "export", json!(null)).await;
    assert_eq!(status, 200, "{answer}");
    let upload = answer["upload_id"].as_str().unwrap();
    assert!(upload.starts_with("exp_") && answer["file_name"].as_str().unwrap().ends_with(".zip"));
    assert_eq!(
        (&answer["status"], &answer["row_count"]),
        (&json!("pending"), &json!(0)),
        "a job, answered at once: {answer}"
    );
    let download = app.finished_export(&member, upload).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "application/zip");
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(answer["file_name"].as_str().unwrap()));
    let bytes = download.bytes().await.unwrap();
    let entries = zip_entries(&bytes);
    assert_eq!(
        entries.keys().collect::<Vec<_>>(),
        [
            "checkpoint.txt",
            "events.csv",
            "log.jsonl",
            "manifest.json",
            "problems.csv",
            "profiles.csv",
            "sessions.csv"
        ]
    );
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(
        (&manifest["org_id"], &manifest["org_name"]),
        (&json!("org_acme"), &json!("Acme Corporation"))
    );
    // Every entry is dated at the export's time (UTC, to the ZIP format's
    // two seconds), not 1980.
    let created = chrono::NaiveDateTime::parse_from_str(
        manifest["created_at"]
            .as_str()
            .unwrap()
            .trim_end_matches('Z'),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).unwrap();
        let at = entry.last_modified().unwrap();
        use chrono::{Datelike, Timelike};
        assert_eq!(
            (
                at.year(),
                at.month(),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            ),
            (
                created.year() as u16,
                created.month() as u8,
                created.day() as u8,
                created.hour() as u8,
                created.minute() as u8,
                (created.second() - created.second() % 2) as u8
            ),
            "{}",
            entry.name()
        );
    }
    let mut total = 0;
    for file in manifest["files"].as_array().unwrap() {
        let name = file["name"].as_str().unwrap();
        let data = &entries[name];
        assert_eq!(file["sha256"], sha256(data), "{name}");
        assert_eq!(file["bytes"], data.len(), "{name}");
        let mut reader = csv::Reader::from_reader(data.as_slice());
        let rows: Vec<csv::StringRecord> = reader
            .records()
            .map(|r| r.expect("parses with a standard reader"))
            .collect();
        assert_eq!(file["row_count"], rows.len(), "{name}");
        total += rows.len();
        let headers = reader.headers().unwrap().clone();
        assert!(
            rows.iter().all(|r| r.len() == headers.len()),
            "{name}: every row has every column"
        );
        let column = |n: &str| {
            headers
                .iter()
                .position(|h| h == n)
                .unwrap_or_else(|| panic!("{name} has {n}"))
        };
        match name {
            "events.csv" => {
                assert!(rows.len() > 2_000, "the events span several read pages");
                assert_eq!(
                    rows.len() as i64,
                    db.count_events("org_id = 'org_acme'").await
                );
                let (ws, ws_name) = (column("workspace_id"), column("workspace_name"));
                let named = rows
                    .iter()
                    .find(|r| r[ws] == *"ws_acme_production")
                    .unwrap();
                assert_eq!(&named[ws_name], "Production", "names beside ids");
                assert!(rows
                    .iter()
                    .all(|r| &r[column("org_name")] == "Acme Corporation"));
            }
            "problems.csv" => {
                let row = rows
                    .iter()
                    .find(|r| r[column("type")] == *"quoting, \"csv\"")
                    .expect("the tricky problem");
                assert_eq!(
                    &row[column("message")],
                    tricky,
                    "quotes, commas and newlines survive"
                );
                assert_eq!(rows.len(), 9);
            }
            "sessions.csv" => {
                let (_, analytics) = app.post_artifact(&member, "get", json!({})).await;
                assert_eq!(
                    rows.len() as i64,
                    analytics["sessions_count"].as_i64().unwrap()
                );
                assert!(rows.iter().all(|r| !r[column("user_name")].is_empty()));
            }
            "profiles.csv" => assert_eq!(rows.len(), 24),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(manifest["row_count"], total);

    // Nothing half-written is left beside the finished files.
    let leftovers: Vec<_> = walk(exports.path())
        .into_iter()
        .filter(|p| !p.ends_with(".zip"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    app.stop().await;
}

/// A member's finished export, on a small data set: (app, member, answer).
async fn finished_export(db: &TestDb) -> (TestApp, String, Value) {
    db.seed(50).await;
    let app = TestApp::spawn(&db.db).await;
    let member = db.key("org_acme", Role::Member).await;
    let (status, answer) = app.post_artifact(&member, "export", json!(null)).await;
    assert_eq!(status, 200, "{answer}");
    let done = app
        .finished_export(&member, answer["upload_id"].as_str().unwrap())
        .await;
    assert_eq!(done.status(), 200);
    (app, member, answer)
}

async fn an_export_is_its_orgs_alone_and_a_viewer_may_not_make_one(db: TestDb) {
    let (app, member, answer) = finished_export(&db).await;
    let upload = answer["upload_id"].as_str().unwrap();
    let viewer = db.key("org_acme", Role::Viewer).await;
    let theirs = db.key("org_globex", Role::Admin).await;
    for (key, id, status) in [
        (&theirs, upload, 404),
        (&member, "exp_nope", 404),
        (&viewer, upload, 403),
    ] {
        let res = app
            .client
            .get(app.url(&format!("{ROUTE}/exports/{id}")))
            .header("X-Api-Key", key.as_str())
            .send()
            .await
            .unwrap();
        let (got, body) = read(res).await;
        assert_eq!(got, status, "{body}");
    }
    let (status, body) = app.post_artifact(&viewer, "export", json!(null)).await;
    assert_eq!(
        (status, &body["details"]["required_permission"]),
        (403, &json!("activity:export"))
    );
    let (_, body) = app
        .graphql(&theirs, &format!(r#"{{ node(id: "{upload}") {{ id }} }}"#))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
        "{body}"
    );
    app.stop().await;
}

async fn the_graphql_twin_makes_an_export_that_is_a_node_with_its_jobs_state(db: TestDb) {
    let (app, member, answer) = finished_export(&db).await;
    let body = app
        .execute(
            &member,
            "mutation { exportActivity { uploadId fileName rowCount status } }",
        )
        .await;
    let twin = &body["data"]["exportActivity"];
    assert_eq!(
        (&twin["rowCount"], &twin["status"]),
        (&json!(0), &json!("pending")),
        "a job, answered at once: {body}"
    );
    let twin_id = twin["uploadId"].as_str().unwrap();
    let download = app.finished_export(&member, twin_id).await;
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.unwrap();
    let node = format!(
        r#"{{ node(id: "{twin_id}") {{ id ... on Export {{ fileName rowCount byteSize status progress rowsWritten rowsExpected }} }} }}"#
    );
    let body = app.execute(&member, &node).await;
    let found = &body["data"]["node"];
    assert_eq!(
        (&found["fileName"], &found["status"], &found["byteSize"]),
        (&twin["fileName"], &json!("done"), &json!(bytes.len())),
        "{body}"
    );
    let rows = found["rowCount"].clone();
    assert!(rows.as_i64().unwrap() > 0, "{body}");
    assert_eq!(
        (
            &found["progress"],
            &found["rowsWritten"],
            &found["rowsExpected"]
        ),
        (&json!(1.0), &rows, &rows),
        "{body}"
    );
    // Nothing changed in between: the REST export counted as many rows.
    let first = answer["upload_id"].as_str().unwrap();
    let body = app
        .execute(
            &member,
            &format!(r#"{{ node(id: "{first}") {{ ... on Export {{ rowCount }} }} }}"#),
        )
        .await;
    assert_eq!(body["data"]["node"]["rowCount"], rows, "{body}");
    app.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// A viewer of `org_acme` and the application, for the docs.
async fn docs_app(db: &TestDb) -> (TestApp, String) {
    db.seed(10).await;
    let viewer = db.key("org_acme", Role::Viewer).await;
    (TestApp::spawn(&db.db).await, viewer)
}

/// Every REST operation in the docs is in the OpenAPI document, with the same
/// id and permission, and the other way round.
async fn the_docs_list_every_rest_operation_of_the_openapi_document_with_its_permission(
    db: TestDb,
) {
    let (app, viewer) = docs_app(&db).await;
    let (status, docs) = app.post_artifact(&viewer, "docs", json!({})).await;
    assert_eq!(status, 200, "{docs}");
    for field in [
        "name",
        "type",
        "description",
        "artifact",
        "entries",
        "resources",
        "permissions",
        "api_operations",
        "page_metadata",
    ] {
        assert!(!docs[field].is_null(), "{field}");
    }
    let (_, openapi) = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let operations = docs["api_operations"].as_array().unwrap();
    // Every REST operation in the docs is in the OpenAPI document, with the same id and permission, and the other way round.
    let rest: Vec<&Value> = operations.iter().filter(|o| o["api"] == "rest").collect();
    let mut documented = 0;
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented += 1;
            let listed = rest
                .iter()
                .find(|o| {
                    o["path"] == path.as_str()
                        && o["method"].as_str().unwrap().eq_ignore_ascii_case(method)
                })
                .unwrap_or_else(|| panic!("{method} {path} is missing from the docs"));
            assert_eq!(listed["operation"], op["operationId"]);
            let permission = listed["permission"].as_str().unwrap();
            assert_eq!(op["description"], format!("Requires `{permission}`."));
        }
    }
    assert_eq!(documented, rest.len());
    // All 7 routes, with the permissions of the contract.
    let expected = [
        ("get", "session:read"),
        ("search", "session:read"),
        ("problem", "problem:create"),
        ("resolve", "problem:resolve"),
        ("refresh", "activity:refresh"),
        ("export", "activity:export"),
        ("docs", "docs:read"),
    ];
    assert_eq!(artifact_operations().len(), expected.len());
    for (route, permission) in expected {
        let path = format!("{ROUTE}/{route}");
        let op = rest
            .iter()
            .find(|o| o["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path}"));
        assert_eq!(
            (&op["method"], &op["permission"]),
            (&json!("POST"), &json!(permission))
        );
    }
    app.stop().await;
}

/// The GraphQL operations, each with its permission, and each really in the schema.
async fn the_docs_list_every_graphql_operation_of_the_schema_with_its_permission(db: TestDb) {
    let (app, viewer) = docs_app(&db).await;
    let (status, docs) = app.post_artifact(&viewer, "docs", json!({})).await;
    assert_eq!(status, 200, "{docs}");
    let operations = docs["api_operations"].as_array().unwrap();
    let sdl = activity_gateway::graphql::sdl();
    let graphql: Vec<&Value> = operations
        .iter()
        .filter(|o| o["api"] == "graphql")
        .collect();
    assert_eq!(graphql.len(), graphql_operations().len());
    for name in [
        "createProblem",
        "resolveProblem",
        "refreshActivity",
        "exportActivity",
        "ingestActivity",
        "setRetention",
        "activityDocs",
        "activityAdded",
        "Org.sessionAnalytics",
        "Org.sessions",
        "User.sessions",
        "Org.problems",
    ] {
        assert!(graphql.iter().any(|o| o["operation"] == name), "{name}");
    }
    for op in graphql_operations() {
        let (owner, field) = op.field.split_once('.').unwrap_or((
            match op.kind {
                "query" => "Query",
                "mutation" => "MutationRoot",
                _ => "SubscriptionRoot",
            },
            op.field,
        ));
        let owner = if owner == "Query" { "QueryRoot" } else { owner };
        let block = sdl
            .split(&format!("type {owner} "))
            .nth(1)
            .unwrap_or_else(|| panic!("type {owner}"))
            .split("\n}")
            .next()
            .unwrap();
        assert!(
            block.contains(&format!("\t{field}(")) || block.contains(&format!("\t{field}:")),
            "{owner}.{field} is in the schema"
        );
    }
    app.stop().await;
}

/// Every permission is listed with the operations that need it.
async fn the_docs_list_every_permission_with_what_needs_it(db: TestDb) {
    let (app, viewer) = docs_app(&db).await;
    let (status, docs) = app.post_artifact(&viewer, "docs", json!({})).await;
    assert_eq!(status, 200, "{docs}");
    let permissions: Vec<&str> = docs["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["operation"].as_str().unwrap())
        .collect();
    assert_eq!(permissions.len(), 11);
    assert!(permissions.contains(&"stream:manage"));
    assert!(permissions.contains(&"viewer:create"));
    assert!(docs["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["operation"] == "activity:retention"
            && p["description"].as_str().unwrap().contains("setRetention")));
    assert!(docs["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["operation"] == "session:read"
            && p["description"].as_str().unwrap().contains("get_activity")));
    app.stop().await;
}

/// `entity_id` narrows to one entry; an unknown one is 404; GraphQL answers the same.
async fn the_docs_narrow_to_one_entity_and_answer_404_for_an_unknown_one_on_both_transports(
    db: TestDb,
) {
    let (app, viewer) = docs_app(&db).await;
    let (status, docs) = app.post_artifact(&viewer, "docs", json!({})).await;
    assert_eq!(status, 200, "{docs}");
    let (_, one) = app
        .post_artifact(&viewer, "docs", json!({ "entity_id": "session_history" }))
        .await;
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    assert_eq!(one["entries"][0]["id"], "session_history");
    assert!(one["entries"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "total_pages"));
    let (_, events) = app
        .post_artifact(&viewer, "docs", json!({ "entity_id": "events" }))
        .await;
    assert_eq!(
        events["resources"][0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"] == "workspace_name")
            .count(),
        1
    );
    let (status, missing) = app
        .post_artifact(&viewer, "docs", json!({ "entity_id": "nothing" }))
        .await;
    assert_eq!(
        (status, &missing["error"]),
        (404, &json!("RESOURCE_NOT_FOUND"))
    );
    let body = app.execute(&viewer, r#"{ activityDocs(entityId: "session_history") { type entries { id fields { name } } apiOperations { api operation permission } } }"#).await;
    let twin = &body["data"]["activityDocs"];
    assert_eq!(twin["entries"][0]["id"], "session_history");
    assert_eq!(
        twin["apiOperations"].as_array().unwrap().len(),
        docs["api_operations"].as_array().unwrap().len()
    );
    let body = app
        .execute(&viewer, r#"{ activityDocs(entityId: "nothing") { type } }"#)
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "RESOURCE_NOT_FOUND"
    );
    app.stop().await;
}

async fn the_export_command_writes_the_same_zip(db: TestDb) {
    db.seed(1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("acme.zip");
    let run = |org: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
            .args(["export", "--org", org, "--out"])
            .arg(&out)
            .args(["--database-url", &db.url])
            .output()
            .unwrap()
    };
    let done = run("org_acme");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let printed = String::from_utf8(done.stdout).unwrap();
    let entries = zip_entries(&std::fs::read(&out).unwrap());
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert!(
        printed.starts_with(&format!(
            "exported {} rows of org_acme",
            manifest["row_count"]
        )),
        "{printed}"
    );
    for file in manifest["files"].as_array().unwrap() {
        let name = file["name"].as_str().unwrap();
        assert_eq!(file["sha256"], sha256(&entries[name]));
        assert!(
            printed.contains(&format!(
                "{name}: {} rows, sha256 {}",
                file["row_count"],
                file["sha256"].as_str().unwrap()
            )),
            "{printed}"
        );
    }
    let events = &manifest["files"][0];
    assert_eq!(
        (&events["name"], events["row_count"].as_i64().unwrap()),
        (
            &json!("events.csv"),
            db.count_events("org_id = 'org_acme'").await
        )
    );
    // An unknown org is a clear error and leaves no file behind.
    std::fs::remove_file(&out).unwrap();
    let failed = run("org_nope");
    assert!(!failed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&failed.stderr).trim(),
        "error: no org org_nope"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

/// Stores a job as a runner that went silent `stale_secs` ago would have left it.
async fn silent_job(db: &TestDb, id: &str, attempt: i32, stale_secs: i64) {
    use sea_orm::{ConnectionTrait, Statement};
    let now = chrono::Utc::now().timestamp_micros();
    let heartbeat = now - stale_secs * 1_000_000;
    db.db
        .execute_raw(Statement::from_sql_and_values(
            db.db.get_database_backend(),
            match db.db.get_database_backend() {
                sea_orm::DbBackend::Postgres => "INSERT INTO exports (id, org_id, file_name, row_count, byte_size, created_by, created_at, status, claimed_by, attempt, heartbeat_at, expires_at) VALUES ($1, 'org_acme', 'x.zip', 0, 0, NULL, $2, 'running', 'pid 1 dead', $3, $4, $5)",
                _ => "INSERT INTO exports (id, org_id, file_name, row_count, byte_size, created_by, created_at, status, claimed_by, attempt, heartbeat_at, expires_at) VALUES (?, 'org_acme', 'x.zip', 0, 0, NULL, ?, 'running', 'pid 1 dead', ?, ?, ?)",
            },
            [
                id.into(),
                now.into(),
                attempt.into(),
                heartbeat.into(),
                (now + 3_600_000_000).into(),
            ],
        ))
        .await
        .unwrap();
}

async fn export_node(app: &TestApp, key: &str, id: &str) -> Value {
    let body = app
        .execute(
            key,
            &format!(
                r#"{{ node(id: "{id}") {{ ... on Export {{ status rowCount progress }} }} }}"#
            ),
        )
        .await;
    body["data"]["node"].clone()
}

async fn an_export_whose_runner_went_silent_is_taken_over_or_failed(db: TestDb) {
    db.seed(300).await;
    let key = db.key("org_acme", Role::Member).await;
    // Silent past the 30 s lease: taken over and finished. Silent but within
    // it: left alone. Silent for the third time: failed, never lost silently.
    silent_job(&db, "exp_silent_past_lease", 1, 31).await;
    silent_job(&db, "exp_silent_within_lease", 1, 5).await;
    silent_job(&db, "exp_silent_third_time", 3, 31).await;
    // A directory of its own: the same ids are exported on both backends at once.
    let exports = tempfile::tempdir().unwrap();
    let settings = activity_gateway::config::HttpArgs {
        export_dir: exports.path().to_owned(),
        ..test_settings()
    };
    let app = TestApp::spawn_with(&db.db, settings).await;
    let taken = app.finished_export(&key, "exp_silent_past_lease").await;
    assert_eq!(taken.status(), 200);
    let bytes = taken.bytes().await.unwrap();
    assert!(zip_entries(&bytes).contains_key("manifest.json"));
    let node = export_node(&app, &key, "exp_silent_past_lease").await;
    assert_eq!(
        (&node["status"], &node["progress"]),
        (&json!("done"), &json!(1.0))
    );
    assert!(node["rowCount"].as_i64().unwrap() > 300, "{node}");

    let failed = app.finished_export(&key, "exp_silent_third_time").await;
    let (status, body) = read(failed).await;
    assert_eq!(
        (status, &body["error"]),
        (500, &json!("INTERNAL_SERVER_ERROR")),
        "{body}"
    );
    assert_eq!(body["message"], "The export failed; start a new one");
    assert_eq!(
        body["details"]["error_id"].as_str().map(str::len),
        Some(16),
        "the id of the log line that says why: {body}"
    );

    let waiting = app
        .client
        .get(app.url(&format!("{ROUTE}/exports/exp_silent_within_lease")))
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(waiting.headers()["retry-after"], "1");
    let (status, state) = read(waiting).await;
    assert_eq!(
        (status, &state["status"]),
        (202, &json!("running")),
        "{state}"
    );
    assert_eq!(state["upload_id"], "exp_silent_within_lease");
    app.stop().await;
}

async fn an_org_may_have_two_exports_queued_and_others_still_export(db: TestDb) {
    db.seed(100).await;
    let acme = db.key("org_acme", Role::Member).await;
    let globex = db.key("org_globex", Role::Member).await;
    // A job of org_acme held by a live runner of another replica.
    silent_job(&db, "exp_busy_one", 1, -3_600).await;
    let app = TestApp::spawn(&db.db).await;
    // At the edge: a second active job is accepted.
    let (status, body) = app.post_artifact(&acme, "export", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let second = body["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(app.finished_export(&acme, &second).await.status(), 200);
    // Past it: with two held elsewhere, a third is refused.
    silent_job(&db, "exp_busy_two", 1, -3_600).await;
    let res = app
        .client
        .post(app.url(&format!("{ROUTE}/export")))
        .header("X-Api-Key", &acme)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["retry-after"], "10");
    let (status, body) = read(res).await;
    assert_eq!(
        (status, &body["error"]),
        (429, &json!("TOO_MANY_REQUESTS")),
        "{body}"
    );
    assert_eq!(body["details"]["limit"], 2);
    let body = app
        .execute(&acme, "mutation { exportActivity { uploadId } }")
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "TOO_MANY_REQUESTS",
        "{body}"
    );
    // Another org is not held up by it.
    let (status, body) = app.post_artifact(&globex, "export", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let done = app
        .finished_export(&globex, body["upload_id"].as_str().unwrap())
        .await;
    assert_eq!(done.status(), 200);
    app.stop().await;
}

async fn an_expired_export_answers_404_and_is_deleted(db: TestDb) {
    use sea_orm::{EntityTrait, PaginatorTrait};
    db.seed(50).await;
    let key = db.key("org_acme", Role::Member).await;
    let exports = tempfile::tempdir().unwrap();
    let settings = activity_gateway::config::HttpArgs {
        export_dir: exports.path().to_owned(),
        export_keep_secs: 2,
        ..test_settings()
    };
    let app = TestApp::spawn_with(&db.db, settings.clone()).await;
    let (_, body) = app.post_artifact(&key, "export", json!({})).await;
    let id = body["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(app.finished_export(&key, &id).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (status, body) = read(app.finished_export(&key, &id).await).await;
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("RESOURCE_NOT_FOUND")),
        "{body}"
    );
    app.stop().await;
    // A runner deletes expired exports when it starts, and every minute.
    let again = TestApp::spawn_with(&db.db, settings).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while entity::export::Entity::find().count(&db.db).await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired export is deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        walk(exports.path()).is_empty(),
        "{:?}",
        walk(exports.path())
    );
    again.stop().await;
}

/// A process killed mid-export leaves its `.zip.partial` behind. A runner
/// removes such files once nothing wrote to them for 10 minutes (checked as
/// it starts, then every minute): at 11 minutes the file goes, at 9 it
/// stays (a slow writer), and finished ZIPs are left to their expiry.
async fn a_half_written_export_left_by_a_killed_process_is_removed_once_abandoned(db: TestDb) {
    use std::time::{Duration, SystemTime};
    db.seed(10).await;
    let exports = tempfile::tempdir().unwrap();
    let org_dir = exports.path().join("org_acme");
    std::fs::create_dir_all(&org_dir).unwrap();
    let written = |name: &str, minutes_ago: u64| {
        let path = org_dir.join(name);
        std::fs::write(&path, b"PK").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(minutes_ago * 60))
            .unwrap();
        path
    };
    let abandoned = written("exp_killed.1.zip.partial", 11);
    let slow = written("exp_slow.1.zip.partial", 9);
    let fresh = written("exp_running.1.zip.partial", 0);
    let finished = written("exp_done.zip", 60);
    let settings = activity_gateway::config::HttpArgs {
        export_dir: exports.path().to_owned(),
        ..test_settings()
    };
    let app = TestApp::spawn_with(&db.db, settings).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while abandoned.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned file is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for kept in [&slow, &fresh, &finished] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    app.stop().await;
}
