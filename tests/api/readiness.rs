//! `/readyz` really fails when the database is unreachable and recovers by
//! itself. The outage is real: the app reaches PostgreSQL through a TCP proxy
//! that the test cuts (closing every connection) and then restores.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{read, Backend, TestApp, TestDb};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(listen: SocketAddr, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(listen).await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Proxy {
            addr,
            target,
            tasks,
        }
    }

    /// Stops listening and drops every proxied connection.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn readyz(app: &TestApp) -> (u16, serde_json::Value) {
    read(app.client.get(app.url("/readyz")).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_postgres_is_unreachable_and_recovers_without_a_restart() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let target: SocketAddr = {
        let after_at = db.url.split('@').nth(1).unwrap();
        let host_port = after_at.split('/').next().unwrap();
        tokio::net::lookup_host(host_port)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), target).await;
    let via_proxy = db.url.replace(&target.to_string(), &proxy.addr.to_string());
    assert_ne!(via_proxy, db.url, "the app must go through the proxy");
    let conn = activity_gateway::db::connect(&via_proxy).await.unwrap();
    let app = TestApp::spawn(&conn).await;
    assert_eq!(readyz(&app).await.0, 200);

    proxy.cut();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE");
    assert_eq!(body["status_code"], 503);
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.to_lowercase().contains("sqlx"),
        "no internals: {text}"
    );
    // The process is still up.
    assert_eq!(
        read(app.client.get(app.url("/healthz")).send().await.unwrap())
            .await
            .0,
        200
    );

    let restored = Proxy::start(proxy.addr, proxy.target).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = readyz(&app).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    restored.cut();
}

/// The request timeout answers 408 in the envelope. The slowness is real: the
/// test holds a lock on `activity_events`, so the feed's read waits past the
/// timeout (the key itself is kept by the gateway after the first request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_answers_408_in_the_envelope() {
    use activity_gateway::domain::permission::Role;
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let settings = activity_gateway::config::HttpArgs {
        request_timeout_secs: 1,
        ..crate::common::test_settings()
    };
    let app = TestApp::spawn_with(&db.db, settings).await;
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &key).await;
    assert_eq!(status, 200, "within the timeout");

    let holder = activity_gateway::db::connect(&db.url).await.unwrap();
    let txn = holder.begin().await.unwrap();
    txn.execute_unprepared("LOCK TABLE activity_events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let (status, body) = app.get("/v1/orgs/org_acme/activity?limit=1", &key).await;
    let waited = started.elapsed();
    txn.rollback().await.unwrap();
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"], "REQUEST_TIMEOUT");
    assert_eq!(body["status_code"], 408);
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let (status, _) = app.get("/v1/orgs/org_acme/activity?limit=1", &key).await;
    assert_eq!(status, 200, "and the next request is served");
}
