//! Shared test harness: a fresh database per test, built by the real Migrator,
//! on SQLite (a temporary file) and on PostgreSQL (a new database on the server
//! at `TEST_DATABASE_URL`), and the real application served on port 0.
#![allow(dead_code)]

pub mod prometheus;

use std::net::SocketAddr;
use std::sync::Once;

use activity_gateway::app::{AppState, Application};
use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use activity_gateway::seed::{self, SeedOptions};
use activity_gateway::service::keys::{self, NewKey};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const JWT_SECRET: &str = "test-jwt-secret-of-a-reasonable-length";

pub struct TestDb {
    pub backend: Backend,
    pub db: DatabaseConnection,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// A PostgreSQL test database is dropped with its `TestDb`.
    dropped_with: Option<DropDatabase>,
}

/// Drops a test database when the test ends, passed or failed, so a
/// developer's server does not collect them.
struct DropDatabase {
    admin_url: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which may not block: a thread
        // of its own with a runtime of its own. FORCE ends the connections a
        // pool or a spawned gateway still holds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await.ok()?;
                let dropped = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                admin.close().await.ok();
                dropped.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("NOTE: test database {} was not dropped", self.name);
        }
    }
}

fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if url.is_none() {
        if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!(
                "REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set: the PostgreSQL tier must run"
            );
        }
        SKIP_NOTICE.call_once(|| {
            eprintln!(
                "NOTE: PostgreSQL tier SKIPPED (set TEST_DATABASE_URL, or run scripts/test.sh)"
            )
        });
    }
    url
}

/// The migrated template, named for the migrations' text so a changed
/// migration gets a new one. Made once per server: test processes (and the
/// tests within one) take an advisory lock to make it, and only a complete
/// template carries the name (it is migrated under another, then renamed).
async fn migrated_template(admin_url: &str) -> String {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("ag_template_{}", migrations_fingerprint());
            let admin = Database::connect(admin_url)
                .await
                .expect("TEST_DATABASE_URL answers");
            admin
                .execute_unprepared("SELECT pg_advisory_lock(727274)")
                .await
                .expect("template lock");
            let exists = admin
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT 1 FROM pg_database WHERE datname = $1",
                    [name.clone().into()],
                ))
                .await
                .expect("pg_database answers")
                .is_some();
            if !exists {
                let building = format!("{name}_building");
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .await
                    .expect("drop a half-built template");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {building}"))
                    .await
                    .expect("create the template");
                let db = activity_gateway::db::connect(&with_database(admin_url, &building))
                    .await
                    .expect("template opens");
                activity_gateway::db::migrate(&db)
                    .await
                    .expect("migrations apply");
                db.close().await.ok();
                admin
                    .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await
                    .expect("name the template");
            }
            admin
                .execute_unprepared("SELECT pg_advisory_unlock(727274)")
                .await
                .ok();
            admin.close().await.ok();
            name
        })
        .await
        .clone()
}

/// A short hash of every migration file's text.
fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migration/src")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(file.file_name().unwrap().as_encoded_bytes());
        hash.update(std::fs::read(&file).unwrap());
    }
    hex::encode(&hash.finalize()[..8])
}

static SKIP_NOTICE: Once = Once::new();

