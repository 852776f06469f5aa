//! The foundation: migrations, seeding, the CLI, and the server's own routes.

use std::process::Command;

use crate::common::{read, TestApp, TestDb};
use activity_gateway::db;
use sea_orm::{ConnectionTrait, Statement};

on_both_backends!(
    migrations_apply_from_empty_and_a_second_run_changes_nothing,
    seeding_twice_with_the_same_seed_gives_the_same_ids_and_counts,
    the_demo_set_has_every_kind_of_record,
    healthz_and_readyz_answer_ok_with_a_database,
    a_body_over_the_limit_answers_413_in_the_envelope,
    malformed_json_answers_400_on_graphql_and_422_on_rest,
    unknown_routes_and_methods_answer_in_the_envelope,
);

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
}

async fn table_names(db: &TestDb) -> Vec<String> {
    let sql = match db.backend {
        crate::common::Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type IN ('table','index') ORDER BY name",
        crate::common::Backend::Postgres => {
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY name"
        }
    };
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect()
}

async fn migrations_apply_from_empty_and_a_second_run_changes_nothing(migrated: TestDb) {
    let db = TestDb::empty(migrated.backend).await.unwrap();
    assert_eq!(db::pending_migrations(&db.db).await.unwrap(), 8);
    assert!(table_names(&db)
        .await
        .iter()
        .all(|t| !t.contains("activity")));

    let first = binary()
        .args(["migrate", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "applied 8 migration(s); the schema is up to date"
    );
    let after_first = table_names(&db).await;
    assert!(after_first.contains(&"activity_events".to_owned()));
    assert!(after_first.contains(&"ix_activity_events_workspace_ts".to_owned()));

    let second = binary()
        .args(["migrate", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "applied 0 migration(s); the schema is up to date"
    );
    assert_eq!(table_names(&db).await, after_first);
    assert_eq!(db::pending_migrations(&db.db).await.unwrap(), 0);
}

async fn ids_of(db: &TestDb, table: &str) -> Vec<String> {
    let sql = format!("SELECT id FROM {table} ORDER BY id");
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "id").unwrap())
        .collect()
}

