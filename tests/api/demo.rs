//! The README's run command: `serve --demo` on an empty SQLite file in the
//! working directory seeds the demo set and prints a working admin key per org.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_seeds_an_empty_database_and_prints_working_admin_keys() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lines.iter().any(|l: &String| l.contains("listening on")) {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("serve --demo printed its banner");
        lines.push(line);
    }
    let keys: Vec<String> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("agk_"))
        .map(str::to_owned)
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("org_acme"))
            && lines.iter().any(|l| l.contains("org_globex")),
        "{lines:?}"
    );
    assert_eq!(keys.len(), 2, "one admin key per demo org: {lines:?}");
    assert!(
        dir.path().join("activity-gateway.db").exists(),
        "the default database is a file in the working directory"
    );

    let client = reqwest::Client::new();
    for (key, org) in keys.iter().zip(["org_acme", "org_globex"]) {
        let body: serde_json::Value = client
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .header("X-Api-Key", key)
            .json(&serde_json::json!({ "query": "{ viewer { permissions org { id } } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"]["viewer"]["org"]["id"], org);
        assert_eq!(
            body["data"]["viewer"]["permissions"]
                .as_array()
                .unwrap()
                .len(),
            11,
            "admin"
        );
    }
    // The printed GraphiQL URL serves the page, without a credential.
    let graphiql = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("GraphiQL: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the GraphiQL URL is printed");
    assert_eq!(graphiql, format!("http://127.0.0.1:{port}/graphiql"));
    let page = client.get(graphiql).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql.min.js"));
    // SIGTERM stops it gracefully.
    crate::common::terminate(&mut child);
}
