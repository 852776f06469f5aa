//! How long an org's raw events are kept, and the purge that enforces it.
//!
//! Rollups outlive the raw events: only events already folded into the
//! hourly rollups are purged (a fold runs first), and only whole hours, so
//! a summary of a purged period still reads exactly the same rollup rows.
//! Purges delete in small batches, each its own short transaction, and run
//! on one process at a time (an advisory lock on PostgreSQL). Each purge is
//! itself recorded as an event of the org.

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

use super::events::{insert_batch, EventRow};
use super::statement;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::grant::{cap, Grant};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::{now_micros, MICROS_PER_HOUR};

/// The longest retention period, in days (100 years).
pub const MAX_DAYS: i64 = 36_500;
/// Events deleted per transaction: short enough that no lock is held long.
const BATCH: i64 = 5_000;
/// The advisory lock key of purges ("purge" in ASCII).
const PURGE_LOCK: i64 = 0x0070_7572_6765;

/// An org's retention: `days` (`None`: forever) and the time before which
/// its events were purged (`None`: never purged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub days: Option<i64>,
    pub purged_before: Option<i64>,
}

impl Retention {
    /// From an `org_retention` row's `days` and `purged_before` (0 when
    /// nothing was purged), either absent when the org has no row.
    pub fn of_row(days: Option<i32>, purged_before: Option<i64>) -> Self {
        Self {
            days: days.map(i64::from),
            purged_before: purged_before.filter(|t| *t > 0),
        }
    }

    /// Where the org's feeds begin as of `now`: the period's edge, from the
    /// moment a period is set (the purge removes the rows later), or the
    /// last purge's boundary, whichever is later.
    pub fn feed_start(&self, now: i64) -> i64 {
        let period = self.days.map_or(0, |d| {
            now.saturating_sub(d.saturating_mul(24 * MICROS_PER_HOUR))
        });
        self.purged_before.unwrap_or(0).max(period)
    }
}

/// The events a feed of `org_id` may list as of `now`: [`Retention::feed_start`]
/// as a condition the feed's own query carries (a subquery of the org's
/// retention row), so a page costs no statement more.
pub fn within_feed(backend: sea_orm::DbBackend, org_id: &str, now: i64) -> sea_orm::Condition {
    use sea_orm::sea_query::{Expr, ExprTrait as _};
    const DAY: i64 = 24 * MICROS_PER_HOUR;
    // SeaQuery binds `?` in order on SQLite and `$n` (the n-th value) on
    // PostgreSQL. The day's length is a constant of the text; values are bound.
    let at = |n: usize| match backend {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    };
    let start = Expr::cust_with_values(
        format!(
            "COALESCE((SELECT CASE WHEN r.days IS NULL OR r.purged_before > CAST({} AS BIGINT) - r.days * {DAY} \
               THEN r.purged_before ELSE CAST({} AS BIGINT) - r.days * {DAY} END \
               FROM org_retention r WHERE r.org_id = {}), 0)",
            at(1),
            at(2),
            at(3)
        ),
        [sea_orm::Value::from(now), now.into(), org_id.into()],
    );
    use entity::activity_event::{Column, Entity};
    sea_orm::Condition::all().add(Expr::col((Entity, Column::Ts)).gte(start))
}

/// `days` checked: 1 to [`MAX_DAYS`], or none for forever.
pub fn parse_days(days: Option<i64>) -> Result<Option<i64>, InvalidInput> {
    match days {
        None => Ok(None),
        Some(d) if d < 1 => Err(InvalidInput::new(
            &["days"],
            "greater_than_equal",
            "Input should be greater than or equal to 1",
            d,
        )
        .with_ctx(serde_json::json!({ "ge": 1 }))),
        Some(d) if d > MAX_DAYS => Err(InvalidInput::new(
            &["days"],
            "less_than_equal",
            format!("Input should be less than or equal to {MAX_DAYS}"),
            d,
        )
        .with_ctx(serde_json::json!({ "le": MAX_DAYS }))),
        Some(d) => Ok(Some(d)),
    }
}

pub async fn of(db: &impl ConnectionTrait, org_id: &str) -> AppResult<Retention> {
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT days, purged_before FROM org_retention WHERE org_id = ?",
            vec![org_id.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Retention::of_row(row.try_get_by_index(0)?, row.try_get_by_index(1)?),
        None => Retention::default(),
    })
}

/// Sets the caller's org's retention (`None`: keep forever).
pub async fn set_for(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::ActivityRetention>,
    days: Option<i64>,
) -> AppResult<Retention> {
    set(db, &principal.org_id, days).await
}

