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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    TransactionTrait, Value,
};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{org_dir, write_zip};
use crate::domain::error::{AppError, AppResult, ErrorId};
use crate::domain::grant::{cap, Grant};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;
use crate::service::sessions::Activeness;
use crate::service::statement;

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
/// How often expired exports are deleted.
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
            let (db, org, by, keep_for) = (
                db.clone(),
                principal.org_id.clone(),
                principal.principal_id.clone(),
                self.settings.keep_for,
            );
            async move { enqueue(&db, &org, &by, keep_for).await }
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

/// Inserts the job, then counts the org's active ones with it: over the cap,
/// the insert is undone. On SQLite the insert takes the write lock first; on
/// PostgreSQL an advisory lock orders concurrent requests.
async fn enqueue(
    db: &DatabaseConnection,
    org_id: &str,
    created_by: &str,
    keep_for: Duration,
) -> AppResult<entity::export::Model> {
    let txn = db.begin().await?;
    crate::service::advisory_xact_lock(&txn, QUEUE_LOCK).await?;
    let now = now_micros();
    let id = new_id(IdKind::Export);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let keep_micros = i64::try_from(keep_for.as_micros()).unwrap_or(i64::MAX);
    let job = entity::export::Model {
        id: id.clone(),
        org_id: org_id.to_owned(),
        file_name: format!("activity-export-{org_id}-{stamp}.zip"),
        row_count: 0,
        byte_size: 0,
        created_by: Some(created_by.to_owned()),
        created_at: now,
        status: JobStatus::Pending.as_str().to_owned(),
        claimed_by: None,
        rows_expected: 0,
        rows_written: 0,
        attempt: 0,
        heartbeat_at: None,
        finished_at: None,
        expires_at: Some(now.saturating_add(keep_micros)),
        error_id: None,
    };
    entity::export::Entity::insert(sea_orm::IntoActiveModel::into_active_model(job.clone()))
        .exec_without_returning(&txn)
        .await?;
    let active = txn
        .query_one_raw(statement(
            &txn,
            "SELECT COUNT(*) FROM exports WHERE org_id = ? AND status IN ('pending', 'running')",
            vec![org_id.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if active as u64 > MAX_ACTIVE_PER_ORG {
        txn.rollback().await?;
        return Err(AppError::TooManyExports {
            limit: MAX_ACTIVE_PER_ORG,
        });
    }
    txn.commit().await?;
    Ok(job)
}

/// Takes the oldest job that is queued, or whose runner went silent. Jobs
/// that went silent [`MAX_ATTEMPTS`] times are marked failed instead.
async fn claim(db: &DatabaseConnection, runner: &str) -> AppResult<Option<Claimed>> {
    let now = now_micros();
    let stale = now - LEASE.as_micros() as i64;
    let error_id = ErrorId::new();
    let given_up = db
        .execute_raw(statement(
            db,
            "UPDATE exports SET status = 'failed', finished_at = ?, error_id = ? \
             WHERE status = 'running' AND heartbeat_at < ? AND attempt >= ?",
            vec![
                now.into(),
                error_id.0.clone().into(),
                stale.into(),
                MAX_ATTEMPTS.into(),
            ],
        ))
        .await?;
    if given_up.rows_affected() > 0 {
        tracing::error!(
            error_id = %error_id.0,
            jobs = given_up.rows_affected(),
            "export jobs failed: their runners went silent {MAX_ATTEMPTS} times (each process that claimed them died or stalled past the {}s lease)",
            LEASE.as_secs()
        );
    }
    // SKIP LOCKED: replicas claiming at once take different jobs instead of
    // queueing on one. SQLite has one writer at a time anyway.
    let skip_locked = match db.get_database_backend() {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let row = db
        .query_one_raw(statement(
            db,
            &format!(
                "UPDATE exports SET status = 'running', attempt = attempt + 1, heartbeat_at = ?, \
                   claimed_by = ?, rows_written = 0, rows_expected = 0 \
                 WHERE id = (SELECT id FROM exports \
                   WHERE status = 'pending' OR (status = 'running' AND heartbeat_at < ?) \
                   ORDER BY created_at, id LIMIT 1 {skip_locked}) \
                 RETURNING id, org_id, attempt"
            ),
            vec![now.into(), runner.into(), stale.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let job = Claimed {
        id: row.try_get_by_index(0)?,
        org_id: row.try_get_by_index(1)?,
        attempt: row.try_get_by_index(2)?,
    };
    if job.attempt > 1 {
        tracing::warn!(export = %job.id, attempt = job.attempt, "taking over an export whose runner went silent");
    }
    Ok(Some(job))
}

/// Renews the lease and publishes the progress until aborted.
async fn heartbeat(db: DatabaseConnection, job: Claimed, counts: Arc<(AtomicU64, AtomicU64)>) {
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        let renewed = db
            .execute_raw(statement(
                &db,
                "UPDATE exports SET heartbeat_at = ?, rows_written = ?, rows_expected = ? \
                 WHERE id = ? AND attempt = ? AND status = 'running'",
                vec![
                    now_micros().into(),
                    (counts.0.load(Ordering::Relaxed) as i64).into(),
                    (counts.1.load(Ordering::Relaxed) as i64).into(),
                    job.id.clone().into(),
                    job.attempt.into(),
                ],
            ))
            .await;
        match renewed {
            Ok(done) if done.rows_affected() == 0 => return,
            Ok(_) => {}
            Err(e) => tracing::warn!(export = %job.id, error = %e, "export heartbeat failed"),
        }
    }
}

/// Writes the ZIP and stores it; `false` if the lease was lost meanwhile.
async fn produce(
    db: &DatabaseConnection,
    settings: &JobSettings,
    job: &Claimed,
    counts: &(AtomicU64, AtomicU64),
) -> AppResult<bool> {
    let dir = org_dir(&settings.export_dir, &job.org_id);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        AppError::internal_msg(format!(
            "cannot create the directory {}: {e}",
            dir.display()
        ))
    })?;
    // An attempt of its own: a runner that lost its lease never writes
    // over its successor's file.
    let written = zip_path(&dir, &job.id, job.attempt);
    let manifest = write_zip(
        db,
        &job.org_id,
        &written,
        Activeness {
            seen_since: now_micros() - settings.session_idle.as_micros() as i64,
        },
        &|done, total| {
            counts.0.store(done, Ordering::Relaxed);
            counts.1.store(total, Ordering::Relaxed);
        },
    )
    .await?;
    let in_database = db.get_database_backend() == DbBackend::Postgres;
    let stored = if in_database {
        store_in_database(db, job, &written, manifest.row_count).await
    } else {
        mark_done(db, job, &written, manifest.row_count).await
    };
    // The file stays only where it is what the download serves.
    if in_database || !matches!(stored, Ok(true)) {
        let _ = tokio::fs::remove_file(&written).await;
    }
    stored
}

/// The job's move to `done`, if its runner still holds it.
const FINISH_SQL: &str =
    "UPDATE exports SET status = 'done', row_count = ?, byte_size = ?, rows_written = ?, \
       rows_expected = ?, finished_at = ?, heartbeat_at = ? \
     WHERE id = ? AND attempt = ? AND status = 'running'";

fn finish_values(job: &Claimed, rows: u64, bytes: u64) -> Vec<Value> {
    let now = now_micros();
    vec![
        (rows as i64).into(),
        (bytes as i64).into(),
        (rows as i64).into(),
        (rows as i64).into(),
        now.into(),
        now.into(),
        job.id.clone().into(),
        job.attempt.into(),
    ]
}

/// Streams the file into `export_chunks` and marks the job done, in one
/// transaction: readers see the whole ZIP or none of it.
async fn store_in_database(
    db: &DatabaseConnection,
    job: &Claimed,
    file: &Path,
    rows: u64,
) -> AppResult<bool> {
    let mut source = tokio::fs::File::open(file)
        .await
        .map_err(|e| AppError::internal_msg(format!("cannot open {}: {e}", file.display())))?;
    let txn = db.begin().await?;
    txn.execute_raw(statement(
        &txn,
        "DELETE FROM export_chunks WHERE export_id = ?",
        vec![job.id.clone().into()],
    ))
    .await?;
    let (mut seq, mut bytes) = (0i32, 0u64);
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let mut filled = 0;
        while filled < CHUNK_BYTES {
            let n = source.read(&mut chunk[filled..]).await.map_err(|e| {
                AppError::internal_msg(format!("cannot read {}: {e}", file.display()))
            })?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        txn.execute_raw(statement(
            &txn,
            "INSERT INTO export_chunks (export_id, seq, data) VALUES (?, ?, ?)",
            vec![
                job.id.clone().into(),
                seq.into(),
                chunk[..filled].to_vec().into(),
            ],
        ))
        .await?;
        seq += 1;
        bytes += filled as u64;
    }
    let finished = txn
        .execute_raw(statement(&txn, FINISH_SQL, finish_values(job, rows, bytes)))
        .await?;
    if finished.rows_affected() == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}

/// Marks the job done; its file, already complete under its final name,
/// is what the download serves.
async fn mark_done(
    db: &DatabaseConnection,
    job: &Claimed,
    file: &Path,
    rows: u64,
) -> AppResult<bool> {
    let bytes = tokio::fs::metadata(file)
        .await
        .map_err(|e| AppError::internal_msg(format!("cannot read {}: {e}", file.display())))?
        .len();
    let finished = db
        .execute_raw(statement(db, FINISH_SQL, finish_values(job, rows, bytes)))
        .await?;
    Ok(finished.rows_affected() > 0)
}

/// Where the ZIP of one attempt is written (and, on SQLite, served from).
/// Exports made before exports were jobs (attempt 0) are `ID.zip`.
fn zip_path(org_dir: &Path, id: &str, attempt: i32) -> PathBuf {
    match attempt {
        0 => org_dir.join(format!("{id}.zip")),
        n => org_dir.join(format!("{id}.{n}.zip")),
    }
}

/// Logs why, once, under an error id the job keeps: the download answers
/// that id, and the operator finds the cause and the path by it.
async fn fail(db: &DatabaseConnection, job: &Claimed, e: AppError) {
    let error_id = match &e {
        AppError::Internal(cause, id) => {
            tracing::error!(error_id = %id.0, export = %job.id, error = %format!("{cause:#}"), "export failed");
            id.clone()
        }
        other => {
            let id = ErrorId::new();
            tracing::error!(error_id = %id.0, export = %job.id, error = %other, "export failed");
            id
        }
    };
    let marked = db
        .execute_raw(statement(
            db,
            "UPDATE exports SET status = 'failed', error_id = ?, finished_at = ? \
             WHERE id = ? AND attempt = ? AND status = 'running'",
            vec![
                error_id.0.into(),
                now_micros().into(),
                job.id.clone().into(),
                job.attempt.into(),
            ],
        ))
        .await;
    if let Err(e) = marked {
        tracing::warn!(export = %job.id, error = %e, "could not mark the export failed; it is retried after its lease");
    }
}

/// Deletes exports past their expiry: their chunks, files and rows.
async fn sweep_expired(db: &DatabaseConnection, export_dir: &Path) -> AppResult<()> {
    let now = now_micros();
    let expired = entity::export::Entity::find()
        .filter(entity::export::Column::ExpiresAt.lt(now))
        .all(db)
        .await?;
    for export in expired {
        let _ = tokio::fs::remove_file(zip_path(
            &org_dir(export_dir, &export.org_id),
            &export.id,
            export.attempt,
        ))
        .await;
        let txn = db.begin().await?;
        txn.execute_raw(statement(
            &txn,
            "DELETE FROM export_chunks WHERE export_id = ?",
            vec![export.id.clone().into()],
        ))
        .await?;
        entity::export::Entity::delete_by_id(export.id.clone())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(export = %export.id, org = %export.org_id, "expired export deleted");
    }
    Ok(())
}

/// How many jobs are in each state (every state, 0 when none).
pub async fn by_status(db: &DatabaseConnection) -> AppResult<Vec<(JobStatus, i64)>> {
    let rows = db
        .query_all_raw(statement(
            db,
            "SELECT status, COUNT(*) FROM exports GROUP BY status",
            vec![],
        ))
        .await?;
    let mut counts = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
    ]
    .map(|status| (status, 0));
    for row in rows {
        let (status, count): (String, i64) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == status) {
            slot.1 = count;
        }
    }
    Ok(counts.to_vec())
}

/// What the download route serves.
pub enum Download {
    /// Not done yet: the job's state.
    Waiting(entity::export::Model),
    /// Failed: the id of the log line that says why.
    Failed(entity::export::Model),
    /// A file of the export directory (SQLite).
    File(entity::export::Model, PathBuf),
    /// Chunks of `export_chunks` (PostgreSQL).
    Chunks(entity::export::Model),
}

/// An export of the caller's org, unexpired; another org's answers like an
/// unknown one.
pub async fn find(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::ActivityExport>,
    export_dir: &Path,
    id: &str,
) -> AppResult<Download> {
    let not_found = || AppError::not_found("export", id);
    let export = entity::export::Entity::find_by_id(id.to_owned())
        .filter(entity::export::Column::OrgId.eq(principal.org_id.as_str()))
        .one(db)
        .await?
        .filter(|e| e.expires_at.is_none_or(|at| at >= now_micros()))
        .ok_or_else(not_found)?;
    Ok(match JobStatus::of(&export) {
        JobStatus::Pending | JobStatus::Running => Download::Waiting(export),
        JobStatus::Failed => Download::Failed(export),
        JobStatus::Done => {
            let file = zip_path(
                &org_dir(export_dir, &export.org_id),
                &export.id,
                export.attempt,
            );
            if file.is_file() {
                Download::File(export, file)
            } else if db.get_database_backend() == DbBackend::Postgres {
                Download::Chunks(export)
            } else {
                return Err(not_found());
            }
        }
    })
}

/// The ZIP's chunks in order, one query each: memory stays at one chunk
/// whatever the size.
pub fn chunks(
    db: DatabaseConnection,
    export_id: String,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    futures_util::stream::try_unfold(0i32, move |seq| {
        let (db, export_id) = (db.clone(), export_id.clone());
        async move {
            let row = db
                .query_one_raw(statement(
                    &db,
                    "SELECT data FROM export_chunks WHERE export_id = ? AND seq = ?",
                    vec![export_id.into(), seq.into()],
                ))
                .await
                .map_err(std::io::Error::other)?;
            match row {
                Some(row) => {
                    let data: Vec<u8> = row.try_get_by_index(0).map_err(std::io::Error::other)?;
                    Ok(Some((data, seq + 1)))
                }
                None => Ok(None),
            }
        }
    })
}
