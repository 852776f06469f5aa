//! The queue: a job enqueued under the per-org cap, claimed by one runner, kept by its heartbeat.

use crate::domain::error::{AppError, AppResult, ErrorId};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;
use crate::service::statement;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, TransactionTrait};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// Inserts the job, then counts the org's active ones with it: over the cap,
/// the insert is undone. On SQLite the insert takes the write lock first; on
/// PostgreSQL an advisory lock orders concurrent requests.
pub(super) async fn enqueue(
    db: &DatabaseConnection,
    org_id: &str,
    created_by: &str,
    keep_for: Duration,
    confinement: Option<String>,
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
        confinement,
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
pub(super) async fn claim(db: &DatabaseConnection, runner: &str) -> AppResult<Option<Claimed>> {
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
                 RETURNING id, org_id, attempt, confinement"
            ),
            vec![now.into(), runner.into(), stale.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let job = Claimed {
        id: row.try_get_by_index(0)?,
        org_id: row.try_get_by_index(1)?,
        attempt: row.try_get_by_index(2)?,
        confinement: row.try_get_by_index(3)?,
    };
    if job.attempt > 1 {
        tracing::warn!(export = %job.id, attempt = job.attempt, "taking over an export whose runner went silent");
    }
    Ok(Some(job))
}

/// Renews the lease and publishes the progress until aborted.
pub(super) async fn heartbeat(
    db: DatabaseConnection,
    job: Claimed,
    counts: Arc<(AtomicU64, AtomicU64)>,
) {
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
