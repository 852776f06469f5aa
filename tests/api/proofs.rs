//! The log's answers, checked by someone else's code: Go's own
//! golang.org/x/mod/sumdb/note and sumdb/tlog (tests/verifier/main.go, built
//! from Debian's golang-golang-x-mod-dev) verify the checkpoints, inclusion
//! proofs and consistency proofs the server answers, with leaves recomputed
//! from REST activity answers. Bad proof arguments are the same invalid
//! input on both transports; an export verifies offline, and a tampered one
//! names its row.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{cli, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use activity_gateway::service::log::checkpoints::{self, KeySettings};
use serde_json::{json, Value};

on_both_backends!(
    checkpoints_and_proofs_check_out_with_gos_sumdb_verifier,
    proof_arguments_outside_the_log_are_invalid_input_on_both_transports,
    an_export_verifies_offline_and_a_tampered_one_names_its_row,
);

/// The Go verifier, built once per test run.
fn go_verifier() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let out = root.join("target/tmp/tlog-verifier");
            std::fs::create_dir_all(root.join("target/tmp/gocache")).unwrap();
            let built = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg("main.go")
                .current_dir(root.join("tests/verifier"))
                .env("GO111MODULE", "off")
                .env("GOPATH", "/usr/share/gocode")
                .env("GOCACHE", root.join("target/tmp/gocache"))
                .output()
                .expect("go is installed (scripts/test.sh installs golang-go and golang-golang-x-mod-dev)");
            assert!(
                built.status.success(),
                "{}",
                String::from_utf8_lossy(&built.stderr)
            );
            out
        })
        .clone()
}

/// Runs the Go verifier on `input`: success, and its lines.
fn go_verify(input: &Value) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(go_verifier())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn checkpoint(db: &TestDb) {
    let key = checkpoints::log_key(&db.db, &KeySettings::default())
        .await
        .unwrap();
    checkpoints::checkpoint_all(&db.db, &key).await.unwrap();
}

/// Every REST activity object of the org's feed, by id.
async fn rest_events(app: &TestApp, key: &str) -> HashMap<String, Value> {
    let mut events = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orgs/org_acme/activity?limit=200&cursor={c}"),
            None => "/v1/orgs/org_acme/activity?limit=200".to_owned(),
        };
        let (status, page) = app.get(&path, key).await;
        assert_eq!(status, 200, "{page}");
        for e in page["activities"].as_array().unwrap() {
            events.insert(e["id"].as_str().unwrap().to_owned(), e.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return events,
        }
    }
}

