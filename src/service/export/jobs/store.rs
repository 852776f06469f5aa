//! Running a claimed job: the ZIP written, stored where every replica reads it, or the job failed; expired exports swept.

use super::super::{org_dir, write_zip};
use crate::domain::error::{AppError, AppResult, ErrorId};
use crate::domain::time::now_micros;
use crate::service::sessions::Activeness;
use crate::service::statement;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    TransactionTrait, Value,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncReadExt;

use super::*;

/// Writes the ZIP and stores it; `false` if the lease was lost meanwhile.
pub(super) async fn produce(
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
    let log_key = crate::service::log::checkpoints::log_key(db, &settings.log).await?;
    let confined = job
        .confinement
        .as_deref()
        .map(serde_json::from_str::<crate::domain::viewer::Confinement>)
        .transpose()
        .map_err(AppError::internal)?
        .map(|confinement| crate::domain::feed::ActivityFilter {
            confined: Some(std::sync::Arc::new(confinement)),
            ..Default::default()
        });
    let manifest = write_zip(
        db,
        &log_key,
        &job.org_id,
        confined.as_ref(),
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
pub(super) const FINISH_SQL: &str =
    "UPDATE exports SET status = 'done', row_count = ?, byte_size = ?, rows_written = ?, \
       rows_expected = ?, finished_at = ?, heartbeat_at = ? \
     WHERE id = ? AND attempt = ? AND status = 'running'";

pub(super) fn finish_values(job: &Claimed, rows: u64, bytes: u64) -> Vec<Value> {
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
pub(super) async fn store_in_database(
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
pub(super) async fn mark_done(
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
pub(super) fn zip_path(org_dir: &Path, id: &str, attempt: i32) -> PathBuf {
    match attempt {
        0 => org_dir.join(format!("{id}.zip")),
        n => org_dir.join(format!("{id}.{n}.zip")),
    }
}

/// Logs why, once, under an error id the job keeps: the download answers
/// that id, and the operator finds the cause and the path by it.
pub(super) async fn fail(db: &DatabaseConnection, job: &Claimed, e: AppError) {
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

/// How long a half-written ZIP (`.zip.partial`) may go unwritten before it
/// counts as abandoned: a runner writes its file page by page, and a job
/// whose runner went silent is taken over after [`LEASE`] under a new
/// attempt, and so a new file name. A process killed mid-export leaves its
/// partial file behind; nothing else would ever remove it.
pub(super) const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the half-written ZIPs under `export_dir` (one folder per org)
/// not written to for [`ABANDONED_AFTER`]. Answers how many went.
pub(super) async fn sweep_abandoned(export_dir: &Path) -> usize {
    let export_dir = export_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let abandoned = |path: &Path| {
            path.to_string_lossy().ends_with(".zip.partial")
                && std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|at| at.elapsed().ok())
                    .is_some_and(|idle| idle > ABANDONED_AFTER)
        };
        let mut removed = 0;
        let orgs = std::fs::read_dir(&export_dir).into_iter().flatten().flatten();
        for org in orgs.filter(|e| e.path().is_dir()) {
            for file in std::fs::read_dir(org.path()).into_iter().flatten().flatten() {
                let path = file.path();
                if abandoned(&path) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            tracing::info!(path = %path.display(), "abandoned half-written export removed");
                            removed += 1;
                        }
                        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove an abandoned half-written export"),
                    }
                }
            }
        }
        removed
    })
    .await
    .unwrap_or(0)
}

/// Deletes exports past their expiry: their chunks, files and rows.
pub(super) async fn sweep_expired(db: &DatabaseConnection, export_dir: &Path) -> AppResult<()> {
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
