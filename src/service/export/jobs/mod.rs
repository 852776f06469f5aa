//! Exports as jobs: a request queues one and answers at once; a runner on
//! whichever replica claims it writes the ZIP, with no request timeout over
//! it; any replica serves the result.
//!
//! The job's state is its `exports` row. A runner holds a job by a lease:
//! the row's `attempt` number, renewed by a heartbeat every
//! [`HEARTBEAT_EVERY`]. A job whose runner went silent for [`LEASE`] (its
//! process died) is claimed again by any runner, at most [`MAX_ATTEMPTS`]
//! times, then marked failed: never lost silently. Every change a runner
//! makes is conditioned on its attempt, so a runner that lost its lease
//! (paused past it) cannot overwrite its successor's work.
//!
//! Where the ZIP lives: on PostgreSQL in `export_chunks`, written in one
//! transaction with the job's move to `done`, so every replica reads it and
//! none sees half of it; on SQLite (one process) in the export directory.

mod queue;
mod read;
mod store;

use crate::domain::error::AppResult;
use crate::domain::grant::{cap, Grant};
use crate::service::statement;
use queue::*;
pub use read::*;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a runner renews its lease (and publishes its progress).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a silent runner keeps its job before another may take it.
pub const LEASE: Duration = Duration::from_secs(30);
/// Claims of one job before it is marked failed.
pub const MAX_ATTEMPTS: i32 = 3;
/// Exports of one org queued or running at once: one org cannot fill the
/// queue in front of the others.
pub const MAX_ACTIVE_PER_ORG: u64 = 2;
/// How often an idle runner looks for jobs queued by other replicas.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often expired exports, and half-written files abandoned by a killed
/// process, are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Bytes of ZIP per `export_chunks` row.
const CHUNK_BYTES: usize = 1024 * 1024;
/// The advisory lock key that makes the per-org cap exact on PostgreSQL.
const QUEUE_LOCK: i64 = 0x6578_706f_7274_7100;

/// A job's state, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn of(export: &entity::export::Model) -> Self {
        match export.status.as_str() {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "failed" => Self::Failed,
            _ => Self::Done,
        }
    }
}

/// Rows written over rows expected, 0 to 1 (1 once done).
pub fn progress(export: &entity::export::Model) -> f64 {
    match JobStatus::of(export) {
        JobStatus::Done => 1.0,
        _ if export.rows_expected > 0 => {
            (export.rows_written as f64 / export.rows_expected as f64).min(1.0)
        }
        _ => 0.0,
    }
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub export_dir: PathBuf,
    /// How long a finished export stays downloadable.
    pub keep_for: Duration,
    /// How long after its last sign a session stops counting as active.
    pub session_idle: Duration,
    /// The key that signs the checkpoint an export carries.
    pub log: crate::service::log::checkpoints::KeySettings,
}

/// This replica's export runner; cheap to clone.
#[derive(Clone)]
pub struct ExportRunner {
    settings: Arc<JobSettings>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    /// The job held right now, released at shutdown.
    current: Arc<Mutex<Option<Claimed>>>,
    /// Who this runner is, in `exports.claimed_by`: for the operator (and
    /// the tests) to tell which process holds a job.
    name: Arc<str>,
}

#[derive(Debug, Clone)]
struct Claimed {
    id: String,
    org_id: String,
    attempt: i32,
    /// A viewer token's confinement (JSON), for its export.
    confinement: Option<String>,
}

impl ExportRunner {
    /// Starts the runner of this process (needs a Tokio runtime).
    pub fn start(db: DatabaseConnection, settings: JobSettings) -> Self {
        let runner = Self {
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            current: Arc::default(),
            name: format!(
                "pid {} {}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 4]>())
            )
            .into(),
        };
        tokio::spawn(runner.clone().run(db));
        runner
    }

    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// Queues an export of the caller's org and answers its job at once.
    pub async fn request(
        &self,
        db: &DatabaseConnection,
        principal: Grant<'_, cap::ActivityExport>,
    ) -> AppResult<entity::export::Model> {
        let job = super::super::detached({
            // A viewer token exports only what it may read.
            let confinement = principal
                .viewer_token
                .as_ref()
                .map(|token| serde_json::to_string(&*token.confinement))
                .transpose()
                .map_err(crate::domain::error::AppError::internal)?;
            let (db, org, by, keep_for) = (
                db.clone(),
                principal.org_id.clone(),
                principal.principal_id.clone(),
                self.settings.keep_for,
            );
            async move { enqueue(&db, &org, &by, keep_for, confinement).await }
        })
        .await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Stops claiming, and hands the job held back to the queue so that
    /// another replica takes it at once instead of after the lease.
    pub async fn stop(&self, db: &DatabaseConnection) {
        self.stop.cancel();
        let held = self.current.lock().map(|c| c.clone()).unwrap_or(None);
        if let Some(job) = held {
            let released = db
                .execute_raw(statement(
                    db,
                    "UPDATE exports SET status = 'pending', heartbeat_at = NULL \
                     WHERE id = ? AND attempt = ? AND status = 'running'",
                    vec![job.id.clone().into(), job.attempt.into()],
                ))
                .await;
            if let Err(e) = released {
                tracing::warn!(export = %job.id, error = %e, "could not release the export at shutdown; another replica takes it after its lease");
            }
        }
    }

    async fn run(self, db: DatabaseConnection) {
        let mut swept_at: Option<tokio::time::Instant> = None;
        while !self.stop.is_cancelled() {
            if swept_at.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                swept_at = Some(tokio::time::Instant::now());
                if let Err(e) = sweep_expired(&db, &self.settings.export_dir).await {
                    tracing::warn!(error = %e, "deleting expired exports failed; retrying later");
                }
                sweep_abandoned(&self.settings.export_dir).await;
            }
            match claim(&db, &self.name).await {
                Ok(Some(job)) => {
                    self.run_job(&db, job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "claiming an export job failed; retrying"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = self.stop.cancelled() => {}
            }
        }
    }

    async fn run_job(&self, db: &DatabaseConnection, job: Claimed) {
        if let Ok(mut current) = self.current.lock() {
            *current = Some(job.clone());
        }
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let heartbeat = tokio::spawn(heartbeat(db.clone(), job.clone(), counts.clone()));
        // Detached: a transaction is never dropped midway, even at shutdown.
        let produced = super::super::detached({
            let (db, job, settings, counts) = (
                db.clone(),
                job.clone(),
                self.settings.clone(),
                counts.clone(),
            );
            async move { produce(&db, &settings, &job, &counts).await }
        })
        .await;
        heartbeat.abort();
        match produced {
            Ok(true) => tracing::info!(export = %job.id, org = %job.org_id, "export done"),
            Ok(false) => {
                tracing::warn!(export = %job.id, "export lease lost; its result was discarded")
            }
            Err(e) => fail(db, &job, e).await,
        }
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
    }
}