/// The ids of the org's events by log index, from GraphQL.
async fn ids_by_index(app: &TestApp, key: &str, size: usize) -> Vec<String> {
    let mut ids = vec![String::new(); size];
    let mut after = Value::Null;
    loop {
        let body = app
            .execute_with(
                key,
                "query($after: String) { org(id: \"org_acme\") { activity(first: 200, after: $after) { pageInfo { hasNextPage endCursor } nodes { id logIndex } } } }",
                json!({ "after": after }),
            )
            .await;
        let feed = &body["data"]["org"]["activity"];
        for node in feed["nodes"].as_array().expect("a page") {
            ids[node["logIndex"].as_u64().unwrap() as usize] =
                node["id"].as_str().unwrap().to_owned();
        }
        if feed["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = feed["pageInfo"]["endCursor"].clone();
    }
}

async fn checkpoints_and_proofs_check_out_with_gos_sumdb_verifier(db: TestDb) {
    db.seed(1_200).await;
    checkpoint(&db).await;
    let reader = db.key("org_acme", Role::Viewer).await;
    let writer = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let first = app
        .execute(&reader, r#"{ org(id: "org_acme") { checkpoint { origin treeSize rootHash note verifierKey } } }"#)
        .await;
    let first = first["data"]["org"]["checkpoint"].clone();
    let old_size = first["treeSize"].as_i64().expect("a checkpoint");
    // More events, and a checkpoint of the grown tree.
    let batch: Vec<Value> = (0..300)
        .map(|n| json!({ "action": "execute", "status_code": 200 + n % 3, "metadata": { "n": n, "text": "<b>&\u{e9}" } }))
        .collect();
    let (status, body) = app
        .post_json(&writer, "/v1/orgs/org_acme/activity", &json!(batch))
        .await;
    assert_eq!(status, 200, "{body}");
    checkpoint(&db).await;
    let (status, latest) = app.get("/v1/orgs/org_acme/log/checkpoint", &reader).await;
    assert_eq!(status, 200, "{latest}");
    let size = latest["tree_size"].as_i64().unwrap();
    assert_eq!(size, old_size + 300);
    // The published key is the one the operator's command prints.
    let printed = Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args(["log-key", "--database-url", &db.url])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&printed.stdout).trim().to_owned();
    assert_eq!(latest["verifier_key"], key);
    assert_eq!(first["verifierKey"], key);
    assert_eq!(latest["origin"], first["origin"]);
    assert!(latest["note"].as_str().unwrap().starts_with(&format!(
        "{}\n{size}\n{}\n\n\u{2014} ",
        latest["origin"].as_str().unwrap(),
        latest["root_hash"].as_str().unwrap()
    )));

    let events = rest_events(&app, &reader).await;
    let ids = ids_by_index(&app, &reader, size as usize).await;
    assert_eq!(events.len(), size as usize);
    // The first, the last, and a spread between, in the latest tree and in
    // the older one; half over REST, half over GraphQL.
    let mut inclusions = Vec::new();
    let picks = [
        0,
        1,
        255,
        256,
        257,
        old_size - 1,
        old_size,
        size / 2,
        size / 3,
        size - 2,
        size - 1,
    ];
    for (n, index) in picks.into_iter().enumerate() {
        let id = &ids[index as usize];
        let against = if index < old_size && n % 2 == 0 {
            Some(old_size)
        } else {
            None
        };
        let proof = if n % 2 == 0 {
            let path = match against {
                Some(s) => format!("/v1/orgs/org_acme/activity/{id}/inclusion-proof?tree_size={s}"),
                None => format!("/v1/orgs/org_acme/activity/{id}/inclusion-proof"),
            };
            let (status, proof) = app.get(&path, &reader).await;
            assert_eq!(status, 200, "{proof}");
            json!({
                "log_index": proof["log_index"], "leaf_hash": proof["leaf_hash"],
                "audit_path": proof["audit_path"], "note": proof["checkpoint"]["note"],
                "size": proof["tree_size"],
            })
        } else {
            let body = app
                .execute(
                    &reader,
                    &format!(r#"{{ node(id: "{id}") {{ ... on Activity {{ logIndex inclusionProof {{ logIndex treeSize leafHash auditPath checkpoint {{ note treeSize }} }} }} }} }}"#),
                )
                .await;
            let proof = &body["data"]["node"]["inclusionProof"];
            assert_eq!(body["data"]["node"]["logIndex"], index, "{body}");
            json!({
                "log_index": proof["logIndex"], "leaf_hash": proof["leafHash"],
                "audit_path": proof["auditPath"], "note": proof["checkpoint"]["note"],
                "size": proof["treeSize"],
            })
        };
        assert_eq!(proof["log_index"], index);
        assert_eq!(proof["size"], against.unwrap_or(size));
        let mut item = proof.clone();
        item["event"] = events[id].clone();
        inclusions.push(item);
    }
    // Consistency between pairs of sizes, each with the signed note of its sizes.
    let note_at = |s: i64| {
        let app = &app;
        let reader = &reader;
        let id = ids[0].clone();
        async move {
            let (status, proof) = app
                .get(
                    &format!("/v1/orgs/org_acme/activity/{id}/inclusion-proof?tree_size={s}"),
                    reader,
                )
                .await;
            assert_eq!(status, 200, "{proof}");
            proof["checkpoint"]["note"].clone()
        }
    };
    let mut consistencies = Vec::new();
    for (from, to) in [
        (old_size, size),
        (1, size),
        (7, 300),
        (256, 512),
        (old_size, old_size),
        (513, size - 1),
    ] {
        let body = app
            .execute(&reader, &format!(r#"{{ org(id: "org_acme") {{ consistencyProof(from: {from}, to: {to}) {{ from to hashes }} }} }}"#))
            .await;
        let proof = &body["data"]["org"]["consistencyProof"];
        assert_eq!(
            (proof["from"].as_i64(), proof["to"].as_i64()),
            (Some(from), Some(to)),
            "{body}"
        );
        consistencies.push(json!({ "old": note_at(from).await, "new": note_at(to).await, "hashes": proof["hashes"] }));
    }
    let (status, rest) = app
        .get(
            &format!("/v1/orgs/org_acme/log/consistency-proof?from_size={old_size}&to_size={size}"),
            &reader,
        )
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(
        rest["hashes"], consistencies[0]["hashes"],
        "both transports give one proof"
    );

    let input = json!({
        "key": key,
        "origin": latest["origin"],
        "checkpoints": [first["note"], latest["note"]],
        "inclusions": inclusions,
        "consistencies": consistencies,
    });
    let (ok, lines) = go_verify(&input);
    assert!(ok, "{lines}");
    assert_eq!(
        lines.matches("ok inclusion").count(),
        picks.len(),
        "{lines}"
    );
    assert_eq!(lines.matches("ok consistency").count(), 6, "{lines}");

    // The verifier is not a rubber stamp: one changed hash, one changed
    // field of an event, one note signed by another key each fail it.
    let mut bad = input.clone();
    // (Leaf 0 is no sibling of leaf 256.)
    bad["inclusions"][3]["audit_path"][0] = bad["inclusions"][0]["leaf_hash"].clone();
    assert!(!go_verify(&bad).0);
    let mut bad = input.clone();
    bad["inclusions"][2]["event"]["status_code"] = json!(599);
    let (ok, lines) = go_verify(&bad);
    assert!(!ok && lines.contains("leaf of event"), "{lines}");
    let mut bad = input.clone();
    bad["consistencies"][0]["hashes"][0] = bad["inclusions"][5]["leaf_hash"].clone();
    assert!(!go_verify(&bad).0);
    let other = checkpoints::generate_signing_key("someone-else").unwrap();
    let mut bad = input;
    bad["key"] = json!(other);
    assert!(!go_verify(&bad).0, "a private key is no verifier key");
    app.stop().await;
}

/// The `(type, loc)` of every problem of a REST 422.
fn rest_problems(body: &Value) -> Vec<(String, Value)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("a 422: {body}"))
        .iter()
        .map(|d| (d["type"].as_str().unwrap().to_owned(), d["loc"].clone()))
        .collect()
}

async fn proof_arguments_outside_the_log_are_invalid_input_on_both_transports(db: TestDb) {
    db.seed(600).await;
    checkpoint(&db).await;
    let reader = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, latest) = app.get("/v1/orgs/org_acme/log/checkpoint", &reader).await;
    let size = latest["tree_size"].as_i64().unwrap();
    let ids = ids_by_index(&app, &reader, size as usize).await;
    let id = &ids[10];
    // Tree sizes the log never had, beyond the latest checkpoint, or too
    // small to hold the event: at and past each edge.
    for (tree_size, expected) in [
        (size, None),
        (size + 1, Some("less_than_equal")),
        (11, None),
        (10, Some("greater_than_equal")),
        (0, Some("greater_than_equal")),
        (-5, Some("greater_than_equal")),
    ] {
        let (status, body) = app
            .get(
                &format!("/v1/orgs/org_acme/activity/{id}/inclusion-proof?tree_size={tree_size}"),
                &reader,
            )
            .await;
        let graphql = app
            .execute(&reader, &format!(r#"{{ node(id: "{id}") {{ ... on Activity {{ inclusionProof(treeSize: {tree_size}) {{ treeSize }} }} }} }}"#))
            .await;
        match expected {
            None => {
                assert_eq!(status, 200, "{tree_size}: {body}");
                assert_eq!(
                    graphql["data"]["node"]["inclusionProof"]["treeSize"], tree_size,
                    "{graphql}"
                );
            }
            Some(kind) => {
                assert_eq!(status, 422, "{tree_size}: {body}");
                assert_eq!(
                    rest_problems(&body),
                    [(kind.to_owned(), json!(["query", "tree_size"]))]
                );
                let error = &graphql["errors"][0];
                assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{graphql}");
                let detail = &error["extensions"]["details"]["detail"][0];
                assert_eq!(
                    (&detail["type"], &detail["loc"]),
                    (&json!(kind), &json!(["treeSize"])),
                    "{graphql}"
                );
                assert_eq!(
                    detail["msg"], body["detail"][0]["msg"],
                    "the same words on both transports"
                );
            }
        }
    }
    let (status, body) = app
        .get(
            &format!("/v1/orgs/org_acme/activity/{id}/inclusion-proof?tree_size=ten"),
            &reader,
        )
        .await;
    assert_eq!(
        (status, rest_problems(&body)),
        (
            422,
            vec![("int_parsing".to_owned(), json!(["query", "tree_size"]))]
        )
    );
    // Consistency: 1 <= from <= to <= latest.
    for (from, to, expected) in [
        (1, size, vec![]),
        (size, size, vec![]),
        (0, size, vec![("greater_than_equal", "from")]),
        (2, 1, vec![("less_than_equal", "from")]),
        (1, size + 1, vec![("less_than_equal", "to")]),
        (
            0,
            0,
            vec![("greater_than_equal", "to"), ("greater_than_equal", "from")],
        ),
    ] {
        let (status, body) = app
            .get(
                &format!("/v1/orgs/org_acme/log/consistency-proof?from_size={from}&to_size={to}"),
                &reader,
            )
            .await;
        let graphql = app
            .execute(&reader, &format!(r#"{{ org(id: "org_acme") {{ consistencyProof(from: {from}, to: {to}) {{ from }} }} }}"#))
            .await;
        if expected.is_empty() {
            assert_eq!(status, 200, "{from}..{to}: {body}");
            assert_eq!(
                graphql["data"]["org"]["consistencyProof"]["from"], from,
                "{graphql}"
            );
            continue;
        }
        let want: Vec<(String, Value)> = expected
            .iter()
            .map(|(kind, at)| (kind.to_string(), json!(["query", format!("{at}_size")])))
            .collect();
        assert_eq!((status, rest_problems(&body)), (422, want), "{from}..{to}");
        let error = &graphql["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{graphql}");
        let locs: Vec<&Value> = error["extensions"]["details"]["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["loc"])
            .collect();
        let want: Vec<Value> = expected.iter().map(|(_, at)| json!([at])).collect();
        assert_eq!(locs, want.iter().collect::<Vec<_>>(), "{graphql}");
    }
    let (status, body) = app
        .get("/v1/orgs/org_acme/log/consistency-proof?to_size=3", &reader)
        .await;
    assert_eq!(
        (status, rest_problems(&body)),
        (
            422,
            vec![("missing".to_owned(), json!(["query", "from_size"]))]
        )
    );
    // Another org's event, or none, is not found, on both transports.
    let globex = db
        .rows(
            "SELECT id FROM activity_events WHERE org_id = 'org_globex' LIMIT 1",
            vec![],
        )
        .await[0]
        .try_get_by_index::<String>(0)
        .unwrap();
    for unknown in [globex.as_str(), "act_nothing"] {
        let (status, body) = app
            .get(
                &format!("/v1/orgs/org_acme/activity/{unknown}/inclusion-proof"),
                &reader,
            )
            .await;
        assert_eq!(
            (status, &body["error"]),
            (404, &json!("RESOURCE_NOT_FOUND")),
            "{body}"
        );
    }
    // Another org's log is another org's: 404 like an unknown org.
    let (status, _) = app.get("/v1/orgs/org_globex/log/checkpoint", &reader).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// The ZIP's entries with one of them replaced.
fn rezip(from: &std::path::Path, to: &std::path::Path, name: &str, data: &[u8]) {
    use std::io::{Read as _, Write as _};
    let mut archive = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let entry_name = entry.name().to_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.start_file(&entry_name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(if entry_name == name { data } else { &bytes })
            .unwrap();
    }
    out.finish().unwrap();
}

fn entry(zip_path: &std::path::Path, name: &str) -> String {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

async fn an_export_verifies_offline_and_a_tampered_one_names_its_row(db: TestDb) {
    db.seed(1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let honest = dir.path().join("acme.zip");
    let (ok, text) = cli(&[
        "export",
        "--org",
        "org_acme",
        "--out",
        honest.to_str().unwrap(),
        "--database-url",
        &db.url,
    ]);
    assert!(ok, "{text}");
    let (_, key) = cli(&["log-key", "--database-url", &db.url]);
    let key = key.trim().to_owned();
    let size = db.count_events("org_id = 'org_acme'").await;
    // No database, no server: only the file and the key.
    drop(db);
    let (ok, text) = cli(&["verify", honest.to_str().unwrap(), "--key", &key]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "verified {size} events, log indexes 0..{}, checkpoint size {size}",
            size - 1
        )),
        "{text}"
    );
    let tampered = dir.path().join("tampered.zip");
    // A changed cell of events.csv: its row and event are named.
    let csv_text = entry(&honest, "events.csv");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let at = header.iter().position(|h| h == "duration_ms").unwrap();
    let id = rows[4][0].to_owned();
    let mut changed: Vec<String> = rows[4].iter().map(str::to_owned).collect();
    changed[at] = "999999".to_owned();
    rows[4] = csv::StringRecord::from(changed);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    rezip(
        &honest,
        &tampered,
        "events.csv",
        &writer.into_inner().unwrap(),
    );
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "events.csv row 6 (event {id}) differs from the logged event"
        )),
        "{text}"
    );
    // Rows in any order verify; a missing, repeated or misplaced row is named.
    let index_at = header.iter().position(|h| h == "log_index").unwrap();
    let csv_of = |rows: &[csv::StringRecord]| {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&header).unwrap();
        for row in rows {
            writer.write_record(row).unwrap();
        }
        writer.into_inner().unwrap()
    };
    let honest_rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let mut reversed = honest_rows.clone();
    reversed.reverse();
    rezip(&honest, &tampered, "events.csv", &csv_of(&reversed));
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(
        ok && text.contains(&format!("verified {size} events")),
        "{text}"
    );
    let mut fewer = honest_rows.clone();
    let gone = fewer.remove(7);
    rezip(&honest, &tampered, "events.csv", &csv_of(&fewer));
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "events.csv lacks the event at log index {}",
            &gone[index_at]
        )),
        "{text}"
    );
    let mut more = honest_rows.clone();
    more.push(honest_rows[3].clone());
    rezip(&honest, &tampered, "events.csv", &csv_of(&more));
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "events.csv row {} repeats log index {}",
            more.len() + 1,
            &honest_rows[3][index_at]
        )),
        "{text}"
    );
    let mut misplaced = honest_rows.clone();
    let mut cells: Vec<String> = misplaced[2].iter().map(str::to_owned).collect();
    cells[index_at] = (size + 5).to_string();
    let moved = cells[0].clone();
    misplaced[2] = csv::StringRecord::from(cells);
    rezip(&honest, &tampered, "events.csv", &csv_of(&misplaced));
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "event {moved}: events.csv row 4 names no event of the log"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "events.csv lacks the event at log index {}",
            &honest_rows[2][index_at]
        )),
        "{text}"
    );
    // A changed event in the log itself: its line, index and id are named.
    let log = entry(&honest, "log.jsonl");
    let mut lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[42]["event"]["action"] = json!("delete");
    let id = lines[42]["event"]["id"].as_str().unwrap().to_owned();
    let text_of = |lines: &[Value]| {
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>()
    };
    rezip(&honest, &tampered, "log.jsonl", text_of(&lines).as_bytes());
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "the first: log index 42, event {id}: log.jsonl line 43"
        )),
        "{text}"
    );
    // The same event with a recomputed leaf hash: the signed root says no.
    let leaf = {
        use base64::Engine as _;
        let bytes = serde_json_canonicalizer::to_vec(&lines[42]["event"]).unwrap();
        base64::engine::general_purpose::STANDARD.encode(tlog_tiles::record_hash(&bytes).0)
    };
    lines[42]["leaf_hash"] = json!(leaf);
    rezip(&honest, &tampered, "log.jsonl", text_of(&lines).as_bytes());
    let (ok, text) = cli(&["verify", tampered.to_str().unwrap(), "--key", &key]);
    assert!(!ok && text.contains("checkpoint's root"), "{text}");
    // Another key, or a missing key, is refused.
    let other = checkpoints::generate_signing_key("someone-else").unwrap();
    let other = checkpoints::verifier_key_of(&other).unwrap();
    let (ok, text) = cli(&["verify", honest.to_str().unwrap(), "--key", &other]);
    assert!(
        !ok && text.contains("does not verify with this key"),
        "{text}"
    );
    let (ok, text) = cli(&["verify", honest.to_str().unwrap()]);
    assert!(!ok && text.contains("--key"), "{text}");
}
