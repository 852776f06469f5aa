//! What an operator reads when a request fails on the server's side: the
//! client's 500 names nothing internal, and the server's one log line, with
//! the same error id, names the cause and the path. Through the real binary.

use std::io::Read as _;
use std::process::Stdio;

use crate::common::{terminate, Served, TestDb};
use activity_gateway::domain::permission::Role;

on_both_backends!(an_export_into_an_unusable_directory_logs_its_path_and_cause);

async fn an_export_into_an_unusable_directory_logs_its_path_and_cause(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    // A directory that cannot exist: its parent is a file.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file").unwrap();
    let export_dir = blocker.join("exports");
    let mut served = Served::start(
        &db.url,
        &["--export-dir".as_ref(), export_dir.as_os_str()],
        &[("NO_COLOR", "1")],
        Stdio::piped(),
    )
    .await;
    let client = reqwest::Client::new();
    let base = &served.base;
    let queued = client
        .post(format!("{base}/api/v5/artifacts/activity/export"))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 200, "the job is queued");
    let queued: serde_json::Value = queued.json().await.unwrap();
    // The job fails on the runner; its download says so with the error id.
    let answer = crate::common::export_when_finished(
        &client,
        base,
        &key,
        queued["upload_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(answer.status(), 500);
    let body: serde_json::Value = answer.json().await.unwrap();
    let error_id = body["details"]["error_id"].as_str().unwrap().to_owned();
    let shown = body.to_string();
    assert!(
        !shown.contains("not-a-directory"),
        "no path to the client: {shown}"
    );
    assert!(!shown.to_lowercase().contains("os error"), "{shown}");
    terminate(&mut served.child);
    let mut log = String::new();
    served
        .child
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