impl TestDb {
    /// A fresh, migrated database; `None` when the PostgreSQL tier is skipped
    /// (no `TEST_DATABASE_URL`), which `REQUIRE_POSTGRES=1` turns into a failure.
    /// On PostgreSQL it is a copy of a template migrated once per version of
    /// the migrations, and it is dropped when the test ends.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        if backend == Backend::Postgres {
            let admin_url = postgres_admin_url()?;
            let template = migrated_template(&admin_url).await;
            return Some(Self::create_postgres(&admin_url, Some(&template)).await);
        }
        let db = Self::empty(backend).await?;
        activity_gateway::db::migrate(&db.db)
            .await
            .expect("migrations apply");
        Some(db)
    }

    /// A fresh database with no schema at all.
    pub async fn empty(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                let db = activity_gateway::db::connect(&url)
                    .await
                    .expect("sqlite opens");
                Some(TestDb {
                    backend,
                    db,
                    url,
                    _dir: Some(dir),
                    dropped_with: None,
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url()?;
                Some(Self::create_postgres(&admin_url, None).await)
            }
        }
    }

    /// A new database on the test server, empty or copied from `template`.
    async fn create_postgres(admin_url: &str, template: Option<&str>) -> TestDb {
        let name = format!("ag_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .expect("TEST_DATABASE_URL answers");
        let from = template.map_or(String::new(), |t| format!(" TEMPLATE {t}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}{from}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(admin_url, &name);
        let db = activity_gateway::db::connect(&url)
            .await
            .expect("test database opens");
        TestDb {
            backend: Backend::Postgres,
            db,
            url,
            _dir: None,
            dropped_with: Some(DropDatabase {
                admin_url: admin_url.to_owned(),
                name,
            }),
        }
    }

    /// Seeds a small demo data set.
    pub async fn seed(&self, events: u64) -> seed::SeedReport {
        seed::seed(
            &self.db,
            &SeedOptions {
                events,
                days: 14,
                seed: 7,
            },
            |_| {},
        )
        .await
        .expect("seed")
    }

    /// How many activity events match a SQL condition.
    pub async fn count_events(&self, condition: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM activity_events WHERE {condition}");
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    /// The statement `sql` with `values` bound to its `?` placeholders (in
    /// order; written `$1`, `$2`, ... for PostgreSQL here): values are never
    /// spliced into the text.
    pub fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> sea_orm::Statement {
        let backend = self.db.get_database_backend();
        let sql = match self.backend {
            Backend::Sqlite => sql.to_owned(),
            Backend::Postgres => {
                let mut numbered = String::with_capacity(sql.len() + 8);
                for (i, part) in sql.split('?').enumerate() {
                    if i > 0 {
                        numbered.push_str(&format!("${i}"));
                    }
                    numbered.push_str(part);
                }
                numbered
            }
        };
        sea_orm::Statement::from_sql_and_values(backend, sql, values)
    }

    /// The rows `sql` answers with `values` bound ([`TestDb::statement`]).
    pub async fn rows(&self, sql: &str, values: Vec<sea_orm::Value>) -> Vec<sea_orm::QueryResult> {
        self.db
            .query_all_raw(self.statement(sql, values))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The log indexes of `org`'s events, in order.
    pub async fn log_indexes(&self, org: &str) -> Vec<i64> {
        self.rows(
            "SELECT log_index FROM activity_events WHERE org_id = ? ORDER BY log_index",
            vec![org.into()],
        )
        .await
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect()
    }

    /// Runs `sql` with `values` bound ([`TestDb::statement`]).
    pub async fn run(&self, sql: &str, values: Vec<sea_orm::Value>) {
        self.db
            .execute_raw(self.statement(sql, values))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn key(&self, org: &str, role: Role) -> String {
        self.key_with(NewKey {
            org_id: org.into(),
            role: Some(role),
            permissions: Default::default(),
            user_id: None,
            name: None,
        })
        .await
    }

    pub async fn key_with(&self, new: NewKey) -> String {
        keys::create(&self.db, new)
            .await
            .expect("key created")
            .secret
    }
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b, Some(q)))
        .unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The real application, served over real TCP on an ephemeral port (for
/// what needs a socket: `client` and `url`) and reachable in process through
/// its router (`get`, `post_json`, `graphql`, `post_artifact`: one
/// `oneshot` call each, no socket, the same state).
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub recorder: activity_gateway::service::recorder::Recorder,
    router: axum::Router,
    graphql: activity_gateway::graphql::GraphqlState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings with request recording on and room for `capacity` events.
pub fn recording(capacity: usize) -> HttpArgs {
    HttpArgs {
        record_requests: true,
        recorder_capacity: capacity,
        ..test_settings()
    }
}

/// Recording is off by default in tests, so that tests counting events see
/// only their own; the recording tests switch it on.
/// The stream secrets key of the tests: base64 of 32 bytes.
pub const STREAM_SECRETS_KEY: &str = "x+yq1NY6sLMjpLFqbIyPKa78cVGH5xeuc4UMJAyoReI=";

pub fn test_settings() -> HttpArgs {
    HttpArgs {
        jwt_secret: Some(JWT_SECRET.to_owned()),
        record_requests: false,
        // A key of its own, so that no test writes a key file.
        streams: activity_gateway::config::StreamArgs {
            stream_secrets_key: Some(STREAM_SECRETS_KEY.to_owned()),
            ..Default::default()
        },
        ..HttpArgs::default()
    }
}

impl TestApp {
    pub async fn spawn(db: &DatabaseConnection) -> TestApp {
        Self::spawn_with(db, test_settings()).await
    }

    pub async fn spawn_with(db: &DatabaseConnection, settings: HttpArgs) -> TestApp {
        Self::spawn_on(db, settings, "127.0.0.1:0".parse().unwrap()).await
    }

    /// [`TestApp::spawn_with`] on `bind` (port 0: any free port).
    pub async fn spawn_on(
        db: &DatabaseConnection,
        settings: HttpArgs,
        bind: SocketAddr,
    ) -> TestApp {
        let state = AppState::new(db.clone(), settings);
        let recorder = state.recorder.clone();
        let router = activity_gateway::app::router(state.clone());
        let graphql = activity_gateway::graphql::GraphqlState::new(&state);
        let app = Application::build(state, bind).await.expect("binds");
        let addr = app.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
            recorder,
            router,
            graphql,
        }
    }

    /// Runs a GraphQL query on the schema itself, no HTTP: for resolver
    /// behaviour. The key is resolved as a transport would; the answer is
    /// the JSON a client would read (`data`, `errors`).
    pub async fn execute(&self, key: &str, query: &str) -> serde_json::Value {
        self.execute_with(key, query, serde_json::json!({})).await
    }

    /// [`TestApp::execute`] with variables.
    pub async fn execute_with(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("X-Api-Key", key.parse().expect("a header value"));
        let principal = activity_gateway::auth::resolve(
            &self.graphql.db,
            &self.graphql.keys,
            self.graphql.jwt_secret(),
            &headers,
        )
        .await
        .expect("a valid key");
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        serde_json::to_value(self.graphql.execute(&principal, request).await)
            .expect("an answer is JSON")
    }

    /// Sends `request` through the router in process, as the server would
    /// (without its connection loop); answers (status, body as JSON, or as a
    /// string when it is not JSON).
    pub async fn oneshot(
        &self,
        request: axum::http::Request<axum::body::Body>,
    ) -> (u16, serde_json::Value) {
        use tower::ServiceExt as _;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers every request");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        let body =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.into_owned()));
        (status, body)
    }

    /// A request with an API key and, when `body` is given, that JSON body.
    fn request(
        method: &str,
        path: &str,
        key: &str,
        body: Option<&serde_json::Value>,
    ) -> axum::http::Request<axum::body::Body> {
        let builder = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("X-Api-Key", key);
        match body {
            Some(body) => builder
                .header("Content-Type", "application/json")
                .body(axum::body::Body::from(body.to_string())),
            None => builder.body(axum::body::Body::empty()),
        }
        .expect("a valid request")
    }

    /// Shuts down gracefully and waits until the server (and its recorder) finished.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a JSON body to one of the `/api/v5/artifacts/activity` routes.
    pub async fn post_artifact(
        &self,
        key: &str,
        route: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let path = format!("/api/v5/artifacts/activity/{route}");
        self.oneshot(Self::request("POST", &path, key, Some(&body)))
            .await
    }

    /// The download of an export once its job ended: asks again while the
    /// route answers 202, as its `Retry-After` says (at most a minute).
    pub async fn finished_export(&self, key: &str, upload_id: &str) -> reqwest::Response {
        export_when_finished(&self.client, &self.url(""), key, upload_id).await
    }

    /// POSTs a JSON body to `path` with an API key.
    pub async fn post_json(
        &self,
        key: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.oneshot(Self::request("POST", path, key, Some(body)))
            .await
    }

    /// One figure of `/metrics` without labels, as a Prometheus parser reads it.
    pub async fn metric(&self, key: &str, name: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .header("X-Api-Key", key)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        prometheus::value(&prometheus::parse(&text), name, &[])
            .unwrap_or_else(|| panic!("{name} in {text}")) as u64
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, serde_json::Value) {
        self.oneshot(Self::request("GET", path, key, None)).await
    }

    /// POSTs a GraphQL query with an API key; answers (status, body).
    pub async fn graphql(&self, key: &str, query: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "query": query, "variables": {} });
        self.oneshot(Self::request("POST", "/graphql", key, Some(&body)))
            .await
    }

    pub async fn graphql_with(
        &self,
        query: &str,
        variables: serde_json::Value,
        auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> (u16, serde_json::Value) {
        let req = self
            .client
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        read(auth(req).send().await.expect("request")).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn read(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// Declares `name::sqlite` and `name::postgres`, each running `async fn name(TestDb)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite).await.expect("sqlite always runs");
                super::$name(db).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::new($crate::common::Backend::Postgres).await {
                    super::$name(db).await
                }
            }
        }
    )*};
}

/// [`TestApp::finished_export`] against any gateway at `base`.
pub async fn export_when_finished(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    upload_id: &str,
) -> reqwest::Response {
    let url = format!("{base}/api/v5/artifacts/activity/exports/{upload_id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let response = client
            .get(&url)
            .header("X-Api-Key", key)
            .send()
            .await
            .expect("request");
        if response.status() != 202 {
            return response;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "export {upload_id} still not done after a minute"
        );
        assert_eq!(response.headers()["retry-after"], "1");
        let state: serde_json::Value = response.json().await.unwrap();
        assert!(
            ["pending", "running"].contains(&state["status"].as_str().unwrap()),
            "{state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A free local port (bound, then released for the process about to bind it).
/// Runs the gateway's binary with `args`: whether it succeeded (exit status
/// 0, else exactly 1, or 2 for clap's usage errors), and what it printed,
/// stdout then stderr. It never panics, whatever it is given.
pub fn cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    let usage_error = out.status.code() == Some(2) && text.contains("try '--help'");
    assert_eq!(
        out.status.code(),
        Some(if out.status.success() {
            0
        } else if usage_error {
            2
        } else {
            1
        }),
        "{text}"
    );
    (out.status.success(), text)
}

/// `tests/conformance/.venv` with the pinned fuzzer and validator installed
/// (once), and the path of its `bin`.
pub fn python_tools() -> std::path::PathBuf {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance"));
    let bin = dir.join(".venv/bin");
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if !*installed {
        if !bin.join("python").exists() {
            let status = std::process::Command::new("python3")
                .args(["-m", "venv", ".venv"])
                .current_dir(&dir)
                .status()
                .expect("python3 runs");
            assert!(status.success(), "python3 -m venv failed");
        }
        let status = std::process::Command::new(bin.join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                "requirements.txt",
            ])
            .current_dir(&dir)
            .status()
            .expect("pip runs");
        assert!(
            status.success(),
            "pip install -r tests/conformance/requirements.txt failed"
        );
        *installed = true;
    }
    bin
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary serving a database on a free port, once it answers
/// `/readyz`.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
}

impl Served {
    /// `serve --bind … --database-url <url>` plus `args`, with `env` added
    /// (and the OTLP variables removed unless `env` sets them); stdout is
    /// dropped, stderr goes where `stderr` says.
    pub async fn start(
        url: &str,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
        stderr: std::process::Stdio,
    ) -> Served {
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                url,
            ])
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while client.get(format!("{base}/readyz")).send().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Served { child, base }
    }
}

/// SIGTERM, then waits (30 s at most) for the graceful exit, which must be 0.
pub fn terminate(child: &mut std::process::Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "graceful shutdown exits 0");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One column of a CSV file in an export ZIP, a value per data row.
pub fn zip_csv_column(zip: &[u8], file: &str, column: &str) -> Vec<String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a ZIP");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut archive.by_name(file).expect(file), &mut text).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {file}"));
    reader
        .records()
        .map(|r| r.unwrap()[at].to_owned())
        .collect()
}
