//! The export of 1,000,000 events, on SQLite and (with TEST_DATABASE_URL, as
//! `scripts/bench.sh` provides) PostgreSQL: `activity-gateway export` runs as
//! its own process so its peak RSS is its own (goal: at most 100 MiB), and its
//! rows/s are compared with the database's own CSV dump of the same events in
//! the same run (`sqlite3 -csv`, `psql \copy`).
//!
//! `BENCH_EXPORT_EVENTS` sets how many events are seeded (default 1,540,000,
//! of which org_acme, the exported org, holds about 1,000,000).

use std::process::{Command, Stdio};
use std::time::Instant;

mod support;

/// Runs a command to completion under GNU time; answers its wall time and
/// peak RSS in bytes. (The child's own rusage would not do: a process spawned
/// from this one starts with this process's high-water mark.)
fn measure(command: &str, args: &[&str]) -> (f64, u64) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", command])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .output()
        .expect("GNU time runs (scripts/bench.sh installs it)");
    assert!(
        out.status.success(),
        "{command} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib: u64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("time prints the peak RSS");
    (started.elapsed().as_secs_f64(), kib * 1024)
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("BENCH_EXPORT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_540_000);
    for backend in ["sqlite", "postgres"] {
        let Some((db, url, _dir)) = support::open_with_url(backend, "export", events).await else {
            println!("[{backend}] skipped: set TEST_DATABASE_URL (scripts/bench.sh does)");
            continue;
        };
        // Folded as `activity-gateway seed` does: the job's server would
        // otherwise fold every event in its first background refresh, beside
        // the job (the first run of this bench measured that by mistake).
        activity_gateway::service::rollups::refresh(&db)
            .await
            .unwrap();
        let exported = support::count(&db, "org_id = 'org_acme'").await;
        db.close().await.ok();
        let out = tempfile::tempdir().unwrap();
        let zip = out.path().join("acme.zip");
        let zip_path = zip.display().to_string();
        let (seconds, peak) = measure(
            env!("CARGO_BIN_EXE_activity-gateway"),
            &[
                "export",
                "--org",
                "org_acme",
                "--out",
                &zip_path,
                "--database-url",
                &url,
            ],
        );
        let csv = out.path().join("dump.csv");
        let query = "SELECT * FROM activity_events WHERE org_id = 'org_acme'";
        let (dump_seconds, _) = if backend == "sqlite" {
            let file = url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            measure(
                "sqlite3",
                &[
                    "-csv",
                    "-header",
                    &file,
                    &format!(".output {}", csv.display()),
                    query,
                ],
            )
        } else {
            measure(
                "psql",
                &[
                    &url,
                    "-q",
                    "-c",
                    &format!("\\copy ({query}) TO '{}' CSV HEADER", csv.display()),
                ],
            )
        };
        let (job_seconds, server_peak) = export_job(&url, out.path()).await;
        let zip_mib = std::fs::metadata(&zip).unwrap().len() as f64 / 1048576.0;
        let rate = exported as f64 / seconds;
        let dump_rate = exported as f64 / dump_seconds;
        println!(
            "[{backend}] export of {exported} events: {seconds:.1} s, {rate:.0} events/s, peak RSS {:.1} MiB (goal: at most 100 MiB), ZIP {zip_mib:.0} MiB",
            peak as f64 / 1048576.0
        );
        println!(
            "[{backend}] the database's own CSV dump of the same events: {dump_seconds:.1} s, {dump_rate:.0} events/s -> export at {:.2}x the dump's speed",
            rate / dump_rate
        );
        let job_rate = exported as f64 / job_seconds;
        println!(
            "[{backend}] the same export as a job through the server (request, run, store, download): {job_seconds:.1} s, {job_rate:.0} events/s -> {:.2}x the dump's speed (goal: at least 0.5x: {}); the server's peak RSS {:.1} MiB",
            job_rate / dump_rate,
            if job_rate / dump_rate >= 0.5 { "met" } else { "NOT met" },
            server_peak as f64 / 1048576.0
        );
    }
}

/// An export as a client makes it: queued through a real server, waited
/// for, downloaded. Answers the seconds from the request to the last byte,
/// and the server process's peak RSS (`VmHWM`).
async fn export_job(url: &str, dir: &std::path::Path) -> (f64, u64) {
    let binary = env!("CARGO_BIN_EXE_activity-gateway");
    let created = Command::new(binary)
        .args([
            "keys",
            "create",
            "--org",
            "org_acme",
            "--role",
            "admin",
            "--database-url",
            url,
        ])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&created.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exports = dir.join("exports");
    let mut server = Command::new(binary)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
        ])
        .arg("--export-dir")
        .arg(&exports)
        .env("ACTIVITY_GATEWAY_RECORD_REQUESTS", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let job: serde_json::Value = client
        .post(format!("{base}/api/v5/artifacts/activity/export"))
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["upload_id"].as_str().expect("a queued job").to_owned();
    let bytes = loop {
        let answer = client
            .get(format!("{base}/api/v5/artifacts/activity/exports/{id}"))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        if answer.status() == 200 {
            break answer.bytes().await.unwrap().len();
        }
        assert_eq!(answer.status(), 202, "the job failed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    assert!(bytes > 0);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    (seconds, peak_kib * 1024)
}