async fn seeding_twice_with_the_same_seed_gives_the_same_ids_and_counts(first: TestDb) {
    let second = TestDb::new(first.backend).await.unwrap();
    for db in [&first, &second] {
        let out = binary()
            .args([
                "seed",
                "--events",
                "3000",
                "--days",
                "3",
                "--seed",
                "11",
                "--database-url",
                &db.url,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("seeded 3000 events"));
    }
    for table in [
        "activity_events",
        "sessions",
        "users",
        "workspaces",
        "endpoints",
        "problems",
        "departments",
    ] {
        let a = ids_of(&first, table).await;
        assert!(!a.is_empty(), "{table} is seeded");
        assert_eq!(
            a,
            ids_of(&second, table).await,
            "{table} ids differ between runs"
        );
    }
    // Seeding again into the same database replaces the demo orgs: same ids, same counts.
    let before = ids_of(&first, "activity_events").await;
    let again = binary()
        .args([
            "seed",
            "--events",
            "3000",
            "--days",
            "3",
            "--seed",
            "11",
            "--database-url",
            &first.url,
        ])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(ids_of(&first, "activity_events").await, before);
    // Another seed gives other events.
    let other = TestDb::new(first.backend).await.unwrap();
    binary()
        .args([
            "seed",
            "--events",
            "3000",
            "--days",
            "3",
            "--seed",
            "12",
            "--database-url",
            &other.url,
        ])
        .output()
        .unwrap();
    assert_ne!(ids_of(&other, "activity_events").await, before);
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let row = db
        .db
        .query_one_raw(Statement::from_string(db.db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn the_demo_set_has_every_kind_of_record(db: TestDb) {
    let report = db.seed(5_000).await;
    assert_eq!(report.events, 5_000);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM activity_events").await,
        5_000
    );
    for org in ["org_acme", "org_globex"] {
        for (what, sql) in [
            ("workspaces", "SELECT COUNT(*) FROM workspaces WHERE org_id = '{org}'"),
            ("apps", "SELECT COUNT(*) FROM apps WHERE org_id = '{org}'"),
            ("endpoints", "SELECT COUNT(*) FROM endpoints WHERE org_id = '{org}'"),
            ("augmentations", "SELECT COUNT(*) FROM augmentations WHERE org_id = '{org}'"),
            ("departments", "SELECT COUNT(*) FROM departments WHERE org_id = '{org}'"),
            ("admins", "SELECT COUNT(*) FROM users WHERE org_id = '{org}' AND role = 'admin'"),
            ("members", "SELECT COUNT(*) FROM users WHERE org_id = '{org}' AND role = 'member'"),
            ("viewers", "SELECT COUNT(*) FROM users WHERE org_id = '{org}' AND role = 'viewer'"),
            ("logins", "SELECT COUNT(*) FROM sessions WHERE org_id = '{org}' AND kind = 'login'"),
            ("emulations", "SELECT COUNT(*) FROM sessions WHERE org_id = '{org}' AND kind = 'emulation'"),
            ("active sessions", "SELECT COUNT(*) FROM sessions WHERE org_id = '{org}' AND ended_at IS NULL"),
            ("problems", "SELECT COUNT(*) FROM problems WHERE org_id = '{org}'"),
            ("errors", "SELECT COUNT(*) FROM activity_events WHERE org_id = '{org}' AND success = false"),
            ("token usage", "SELECT COUNT(*) FROM activity_events WHERE org_id = '{org}' AND tokens_total > 0"),
            ("last 24 hours", "SELECT COUNT(*) FROM activity_events WHERE org_id = '{org}' AND ts > (SELECT MAX(ts) FROM activity_events) - 86400000000"),
        ] {
            let n = count(&db, &sql.replace("{org}", org)).await;
            assert!(n > 0, "{org} has no {what}");
        }
    }
    // Several actions and resource types, in realistic proportions: reads dominate.
    assert!(count(&db, "SELECT COUNT(DISTINCT action) FROM activity_events").await >= 6);
    assert!(
        count(
            &db,
            "SELECT COUNT(DISTINCT resource_type) FROM activity_events"
        )
        .await
            >= 4
    );
    let reads = count(
        &db,
        "SELECT COUNT(*) FROM activity_events WHERE action = 'read'",
    )
    .await;
    assert!(reads > 1_500 && reads < 3_500, "reads: {reads}");
}

async fn healthz_and_readyz_answer_ok_with_a_database(db: TestDb) {
    let app = TestApp::spawn(&db.db).await;
    let (status, body) = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, body["database"].as_str()), (200, Some("ok")));
}

async fn a_body_over_the_limit_answers_413_in_the_envelope(db: TestDb) {
    let settings = activity_gateway::config::HttpArgs {
        max_body_bytes: 1024,
        ..crate::common::test_settings()
    };
    let app = TestApp::spawn_with(&db.db, settings).await;
    let key = {
        db.seed(10).await;
        db.key(
            "org_acme",
            activity_gateway::domain::permission::Role::Admin,
        )
        .await
    };
    let body_of = |len: usize| {
        let frame = r#"{"query":"{ viewer { principalId } }","x":""}"#;
        format!(
            r#"{{"query":"{{ viewer {{ principalId }} }}","x":"{}"}}"#,
            "a".repeat(len - frame.len())
        )
    };
    let at_limit = body_of(1024);
    assert_eq!(at_limit.len(), 1024);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["viewer"]["principalId"].is_string());

    let over = body_of(1025);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "PAYLOAD_TOO_LARGE");
    assert_eq!(body["status_code"], 413);
    assert!(body["timestamp"].is_string());
}

