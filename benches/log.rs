//! The verifiable log's costs, each against a baseline in the same run:
//!   - storing events with the log (indexes, leaves, tiles, the org's log
//!     row) against the same rows stored without it by a plain multi-row
//!     insert, in interleaved rounds of batches of 1,000 (goal: at least
//!     0.9x), on SQLite and PostgreSQL; and REST ingest's rate beside them;
//!   - two orgs ingesting at once over REST on PostgreSQL against one org
//!     alone (goal: the pair's combined rate at least 1.5x);
//!   - an inclusion proof over HTTP in an org of 1,000,000 events (goal: p99
//!     under 2 ms), on both backends;
//!   - `verify` of that org's export ZIP, offline, by the release binary
//!     under GNU time (goals: at least 300,000 events/s, at most 100 MiB).
//!
//! `BENCH_LOG_EVENTS` changes the size of the big org (default 1,000,000).

use std::time::{Duration, Instant};

use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::Role;
use activity_gateway::service::events::{insert_batch, EventRow};
use activity_gateway::service::keys;
use activity_gateway::service::log::checkpoints::{self, KeySettings};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

mod support;

fn row(org: &str, n: usize, prefix: &str) -> EventRow {
    EventRow {
        id: format!("act_{prefix}{n:024}"),
        org_id: org.into(),
        ts: 1_793_534_400_000_000 + n as i64,
        user_id: Some(
            if org == "org_acme" {
                "usr_acme_02"
            } else {
                "usr_globex_02"
            }
            .into(),
        ),
        action: "read".into(),
        resource_type: Some("endpoint".into()),
        method: Some("GET".into()),
        path: Some("/v1/orgs/org_acme/workspaces/ws_acme_production/activity".into()),
        status_code: 200,
        success: true,
        duration_ms: 42,
        token_usage: r#"{"prompt_tokens":12}"#.into(),
        tokens_total: 12,
        metadata: r#"{"source":"bench","user_agent":"curl/8.5"}"#.into(),
        ..Default::default()
    }
}