/// Sets an org's retention; the operator's command calls it directly.
pub async fn set(db: &DatabaseConnection, org_id: &str, days: Option<i64>) -> AppResult<Retention> {
    let days = parse_days(days).map_err(AppError::invalid)?;
    use sea_orm::EntityTrait;
    if entity::org::Entity::find_by_id(org_id.to_owned())
        .one(db)
        .await?
        .is_none()
    {
        return Err(AppError::not_found("org", org_id));
    }
    db.execute_raw(statement(
        db,
        "INSERT INTO org_retention (org_id, days, purged_before, updated_at) VALUES (?, ?, 0, ?) \
         ON CONFLICT (org_id) DO UPDATE SET days = excluded.days, updated_at = excluded.updated_at",
        vec![
            org_id.into(),
            days.map(|d| d as i32).into(),
            now_micros().into(),
        ],
    ))
    .await?;
    of(db, org_id).await
}

/// What one purge did to one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    pub org_id: String,
    pub before: i64,
    pub events: u64,
}

/// Purges every org's events older than its retention; `None` when a purge
/// is running in another process already.
pub async fn purge(db: &DatabaseConnection) -> AppResult<Option<Vec<Purged>>> {
    // Expired viewer tokens' origins go with every purge (their key rows
    // stay: they name the tokens in the activity they recorded).
    super::viewer_tokens::sweep_expired_origins(db).await?;
    // Only folded events are purged: fold first, and read the watermark after.
    super::rollups::refresh(db).await?;
    let watermark = super::rollups::watermark(db).await?;
    let now = now_micros();
    let due = db
        .query_all_raw(statement(
            db,
            "SELECT org_id, days FROM org_retention WHERE days IS NOT NULL ORDER BY org_id",
            vec![],
        ))
        .await?;
    let mut report = Vec::new();
    for row in due {
        let org_id: String = row.try_get_by_index(0)?;
        let days: i32 = row.try_get_by_index(1)?;
        // Whole hours only, so rollup hours and purged hours line up.
        let cutoff = now - i64::from(days) * 24 * MICROS_PER_HOUR;
        let before = cutoff.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
        let mut events = 0;
        loop {
            let Some(deleted) = purge_batch(db, &org_id, before, watermark).await? else {
                return Ok(None);
            };
            events += deleted;
            if deleted < BATCH as u64 {
                break;
            }
        }
        db.execute_raw(statement(
            db,
            "UPDATE org_retention SET purged_before = ? WHERE org_id = ? AND purged_before < ?",
            vec![before.into(), org_id.clone().into(), before.into()],
        ))
        .await?;
        if events > 0 {
            record(db, &org_id, before, events, days).await?;
            tracing::info!(org = %org_id, events, "purged events past the org's retention");
        }
        report.push(Purged {
            org_id,
            before,
            events,
        });
    }
    Ok(Some(report))
}

/// Deletes at most [`BATCH`] events in a transaction of its own; `None` if
/// another process holds the purge lock.
async fn purge_batch(
    db: &DatabaseConnection,
    org_id: &str,
    before: i64,
    watermark: i64,
) -> AppResult<Option<u64>> {
    let txn = db.begin().await?;
    if !super::try_advisory_xact_lock(&txn, PURGE_LOCK).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    let deleted: Vec<i64> = txn
        .query_all_raw(statement(
            &txn,
            "DELETE FROM activity_events WHERE seq IN (SELECT seq FROM activity_events \
               WHERE org_id = ? AND ts < ? AND seq <= ? LIMIT ?) RETURNING log_index",
            vec![org_id.into(), before.into(), watermark.into(), BATCH.into()],
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.try_get_by_index::<Option<i64>>(0).ok().flatten())
        .collect();
    super::log::record_purged(&txn, org_id, &deleted, before).await?;
    txn.commit().await?;
    Ok(Some(deleted.len() as u64))
}

/// The purge as an event of the org: what went and why.
async fn record(
    db: &DatabaseConnection,
    org_id: &str,
    before: i64,
    events: u64,
    days: i32,
) -> AppResult<()> {
    let row = EventRow {
        id: new_id(IdKind::Activity),
        org_id: org_id.to_owned(),
        ts: now_micros(),
        principal_type: Some("system".into()),
        principal_id: Some("retention".into()),
        resource_type: Some("retention".into()),
        action: "purge".into(),
        status_code: 200,
        success: true,
        token_usage: "{}".into(),
        metadata: serde_json::json!({
            "purged_events": events,
            "before": crate::domain::time::format_micros(before),
            "retention_days": days,
        })
        .to_string(),
        ..Default::default()
    };
    let txn = db.begin().await?;
    insert_batch(&txn, [row], false).await?;
    txn.commit().await?;
    Ok(())
}

/// Purges on an interval until the process ends; failures are logged and retried.
pub fn spawn_purger(db: DatabaseConnection, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge(&db).await {
                Ok(Some(_)) => {}
                Ok(None) => tracing::debug!("another process is purging; skipped this tick"),
                Err(e) => tracing::warn!(error = %e, "purge failed; retrying at the next tick"),
            }
        }
    });
}
