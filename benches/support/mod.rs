//! What both benchmarks share: a fresh, migrated, seeded database per backend.

use std::time::Instant;

use activity_gateway::seed;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// A fresh database seeded with `events` demo events: a temporary SQLite file,
/// or a new database on the server at TEST_DATABASE_URL (`None` without one).
/// The temporary directory, if any, lives as long as the returned guard.
#[allow(dead_code)]
pub async fn open(
    backend: &str,
    name: &str,
    events: u64,
) -> Option<(DatabaseConnection, Option<tempfile::TempDir>)> {
    open_with_url(backend, name, events)
        .await
        .map(|(db, _, dir)| (db, dir))
}

/// [`open`], with the database's URL for other processes.
#[allow(dead_code)]
pub async fn open_with_url(
    backend: &str,
    name: &str,
    events: u64,
) -> Option<(DatabaseConnection, String, Option<tempfile::TempDir>)> {
    let (url, dir) = match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                ),
                Some(dir),
            )
        }
        _ => {
            let admin_url = std::env::var("TEST_DATABASE_URL").ok()?;
            let name = format!("ag_{name}_{}", std::process::id());
            let admin = Database::connect(admin_url.as_str()).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            (
                format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0),
                None,
            )
        }
    };
    let db = activity_gateway::db::connect(&url).await.unwrap();
    activity_gateway::db::migrate(&db).await.unwrap();
    let started = Instant::now();
    seed::seed(
        &db,
        &seed::SeedOptions {
            events,
            days: 14,
            seed: 42,
        },
        |_| {},
    )
    .await
    .unwrap();
    println!(
        "[{backend}] seeded {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Some((db, url, dir))
}

/// How many events match a SQL condition.
#[allow(dead_code)]
pub async fn count(db: &DatabaseConnection, condition: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM activity_events WHERE {condition}");
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// The real application on an ephemeral port: its base URL, and the sender
/// that stops it.
#[allow(dead_code)]
pub async fn serve(
    db: &DatabaseConnection,
    settings: activity_gateway::config::HttpArgs,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    use activity_gateway::app::{AppState, Application};
    let app = Application::build(
        AppState::new(db.clone(), settings),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    (base, tx)
}
