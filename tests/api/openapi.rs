//! The OpenAPI document: generated from the operation registry, served and
//! printed identically, true to the router (every operation answers), valid
//! OpenAPI 3.1, and true to the server's answers under a schema-driven fuzzer.

use crate::common::{python_tools, read, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use activity_gateway::operations::{activity_operations, artifact_operations, operations, Method};
use serde_json::Value;

on_both_backends!(
    every_documented_operation_is_served_and_the_document_is_served_as_printed,
    a_schema_driven_fuzzer_finds_nothing,
);

/// The document passes an OpenAPI 3.1 validator, and Schemathesis, with
/// every check, the demo data set's ids and a bounded number of examples
/// per operation, finds nothing against the real server.
async fn a_schema_driven_fuzzer_finds_nothing(db: TestDb) {
    db.seed(300).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let bin = python_tools();
    let dir = bin.parent().unwrap().parent().unwrap().to_owned();
    let document = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(document.path(), activity_gateway::rest::openapi::json()).unwrap();
    let validated = tokio::process::Command::new(bin.join("openapi-spec-validator"))
        .arg(document.path())
        .output()
        .await
        .unwrap();
    assert!(
        validated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    let fuzzed = tokio::process::Command::new(bin.join("schemathesis"))
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(app.url("/openapi.json"))
        .args([
            "--checks",
            "all",
            "--max-examples",
            "10",
            "--generation-deterministic",
            "--workers",
            "1",
        ])
        .args(["--header", &format!("X-Api-Key: {key}")])
        .env("NO_COLOR", "1")
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&fuzzed.stdout);
    assert!(
        fuzzed.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&fuzzed.stderr)
    );
    assert!(report.contains("Tested: 28"), "{report}");
    // Every warning fails the run but `validation_mismatch`, which may name
    // only the operations whose rules JSON Schema cannot state (cursors the
    // feed issued, time ranges, references, origins as browsers write them):
    // the feeds (not the summaries), ingest and viewer tokens.
    if let Some(section) = report.split("Schema validation mismatch:").nth(1) {
        let named: Vec<&str> = section
            .lines()
            .map(str::trim)
            .take_while(|line| !line.starts_with('💡'))
            .filter_map(|line| line.strip_prefix("- "))
            .collect();
        assert!(!named.is_empty(), "{report}");
        for operation in named {
            let feed =
                operation.starts_with("GET /v1/orgs/{org_id}/") && !operation.ends_with("/summary");
            let ingest = operation == "POST /v1/orgs/{org_id}/activity";
            let viewer_tokens = operation == "POST /v1/orgs/{org_id}/viewer-tokens";
            assert!(feed || ingest || viewer_tokens, "{operation}: {report}");
        }
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn every_documented_operation_is_served_and_the_document_is_served_as_printed(db: TestDb) {
    db.seed(500).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;

    let (status, served) = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "served without a credential");
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .arg("openapi")
        .output()
        .unwrap();
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(served, printed);
    assert_eq!(served["openapi"], "3.1.0");

    let mut all = Vec::new();
    refs(&served, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            served["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }

    let ops = activity_operations();
    assert_eq!(ops.len(), 15, "the 15 routes of the reference");
    assert!(ops.iter().all(|o| o.method == Method::Get));
    // Every registered operation is documented at its path and method.
    for op in operations() {
        let method = if op.method == Method::Get {
            "get"
        } else {
            "post"
        };
        assert_eq!(
            served["paths"][op.path][method]["operationId"], op.operation_id,
            "{}",
            op.path
        );
    }
    assert_eq!(
        artifact_operations().len(),
        7,
        "the 7 routes of the second reference"
    );
    let ingest = &served["paths"]["/v1/orgs/{org_id}/activity"]["post"];
    assert_eq!(ingest["operationId"], "ingest_org_activity");
    assert_eq!(
        ingest["requestBody"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/IngestEvent"
    );
    for op in &ops {
        let documented = &served["paths"][op.path]["get"];
        assert_eq!(documented["operationId"], op.operation_id);
        let path = op
            .path
            .replace("{org_id}", "org_acme")
            .replace("{workspace_id}", "ws_acme_production")
            .replace("{app_id}", "app_acme_production_search")
            .replace("{endpoint_id}", "ep_acme_production_search_get")
            .replace("{augmentation_id}", "aug_acme_production_enrich")
            .replace("{user_id}", "usr_acme_01")
            .replace("{action}", "read")
            .replace("{resource_id}", "ep_acme_production_search_get");
        assert!(!path.contains('{'), "{path}");
        let (status, body) = app.get(&path, &key).await;
        assert_eq!(status, 200, "{path}: {body}");
        let expected_key = if op.response == "ActivityList" {
            "activities"
        } else {
            "by_action"
        };
        assert!(
            body.get(expected_key).is_some(),
            "{path} answers a {}",
            op.response
        );
        // Every documented query parameter is accepted.
        for p in documented["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
        {
            let name = p["name"].as_str().unwrap();
            let value = match name {
                "start_time" => "2020-01-01T00:00:00Z",
                "end_time" => "2099-01-01T00:00:00Z",
                "status" => "success",
                "limit" | "hours" | "min_duration_ms" | "max_duration_ms" => "5",
                "cursor" => continue,
                _ => "x",
            };
            let (status, body) = app.get(&format!("{path}?{name}={value}"), &key).await;
            assert_eq!(status, 200, "{path}?{name}={value}: {body}");
        }
    }
}
