//! What an operator reads when a request fails on the server's side: the
//! client's 500 names nothing internal, and the server's one log line, with
//! the same error id, names the cause and the path. Through the real binary.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use activity_gateway::domain::permission::Role;
use common::TestDb;

on_both_backends!(an_export_into_an_unusable_directory_logs_its_path_and_cause);

async fn an_export_into_an_unusable_directory_logs_its_path_and_cause(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    // A directory that cannot exist: its parent is a file.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file").unwrap();
    let export_dir = blocker.join("exports");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &db.url,
            "--export-dir",
        ])
        .arg(&export_dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = client
        .post(format!("{base}/api/v5/artifacts/activity/export"))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 500);
    let body: serde_json::Value = answer.json().await.unwrap();
    let error_id = body["details"]["error_id"].as_str().unwrap().to_owned();
    let shown = body.to_string();
    assert!(
        !shown.contains("not-a-directory"),
        "no path to the client: {shown}"
    );
    assert!(!shown.to_lowercase().contains("os error"), "{shown}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&error_id))
        .unwrap_or_else(|| panic!("a log line with {error_id}: {log}"));
    assert!(line.contains(&export_dir.display().to_string()), "{line}");
    assert!(line.contains("Not a directory"), "{line}");
    assert_eq!(
        log.lines().filter(|l| l.contains(&error_id)).count(),
        1,
        "one line: {log}"
    );
}
