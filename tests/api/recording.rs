//! Every authenticated request is recorded as activity of the caller's org,
//! off the request's path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::feed::{ActivityFilter, Scope};
use activity_gateway::domain::permission::Role;
use activity_gateway::service::activity;
use activity_gateway::service::keys::NewKey;
use sea_orm::{ConnectionTrait, Statement};

on_both_backends!(
    a_call_with_x_mcp_appears_in_me_activity_within_a_second,
    ten_thousand_concurrent_requests_record_ten_thousand_events,
    recording_switched_off_records_nothing,
    a_graphql_request_is_recorded_with_the_outcome_its_client_got,
);

async fn a_call_with_x_mcp_appears_in_me_activity_within_a_second(db: TestDb) {
    db.seed(50).await;
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
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = app
        .client
        .get(app.url("/v1/orgs/org_acme/workspaces/ws_acme_staging/apps/app_acme_staging_search/activity?limit=1"))
        .header("X-Api-Key", &key)
        .header("X-MCP", "claude-desktop")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(res.headers()["x-trace-id"], trace, "the trace id is echoed");
    assert_eq!(res.status(), 200);
    let mine = Scope::User("usr_acme_04".into());
    let event = loop {
        let page = activity::page(
            &db.db,
            "org_acme",
            &mine,
            &ActivityFilter::default(),
            10,
            None,
        )
        .await
        .unwrap();
        if let Some(e) = page
            .events
            .into_iter()
            .find(|e| e.trace_id.as_deref() == Some(trace))
        {
            break e;
        }
        assert!(
            answered.elapsed() < Duration::from_secs(1),
            "not recorded within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(event.principal_type.as_deref(), Some("mcp_agent"));
    assert_eq!(event.principal_id.as_deref(), Some("usr_acme_04"));
    assert_eq!(event.token_type.as_deref(), Some("api_key"));
    assert!(event.token_id.as_deref().unwrap().starts_with("key_"));
    assert_eq!(event.method.as_deref(), Some("GET"));
    assert_eq!(
        event.path.as_deref(),
        Some("/v1/orgs/org_acme/workspaces/ws_acme_staging/apps/app_acme_staging_search/activity")
    );
    assert_eq!(
        (event.resource_type.as_deref(), event.resource_id.as_deref()),
        (Some("app"), Some("app_acme_staging_search"))
    );
    // A read names what it read, but joins no hierarchy feed.
    assert_eq!(
        (event.workspace_id.as_deref(), event.app_id.as_deref()),
        (None, None)
    );
    assert_eq!(
        (event.action.as_str(), event.status_code, event.success),
        ("read", 200, true)
    );
    let metadata: serde_json::Value = serde_json::from_str(&event.metadata).unwrap();
    assert_eq!(metadata["mcp_client"], "claude-desktop");
    assert_eq!(
        metadata["route"],
        "/v1/orgs/{org_id}/workspaces/{workspace_id}/apps/{app_id}/activity"
    );
    // It is what /me/activity shows, and a failure is recorded with its code,
    // without the unverified ids of another org.
    let (status, _) = app
        .get(
            "/v1/orgs/org_acme/workspaces/ws_globex_staging/activity",
            &key,
        )
        .await;
    assert_eq!(status, 404);
    tokio::time::sleep(activity_gateway::service::recorder::FLUSH_EVERY * 3).await;
    let (_, me) = app.get("/v1/orgs/org_acme/me/activity?limit=5", &key).await;
    let failed = me["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["status_code"] == 404)
        .expect("the 404 was recorded")
        .clone();
    assert_eq!(
        (failed["error_code"].as_str(), failed["success"].as_bool()),
        (Some("RESOURCE_NOT_FOUND"), Some(false))
    );
    assert_eq!(failed["workspace_id"], serde_json::Value::Null);
    assert!(me["activities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["trace_id"] == trace));
    // GraphQL mutations are recorded with what they did.
    let admin = db.key("org_acme", Role::Admin).await;
    app.graphql(
        &admin,
        "mutation { ingestActivity(events: [{ action: \"read\" }]) { stored } }",
    )
    .await;
    app.stop().await;
    assert_eq!(
        db.count_events("resource_type = 'graphql' AND action = 'create' AND status_code = 200")
            .await,
        1
    );
}

async fn ten_thousand_concurrent_requests_record_ten_thousand_events(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = Arc::new(TestApp::spawn_with(&db.db, crate::common::recording(65_536)).await);
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10_000u32 {
        let (app, key, limit) = (app.clone(), key.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let res = app
                .client
                .post(app.url("/graphql"))
                .header("X-Api-Key", key)
                .header("traceparent", format!("00-{n:032x}-00f067aa0ba902b7-01"))
                .json(&serde_json::json!({ "query": "{ viewer { principalId } }" }))
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(app.recorder.dropped(), 0, "the buffer had room");
    Arc::into_inner(app).unwrap().stop().await;
    let token = "token_type = 'api_key' AND resource_type = 'graphql'";
    assert_eq!(db.count_events(token).await, 10_000, "none lost");
    let distinct = db
        .db
        .query_one_raw(Statement::from_string(
            db.db.get_database_backend(),
            format!("SELECT COUNT(DISTINCT trace_id) AS n FROM activity_events WHERE {token}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(distinct, 10_000, "none doubled");
}

async fn recording_switched_off_records_nothing(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let before = db.count_events("org_id = 'org_acme'").await;
    let app = TestApp::spawn(&db.db).await;
    for _ in 0..20 {
        assert_eq!(
            app.get("/v1/orgs/org_acme/activity?limit=1", &key).await.0,
            200
        );
    }
    app.stop().await;
    assert_eq!(db.count_events("org_id = 'org_acme'").await, before);
}

async fn a_graphql_request_is_recorded_with_the_outcome_its_client_got(db: TestDb) {
    db.seed(50).await;
    let key = db
        .key_with(NewKey {
            org_id: "org_acme".into(),
            role: None,
            permissions: [activity_gateway::domain::permission::Permission::DocsRead].into(),
            user_id: Some("usr_acme_07".into()),
            name: None,
        })
        .await;
    let app = TestApp::spawn_with(&db.db, crate::common::recording(1_000)).await;
    let cases = [
        ("{ org(id: ", "BAD_USER_INPUT"),
        (r#"{ org(id: "org_acme") { id } }"#, "FORBIDDEN"),
        (r#"{ node(id: "usr_nobody") { id } }"#, "FORBIDDEN"),
    ];
    for (query, _) in cases {
        app.graphql(&key, query).await;
    }
    // Partly successful: the viewer answers, its org does not.
    let (_, partial) = app
        .graphql(&key, r#"{ viewer { principalId org { id } } }"#)
        .await;
    assert!(
        partial["data"]["viewer"]["principalId"].is_string(),
        "{partial}"
    );
    let recorded = "org_id = 'org_acme' AND user_id = 'usr_acme_07' AND path = '/graphql'";
    for _ in 0..100 {
        if db.count_events(recorded).await >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            db.db.get_database_backend(),
            format!("SELECT status_code, success, error_code, metadata FROM activity_events WHERE {recorded} ORDER BY seq"),
        ))
        .await
        .unwrap();
    let seen: Vec<(i32, bool, Option<String>, serde_json::Value)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "status_code").unwrap(),
                r.try_get("", "success").unwrap(),
                r.try_get("", "error_code").unwrap(),
                serde_json::from_str(&r.try_get::<String>("", "metadata").unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for ((status, success, code, _), (_, expected)) in seen.iter().zip(cases) {
        assert_eq!(
            (*status, *success, code.as_deref()),
            (200, false, Some(expected))
        );
    }
    let (status, success, code, metadata) = &seen[3];
    assert_eq!(
        (*status, *success, code.as_deref()),
        (200, true, Some("FORBIDDEN"))
    );
    assert_eq!(metadata["errors"], 1, "{metadata}");
}