/// The same rows as [`insert_batch`] stores, every column but the log
/// index, by a plain multi-row insert with no log: the baseline.
async fn insert_without_log(db: &impl ConnectionTrait, rows: &[EventRow]) {
    const COLUMNS: &str = "id, org_id, ts, trace_id, user_id, workspace_id, app_id, endpoint_id, augmentation_id, \
        principal_type, principal_id, token_id, token_type, method, path, resource_type, resource_id, action, \
        status_code, success, error_code, duration_ms, execution_id, stages_completed, total_stages, token_usage, \
        tokens_total, metadata";
    const N: usize = 28;
    let backend = db.get_database_backend();
    for chunk in rows.chunks(1_000) {
        let mut sql = format!("INSERT INTO activity_events ({COLUMNS}) VALUES ");
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * N);
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..N {
                if c > 0 {
                    sql.push(',');
                }
                match backend {
                    DbBackend::Postgres => sql.push_str(&format!("${}", i * N + c + 1)),
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
            let r = r.clone();
            values.extend([
                r.id.into(),
                r.org_id.into(),
                r.ts.into(),
                r.trace_id.into(),
                r.user_id.into(),
                r.workspace_id.into(),
                r.app_id.into(),
                r.endpoint_id.into(),
                r.augmentation_id.into(),
                r.principal_type.into(),
                r.principal_id.into(),
                r.token_id.into(),
                r.token_type.into(),
                r.method.into(),
                r.path.into(),
                r.resource_type.into(),
                r.resource_id.into(),
                r.action.into(),
                r.status_code.into(),
                r.success.into(),
                r.error_code.into(),
                r.duration_ms.into(),
                r.execution_id.into(),
                r.stages_completed.into(),
                r.total_stages.into(),
                r.token_usage.into(),
                r.tokens_total.into(),
                r.metadata.into(),
            ]);
        }
        sql.push_str(" ON CONFLICT (org_id, id) DO NOTHING RETURNING id");
        db.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn admin_key(db: &DatabaseConnection, org: &str) -> String {
    keys::create(
        db,
        keys::NewKey {
            org_id: org.into(),
            role: Some(Role::Admin),
            permissions: Default::default(),
            user_id: None,
            name: None,
        },
    )
    .await
    .unwrap()
    .secret
}

/// Stores `batches` of 1,000 rows with and without the log, interleaved.
async fn storage(backend: &str, db: &DatabaseConnection) {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..10 {
        for b in 0..5 {
            let n = (round * 5 + b) * 1_000;
            let rows: Vec<EventRow> = (n..n + 1_000).map(|i| row("org_acme", i, "log")).collect();
            let started = Instant::now();
            let txn = db.begin().await.unwrap();
            insert_batch(&txn, rows, true).await.unwrap();
            txn.commit().await.unwrap();
            with.push(1_000.0 / started.elapsed().as_secs_f64());
            let rows: Vec<EventRow> = (n..n + 1_000).map(|i| row("org_acme", i, "raw")).collect();
            let started = Instant::now();
            let txn = db.begin().await.unwrap();
            insert_without_log(&txn, &rows).await;
            txn.commit().await.unwrap();
            without.push(1_000.0 / started.elapsed().as_secs_f64());
        }
    }
    let (with, without) = (median(with), median(without));
    println!(
        "[{backend}] storing batches of 1,000: with the log {with:.0} events/s, the same rows without it {without:.0} events/s -> {:.2}x (goal: >= 0.9x)",
        with / without
    );
}

/// REST ingest of `batches` of 1,000 into each of `orgs` at once; events/s in all.
async fn rest_ingest(base: &str, keys: &[(&str, String)], batches: usize, tag: &str) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut writers = Vec::new();
    for (org, key) in keys {
        let bodies: Vec<Vec<u8>> = (0..batches)
            .map(|b| {
                let events: Vec<serde_json::Value> = (0..1_000)
                    .map(|n| {
                        serde_json::json!({
                            "id": format!("act_{tag}{org}{b:06}{n:06}"),
                            "timestamp": "2026-11-01T12:00:00Z",
                            "action": "read",
                            "resource_type": "endpoint",
                            "status_code": 200,
                            "duration_ms": 42,
                            "token_usage": { "prompt_tokens": 12 },
                            "metadata": { "source": "bench" }
                        })
                    })
                    .collect();
                serde_json::to_vec(&events).unwrap()
            })
            .collect();
        let (client, url, key) = (
            client.clone(),
            format!("{base}/v1/orgs/{org}/activity"),
            key.clone(),
        );
        writers.push(tokio::spawn(async move {
            for body in bodies {
                let res = client
                    .post(&url)
                    .header("X-Api-Key", &key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    (keys.len() * batches * 1_000) as f64 / started.elapsed().as_secs_f64()
}

async fn two_orgs(db: &DatabaseConnection) {
    let acme = admin_key(db, "org_acme").await;
    let globex = admin_key(db, "org_globex").await;
    let settings = HttpArgs {
        record_requests: false,
        ..HttpArgs::default()
    };
    let (base, stop) = support::serve(db, settings).await;
    let (mut alone, mut pair) = (Vec::new(), Vec::new());
    for round in 0..5 {
        alone.push(
            rest_ingest(
                &base,
                &[("org_acme", acme.clone())],
                10,
                &format!("a{round}"),
            )
            .await,
        );
        pair.push(
            rest_ingest(
                &base,
                &[("org_acme", acme.clone()), ("org_globex", globex.clone())],
                10,
                &format!("p{round}"),
            )
            .await,
        );
    }
    let (alone, pair) = (median(alone), median(pair));
    println!(
        "[postgres] REST ingest: one org alone {alone:.0} events/s, two orgs at once {pair:.0} events/s combined -> {:.2}x (goal: >= 1.5x)",
        pair / alone
    );
    let _ = stop.send(());
}

/// An org of `events`, its inclusion proofs over HTTP, and `verify` of its export.
async fn big_org(backend: &str, events: usize) {
    let Some((db, url, _dir)) = support::open_with_url(backend, "log", 0).await else {
        return;
    };
    let started = Instant::now();
    for b in 0..events.div_ceil(1_000) {
        let rows: Vec<EventRow> = (b * 1_000..((b + 1) * 1_000).min(events))
            .map(|i| row("org_acme", i, "big"))
            .collect();
        let txn = db.begin().await.unwrap();
        insert_batch(&txn, rows, false).await.unwrap();
        txn.commit().await.unwrap();
    }
    println!(
        "[{backend}] stored {events} events in one org with the log in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let key = checkpoints::log_key(&db, &KeySettings::default())
        .await
        .unwrap();
    checkpoints::checkpoint_all(&db, &key).await.unwrap();
    let verifier_key = key.verifier_key().to_owned();
    let reader = admin_key(&db, "org_acme").await;
    let settings = HttpArgs {
        record_requests: false,
        ..HttpArgs::default()
    };
    let (base, stop) = support::serve(&db, settings).await;
    let client = reqwest::Client::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut times = Vec::new();
    for n in 0..2_200 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let id = format!("act_big{:024}", rng % events as u64);
        let started = Instant::now();
        let res = client
            .get(format!(
                "{base}/v1/orgs/org_acme/activity/{id}/inclusion-proof"
            ))
            .header("X-Api-Key", &reader)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
        if n >= 200 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "[{backend}] inclusion proof over HTTP at {events} events: p50 {:.2} ms, p99 {:.2} ms (goal: p99 < 2 ms)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    let _ = stop.send(());

    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("big.zip");
    let bin = env!("CARGO_BIN_EXE_activity-gateway");
    let started = Instant::now();
    let exported = std::process::Command::new(bin)
        .args([
            "export",
            "--org",
            "org_acme",
            "--database-url",
            &url,
            "--out",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    println!(
        "[{backend}] export of {events} events with the log in {:.1} s ({} MiB)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&zip).unwrap().len() >> 20
    );
    db.close().await.ok();
    let mut best = Duration::MAX;
    let mut rss = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let verified = std::process::Command::new("/usr/bin/time")
            .arg("-v")
            .arg(bin)
            .arg("verify")
            .arg(&zip)
            .args(["--key", &verifier_key])
            .output()
            .unwrap();
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&verified.stdout);
        let stderr = String::from_utf8_lossy(&verified.stderr);
        assert!(verified.status.success(), "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("verified {events} events")),
            "{stdout}"
        );
        let kib: u64 = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if took < best {
            best = took;
        }
        rss = rss.max(kib);
    }
    println!(
        "[{backend}] offline verify of the {events}-event export: {:.0} events/s ({:.1} s, best of 3), max RSS {} MiB (goals: >= 300,000 events/s, < 100 MiB)",
        events as f64 / best.as_secs_f64(),
        best.as_secs_f64(),
        rss >> 10
    );
}

#[tokio::main]
async fn main() {
    let events = std::env::var("BENCH_LOG_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "activity-gateway verifiable log benchmark, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for backend in ["sqlite", "postgres"] {
        let Some((db, _dir)) = support::open(backend, "logstore", 2_000).await else {
            println!("[{backend}] skipped: set TEST_DATABASE_URL (scripts/bench.sh does)");
            continue;
        };
        storage(backend, &db).await;
        if backend == "postgres" {
            two_orgs(&db).await;
        }
        if events > 0 {
            big_org(backend, events).await;
        }
    }
}