async fn malformed_json_answers_400_on_graphql_and_422_on_rest(db: TestDb) {
    db.seed(10).await;
    let key = db
        .key(
            "org_acme",
            activity_gateway::domain::permission::Role::Admin,
        )
        .await;
    let app = TestApp::spawn(&db.db).await;
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    // /graphql answers as GraphQL over HTTP does: 400, a GraphQL error.
    let (status, body) = read(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("The body is not valid JSON"));
    // REST answers the contract's 422 at the body.
    let res = app
        .client
        .post(app.url("/v1/orgs/org_acme/activity"))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body("[{\"action\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["type"], "json_invalid");
}

async fn unknown_routes_and_methods_answer_in_the_envelope(db: TestDb) {
    let app = TestApp::spawn(&db.db).await;
    let (status, body) = read(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "RESOURCE_NOT_FOUND");
    assert_eq!(
        body["details"],
        serde_json::json!({ "resource_type": "route", "resource_id": "/no/such/route" })
    );
    let (status, body) = read(app.client.delete(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
}

#[test]
fn postgres_urls_get_their_database_replaced() {
    assert_eq!(
        crate::common::with_database("postgres://u@h:5/postgres", "x"),
        "postgres://u@h:5/x"
    );
    assert_eq!(
        crate::common::with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
        "postgres://u@h:5/x?sslmode=disable"
    );
    assert_eq!(
        crate::common::with_database("postgres://u@h:5", "x"),
        "postgres://u@h:5/x"
    );
}

/// `activity-gateway openapi | head -c 100`: the reader goes away, the
/// command ends quietly and successfully, with no panic.
#[test]
fn a_closed_pipe_ends_printing_quietly() {
    use std::io::Read as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe is closed here; the document is larger than a pipe's buffer.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Every flag's environment variable is in the README's configuration table,
/// so the table cannot drift from the command line.
#[test]
fn the_readme_names_every_environment_variable_of_the_command_line() {
    use clap::CommandFactory as _;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    fn walk(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut variables = Vec::new();
    walk(&activity_gateway::config::Cli::command(), &mut variables);
    assert!(variables.len() > 20, "{variables:?}");
    let missing: Vec<&String> = variables
        .iter()
        .filter(|v| {
            let short = v.trim_start_matches("ACTIVITY_GATEWAY");
            !table.contains(&format!("`{v}`")) && !table.contains(&format!("`{short}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's configuration table: {missing:?}"
    );
}

/// Every flag and argument of every command says what it is in `--help`,
/// and names its variable without a value (not `[env: NAME=]`), as the real
/// binary prints it.
#[test]
fn every_flag_and_argument_is_described_in_help_and_names_its_variable_bare() {
    fn walk(command: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            assert!(
                builtin || arg.get_help().is_some(),
                "{path:?} {} has no description",
                arg.get_id()
            );
        }
        if command.get_subcommands().next().is_none() {
            out.push(path.clone());
        }
        for sub in command.get_subcommands() {
            path.push(sub.get_name().to_owned());
            walk(sub, path, out);
            path.pop();
        }
    }
    let command = activity_gateway::config::Cli::command_line();
    let mut leaves = Vec::new();
    walk(&command, &mut Vec::new(), &mut leaves);
    assert!(
        leaves.iter().any(|l| l == &["keys", "revoke"]),
        "{leaves:?}"
    );
    for leaf in leaves {
        let output = binary().args(&leaf).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{leaf:?}: {help}");
        assert!(!help.contains("=]"), "{leaf:?}: {help}");
        if leaf == ["serve"] {
            assert!(
                help.contains("[env: ACTIVITY_GATEWAY_BIND] [default: 127.0.0.1:8080]"),
                "{help}"
            );
        }
    }
}

/// `--db-pool-size` takes 0 (the backend's default) to 1000, and refuses
/// more, as clap refuses a bad flag (exit 2, naming the range).
#[test]
fn the_pool_size_is_taken_up_to_its_limit_and_refused_past_it() {
    let parse = |size: &str| {
        activity_gateway::config::Cli::command_line().try_get_matches_from([
            "activity-gateway",
            "serve",
            "--db-pool-size",
            size,
        ])
    };
    for size in ["0", "1", "1000"] {
        assert!(parse(size).is_ok(), "{size}");
    }
    for size in ["1001", "-1", "many"] {
        assert!(parse(size).is_err(), "{size}");
    }
    let output = binary()
        .args(["serve", "--db-pool-size", "1001"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("0..=1000"), "{stderr}");
}

/// `--log-format json` writes one JSON object per log line, for log shippers.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("logs.db").display());
    let output = binary()
        .args(["--log-format", "json", "migrate", "--database-url", &url])
        .env("RUST_LOG", "activity_gateway=debug,sea_orm_migration=info")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            parsed["level"].is_string() && parsed["fields"].is_object(),
            "{line}"
        );
        assert!(!line.contains('\u{1b}'), "colour codes in a JSON line");
    }
}

/// An export to a directory that does not exist says which path and why,
/// in one line, and fails.
#[test]
fn an_export_to_a_missing_directory_names_the_path_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("export.db").display()
    );
    let seeded = binary()
        .args([
            "seed",
            "--events",
            "100",
            "--days",
            "1",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(seeded.status.success());
    let out = dir.path().join("missing").join("acme.zip");
    let output = binary()
        .args([
            "export",
            "--org",
            "org_acme",
            "--database-url",
            &url,
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains(&dir.path().join("missing").display().to_string()),
        "{stderr}"
    );
    assert!(line.contains("No such file or directory"), "{stderr}");
    assert!(!stderr.contains("unexpected error"), "{stderr}");
}

/// A database that cannot be reached is named with its cause, at once: the
/// PostgreSQL host and port (never the password) and the refusal, the SQLite
/// file and why it cannot be opened.
#[test]
fn an_unreachable_database_is_named_with_its_cause_at_once() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let output = binary()
        .args(["migrate", "--database-url"])
        .arg(format!("postgres://postgres:hunter2@127.0.0.1:{port}/x"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    assert!(!stderr.contains("timed out"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing").join("x.db");
    let output = binary()
        .args(["migrate", "--database-url"])
        .arg(format!("sqlite://{}?mode=rwc", file.display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("unable to open database file"), "{stderr}");
}
