//! Three real gateway processes on one PostgreSQL, as teams run them behind
//! a load balancer: an event ingested through one reaches a subscriber of
//! another; an export requested through a third is downloaded through a
//! survivor after the process running it was killed mid-way; folds racing
//! on two of them while a third ingests leave the rollups exact; a revoked
//! key is refused by every replica within the revocation window. PostgreSQL
//! only: the embedded SQLite default is one process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Backend, Served, TestDb};
use activity_gateway::domain::permission::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The text in the first column of the first row `sql` answers with
/// `values` bound, if any.
async fn scalar(db: &TestDb, sql: &str, values: Vec<sea_orm::Value>) -> Option<String> {
    db.rows(sql, values)
        .await
        .first()
        .and_then(|row| row.try_get_by_index::<Option<String>>(0).unwrap())
}

async fn post(client: &reqwest::Client, url: String, key: &str, body: Value) -> (u16, Value) {
    crate::common::read(
        client
            .post(url)
            .header("X-Api-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_live_tail_exports_and_exact_rollups() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // Enough events that an export runs for a few seconds.
    db.seed(150_000).await;
    let key = db.key("org_acme", Role::Admin).await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas = Vec::new();
    for dir in &dirs {
        replicas.push(
            Served::start(
                &db.url,
                &["--export-dir".as_ref(), dir.path().as_os_str()],
                &[("ACTIVITY_GATEWAY_RECORD_REQUESTS", "false")],
                Stdio::null(),
            )
            .await,
        );
    }
    let client = reqwest::Client::new();
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let base = |i: usize| bases[i].clone();

    // The live tail: subscribed through B, ingested through A.
    let mut request = format!("{}/graphql", base(1).replace("http", "ws"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("x-api-key", key.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({ "type": "connection_init" }).to_string(),
        ))
        .await
        .unwrap();
    socket.next().await.unwrap().unwrap();
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { activityAdded(orgId: \"org_acme\") { node { id } } }" } });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    // The subscription starts at the newest event once the server saw it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, ingested) = post(
        &client,
        format!("{}/v1/orgs/org_acme/activity", base(0)),
        &key,
        json!([{ "action": "replicated" }]),
    )
    .await;
    assert_eq!(status, 200, "{ingested}");
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the event reaches the other replica's subscriber")
        .unwrap()
        .unwrap();
    let message: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(
        message["payload"]["data"]["activityAdded"]["node"]["id"], ingested["ids"][0],
        "{message}"
    );
    let _ = socket.close(None).await;

    // An export requested through C; the process that runs it is killed.
    let (status, job) = post(
        &client,
        format!("{}/api/v5/artifacts/activity/export", base(2)),
        &key,
        json!({}),
    )
    .await;
    assert_eq!((status, &job["status"]), (200, &json!("pending")), "{job}");
    let id = job["upload_id"].as_str().unwrap().to_owned();
    let claimed_by = "SELECT claimed_by FROM exports WHERE id = ? AND status = 'running'";
    let deadline = Instant::now() + Duration::from_secs(20);
    let runner = loop {
        if let Some(runner) = scalar(&db, claimed_by, vec![id.as_str().into()]).await {
            break runner;
        }
        assert!(Instant::now() < deadline, "no replica claimed the export");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let pid: u32 = runner.split(' ').nth(1).unwrap().parse().unwrap();
    let killed = replicas
        .iter()
        .position(|r| r.child.id() == pid)
        .expect("one of the three holds it");
    replicas[killed].child.kill().unwrap();
    replicas[killed].child.wait().unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT status FROM exports WHERE id = ?",
            vec![id.as_str().into()]
        )
        .await,
        Some("running".to_owned()),
        "killed in the middle of the export"
    );
    // A survivor takes it over after the 30 s lease, and any survivor serves it.
    let survivor = (0..3).find(|i| *i != killed).unwrap();
    let download = crate::common::export_when_finished(&client, &base(survivor), &key, &id).await;
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let manifest: Value =
        serde_json::from_reader(archive.by_name("manifest.json").unwrap()).unwrap();
    let events = &manifest["files"][0];
    assert_eq!(events["name"], "events.csv");
    assert_eq!(
        events["row_count"].as_i64().unwrap(),
        db.count_events("org_id = 'org_acme'").await
    );
    let attempt = scalar(
        &db,
        "SELECT CAST(attempt AS TEXT) FROM exports WHERE id = ?",
        vec![id.as_str().into()],
    )
    .await;
    assert_eq!(attempt.as_deref(), Some("2"), "taken over once");
    // The ZIP lives in the database, not on a replica's disk (the killed
    // process's half-written `.zip.partial` is all a disk may hold).
    for dir in &dirs {
        let finished: Vec<String> = std::fs::read_dir(dir.path().join("org_acme"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.ends_with(".zip.partial"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(finished.is_empty(), "{finished:?}");
    }

    // Two survivors fold at once, again and again, while events arrive.
    let others: Vec<usize> = (0..3).filter(|i| *i != killed).collect();
    let writer = {
        let (client, url, key) = (
            client.clone(),
            format!("{}/v1/orgs/org_acme/activity", base(others[0])),
            key.clone(),
        );
        tokio::spawn(async move {
            for _ in 0..20 {
                let events: Vec<Value> = (0..50).map(|_| json!({ "action": "race" })).collect();
                let (status, body) = post(&client, url.clone(), &key, json!(events)).await;
                assert_eq!(status, 200, "{body}");
            }
        })
    };
    for _ in 0..10 {
        let folds = others.iter().map(|i| {
            post(
                &client,
                format!("{}/api/v5/artifacts/activity/refresh", base(*i)),
                &key,
                json!({}),
            )
        });
        for (status, body) in futures_util::future::join_all(folds).await {
            assert_eq!(status, 200, "{body}");
        }
    }
    writer.await.unwrap();
    post(
        &client,
        format!("{}/api/v5/artifacts/activity/refresh", base(others[1])),
        &key,
        json!({}),
    )
    .await;
    let folded = scalar(
        &db,
        "SELECT CAST(SUM(request_count) AS TEXT) FROM activity_rollups_hourly WHERE scope_kind = 'org'",
        vec![],
    )
    .await;
    let stored = scalar(
        &db,
        "SELECT CAST(COUNT(*) AS TEXT) FROM activity_events",
        vec![],
    )
    .await;
    assert_eq!(folded, stored, "every event folded exactly once");

    // A revocation holds on every replica at once: no process caches credentials.
    let doomed = activity_gateway::service::keys::create(
        &db.db,
        activity_gateway::service::keys::NewKey {
            org_id: "org_acme".into(),
            role: Some(Role::Viewer),
            permissions: Default::default(),
            user_id: None,
            name: None,
        },
    )
    .await
    .unwrap();
    let statuses = |secret: String| {
        let (client, urls) = (
            client.clone(),
            others
                .iter()
                .map(|i| format!("{}/v1/orgs/org_acme/activity?limit=1", base(*i)))
                .collect::<Vec<_>>(),
        );
        async move {
            let mut statuses = Vec::new();
            for url in urls {
                let answer = client.get(url).header("X-Api-Key", &secret).send().await;
                statuses.push(answer.unwrap().status().as_u16());
            }
            statuses
        }
    };
    assert_eq!(statuses(doomed.secret.clone()).await, [200, 200]);
    let revoked = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args(["keys", "revoke", &doomed.id, "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    // Every replica refuses it within the revocation window (each kept the
    // key when it served it), and none takes it again after.
    let since = std::time::Instant::now();
    loop {
        let now = statuses(doomed.secret.clone()).await;
        if now == [401, 401] {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "still taken after the window: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        assert_eq!(statuses(doomed.secret.clone()).await, [401, 401]);
    }

    for i in others {
        crate::common::terminate(&mut replicas[i].child);
    }
}

/// Three replicas ingest into three orgs at once, while each records its own
/// requests (batches that mix orgs) and signs checkpoints every second: every
/// org's log stays dense, without a duplicate index, and every checkpoint is
/// consistent with the one before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_ingesting_into_three_orgs_keep_every_log_dense_and_consistent() {
    use activity_gateway::service::log::{checkpoints, proofs};
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.seed(600).await;
    db.run(
        "INSERT INTO orgs (id, name, created_at) VALUES ('org_third', 'Third', 0)",
        vec![],
    )
    .await;
    let orgs = ["org_acme", "org_globex", "org_third"];
    let mut keys = Vec::new();
    for org in orgs {
        keys.push(db.key(org, Role::Admin).await);
    }
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            Served::start(
                &db.url,
                &["--checkpoint-interval-secs".as_ref(), "1".as_ref()],
                &[],
                Stdio::null(),
            )
            .await,
        );
    }
    let client = reqwest::Client::new();
    // Three rounds of ingest with a pause of two checkpoint intervals after
    // each, so that every org's tree is signed at three sizes at least
    // whatever the speed of the machine.
    for _round in 0..3 {
        let mut writers = Vec::new();
        for replica in &replicas {
            for (org, key) in orgs.iter().zip(&keys) {
                let (client, url, key) = (
                    client.clone(),
                    format!("{}/v1/orgs/{org}/activity", replica.base),
                    key.clone(),
                );
                writers.push(tokio::spawn(async move {
                    for _ in 0..5 {
                        let batch: Vec<Value> = (0..100)
                            .map(|n| json!({ "action": "execute", "duration_ms": n }))
                            .collect();
                        let (status, body) = post(&client, url.clone(), &key, json!(batch)).await;
                        assert_eq!(status, 200, "{body}");
                    }
                }));
            }
        }
        for writer in writers {
            writer.await.unwrap();
        }
        // The recorders' last batches and a checkpoint after them.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    let key = checkpoints::log_key(&db.db, &Default::default())
        .await
        .unwrap();
    for org in orgs {
        let indexes = db.log_indexes(org).await;
        assert!(indexes.len() >= 4_500, "{org}: {}", indexes.len());
        assert_eq!(
            indexes,
            (0..indexes.len() as i64).collect::<Vec<_>>(),
            "{org}: dense, no duplicates"
        );
        let all = checkpoints::all(&db.db, &key, org).await.unwrap();
        assert!(
            all.len() >= 3,
            "{org}: a checkpoint after each round: {}",
            all.len()
        );
        assert_eq!(
            all.last().unwrap().tree_size as usize,
            indexes.len(),
            "{org}"
        );
        for pair in all.windows(2) {
            let (old, new) = (&pair[0], &pair[1]);
            let proof = proofs::consistency(
                &db.db,
                &key,
                org,
                (old.tree_size as i64, new.tree_size as i64),
                ("from", "to"),
            )
            .await
            .unwrap();
            tlog_tiles::check_tree(
                &proof.hashes,
                new.tree_size,
                new.root_hash,
                old.tree_size,
                old.root_hash,
            )
            .unwrap_or_else(|e| panic!("{org}: {} -> {}: {e}", old.tree_size, new.tree_size));
        }
        let verified = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
            .args(["verify", "--org", org, "--database-url", &db.url])
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );
    }
    for mut replica in replicas {
        crate::common::terminate(&mut replica.child);
    }
}
