//! An ingest answered 200 is durable: the test kills the server with SIGKILL
//! right after the answer and finds every event of the batch stored.

use std::process::{Command, Stdio};

use crate::common::{Served, TestDb};
use activity_gateway::domain::permission::Role;
use sea_orm::{ConnectionTrait, Statement};

on_both_backends!(kill_9_right_after_a_200_loses_nothing);

async fn kill_9_right_after_a_200_loses_nothing(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let Served { mut child, base } = Served::start(&db.url, &[], &[], Stdio::null()).await;
    let client = reqwest::Client::new();
    let batch: Vec<serde_json::Value> = (0..2_000)
        .map(|n| serde_json::json!({ "id": format!("act_durable{n:021}"), "action": "create" }))
        .collect();
    let res = client
        .post(format!("{base}/v1/orgs/org_acme/activity"))
        .header("X-Api-Key", &key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // No graceful anything: SIGKILL the moment the answer arrived.
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["stored"], 2_000);

    let reopened = activity_gateway::db::connect(&db.url).await.unwrap();
    let row = reopened
        .query_one_raw(Statement::from_string(
            reopened.get_database_backend(),
            "SELECT COUNT(*) AS n FROM activity_events WHERE id LIKE 'act_durable%'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 2_000);
}
