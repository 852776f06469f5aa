//! The big JSON answers, as recorded: the OpenAPI document, the activity
//! docs and the session analytics of a hand-made fixture are compared with
//! `insta` snapshots in `tests/api/snapshots/` (times that move with the
//! clock redacted), so any change to them shows in review as a diff. Both
//! backends must give the same recorded answer.

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use serde_json::{json, Value};

on_both_backends!(the_docs_answer_is_as_recorded);

#[test]
fn the_openapi_document_is_as_recorded() {
    let document: Value = serde_json::from_str(&activity_gateway::rest::openapi::json()).unwrap();
    insta::assert_json_snapshot!("openapi", document);
}

async fn the_docs_answer_is_as_recorded(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, docs) = app.post_artifact(&key, "docs", json!({})).await;
    assert_eq!(status, 200, "{docs}");
    insta::assert_json_snapshot!("docs", docs);
    app.stop().await;
}
