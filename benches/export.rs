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
    }
}
