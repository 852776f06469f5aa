//! Relations are batched: 200 activities with five relations cost one query
//! per relation type. Alone in its binary: it relies on the loaders' batching
//! window, which heavy tests running beside it could stretch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::TestDb;
use activity_gateway::domain::permission::Role;

on_both_backends!(
    two_hundred_activities_with_five_relations_cost_seven_statements,
    a_pages_selected_relations_are_loaded_without_waiting_for_the_batching_window,
);

async fn two_hundred_activities_with_five_relations_cost_seven_statements(db: TestDb) {
    db.seed(3_000).await;
    let secret = db.key("org_acme", Role::Viewer).await;
    let principal =
        activity_gateway::service::keys::authenticate(&db.db, &Default::default(), &secret)
            .await
            .unwrap();
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let statements = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (counter, sql_log) = (statements.clone(), log.clone());
    counted.set_metric_callback(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        sql_log
            .lock()
            .unwrap()
            .push(info.statement.sql.chars().take(90).collect());
    });
    let schema = activity_gateway::graphql::build_schema(
        counted.clone(),
        Default::default(),
        Default::default(),
    );
    let query = "{ org(id: \"org_acme\") { activity(first: 200) { nodes { id user { email } workspace { name } app { name } endpoint { name } augmentation { name } } } } }";
    let run = || {
        // A window wide enough for a busy machine: what is measured is that
        // the loaders batch, not how fast this machine resolves 1,000 fields.
        let loaders = Arc::new(activity_gateway::graphql::loaders::Loaders::with_window(
            &counted,
            "org_acme",
            &Default::default(),
            std::time::Duration::from_millis(200),
        ));
        schema.execute(
            async_graphql::Request::new(query)
                .data(principal.clone())
                .data(loaders),
        )
    };
    // The first request also reads the cursor key, once per process.
    assert!(run().await.errors.is_empty());
    log.lock().unwrap().clear();
    statements.store(0, Ordering::SeqCst);
    let response = run().await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    let nodes = data["org"]["activity"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 200);
    for relation in ["user", "workspace", "app", "endpoint", "augmentation"] {
        assert!(
            nodes.iter().any(|n| n[relation].is_object()),
            "{relation} never loaded: the count would prove nothing"
        );
    }
    // The org lookup, then the page and one query per relation type: six for
    // the 200 activities and their relations.
    let log = log.lock().unwrap();
    assert_eq!(statements.load(Ordering::SeqCst), 7, "{log:#?}");
    assert!(log[0].contains("\"orgs\""), "{log:#?}");
}

async fn a_pages_selected_relations_are_loaded_without_waiting_for_the_batching_window(db: TestDb) {
    db.seed(500).await;
    let secret = db.key("org_acme", Role::Viewer).await;
    let principal =
        activity_gateway::service::keys::authenticate(&db.db, &Default::default(), &secret)
            .await
            .unwrap();
    let schema = activity_gateway::graphql::build_schema(
        db.db.clone(),
        Default::default(),
        Default::default(),
    );
    // A window of a minute: a relation that waited for it would hold the
    // answer for a minute.
    let window = std::time::Duration::from_secs(60);
    for query in [
        "{ org(id: \"org_acme\") { activity(first: 50) { nodes { id user { email } workspace { name } endpoint { name } } } } }",
        "{ org(id: \"org_acme\") { activity(first: 50) { edges { node { id ...Where } } } } } fragment Where on Activity { app { name } augmentation { name } }",
    ] {
        let loaders = Arc::new(activity_gateway::graphql::loaders::Loaders::with_window(
            &db.db,
            "org_acme",
            &Default::default(),
            window,
        ));
        let started = std::time::Instant::now();
        let response = schema
            .execute(
                async_graphql::Request::new(query)
                    .data(principal.clone())
                    .data(loaders),
            )
            .await;
        assert!(started.elapsed() < window / 4, "{query}: waited for the window");
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().unwrap();
        let activity = &data["org"]["activity"];
        let rows: Vec<&serde_json::Value> = match activity["nodes"].as_array() {
            Some(nodes) => nodes.iter().collect(),
            None => activity["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["node"])
                .collect(),
        };
        assert_eq!(rows.len(), 50);
        let loaded = |relation: &str, field: &str| {
            rows.iter()
                .filter(|r| r[relation][field].is_string())
                .count()
        };
        if query.contains("nodes") {
            assert!(loaded("user", "email") > 0 && loaded("workspace", "name") > 0);
            assert!(loaded("endpoint", "name") > 0);
        } else {
            assert!(loaded("app", "name") > 0 && loaded("augmentation", "name") > 0);
        }
    }
}
