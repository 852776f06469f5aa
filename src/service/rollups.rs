//! The hourly rollups ("materialized views") and their watermark. Events are
//! folded in by ingest order (`seq`), so late events with old timestamps are
//! folded too; summaries read the raw events beyond the watermark.

use crate::domain::grant::{cap, Grant};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

use super::statement;
use crate::domain::error::{AppError, AppResult};
use crate::domain::time::{now_micros, MICROS_PER_HOUR};

pub const ROLLUP_VIEW: &str = "activity_rollups_hourly";

/// The scope kinds a rollup keeps, with the event column each is keyed by.
pub const SCOPE_COLUMNS: [(&str, &str); 6] = [
    ("org", "org_id"),
    ("workspace", "workspace_id"),
    ("app", "app_id"),
    ("endpoint", "endpoint_id"),
    ("augmentation", "augmentation_id"),
    ("user", "user_id"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    pub views: Vec<&'static str>,
    pub folded_events: u64,
    pub watermark: i64,
}

/// The watermark as of the reader's snapshot: rollups hold exactly the events with `seq <= watermark`.
pub async fn watermark(db: &impl ConnectionTrait) -> AppResult<i64> {
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT last_seq FROM rollup_watermarks WHERE name = ?",
            vec![ROLLUP_VIEW.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// Which fold the rollups are at: the watermark and when that fold ran.
/// Every change to the rollup cells moves it (a fold that folds something,
/// or [`moved`]), so cells read at one mark are the cells of that mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark {
    pub watermark: i64,
    refreshed_at: i64,
}

/// The mark, and the newest event's `seq` read in the same statement: when
/// it is not past the watermark, every event is folded (a fold takes all
/// committed events up to the newest, and no insert is in flight meanwhile).
pub async fn mark(db: &impl ConnectionTrait) -> AppResult<(Mark, i64)> {
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT last_seq, refreshed_at, (SELECT COALESCE(MAX(seq), 0) FROM activity_events) \
             FROM rollup_watermarks WHERE name = ?",
            vec![ROLLUP_VIEW.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => (
            Mark {
                watermark: row.try_get_by_index(0)?,
                refreshed_at: row.try_get_by_index(1)?,
            },
            row.try_get_by_index(2)?,
        ),
        None => never_folded(),
    })
}

/// The mark and retention a total reads before it knows its window (see
/// [`mark_and_retention`]).
pub type MarkAndRetention = ((Mark, i64), super::retention::Retention);

/// [`mark`], with the newest `seq` of the org's events rather than of all,
/// and the org's retention (see [`super::retention::of`]), in one
/// statement: what an exact total reads before it knows its window, whether
/// its kept cells still hold, and whether the org has events past the
/// watermark (another org's arrivals cost its totals nothing).
pub async fn mark_and_retention(
    db: &impl ConnectionTrait,
    org_id: &str,
) -> AppResult<MarkAndRetention> {
    let backend = db.get_database_backend();
    let statement = sea_orm::sea_query::Query::select()
        .exprs(mark_and_retention_columns(backend, org_id))
        .to_owned();
    let row = db
        .query_one_raw(backend.build(&statement))
        .await?
        .ok_or_else(|| AppError::internal_msg("a select of one row answered none"))?;
    mark_and_retention_at(&row, 0)
}

/// The columns [`mark_and_retention`] reads, for a statement of the
/// caller's to read beside its own rows (a page and its total in one
/// statement). Each is an uncorrelated subquery: the database evaluates it
/// once per statement, not per row. [`mark_and_retention_at`] reads them.
pub fn mark_and_retention_columns(
    backend: DbBackend,
    org_id: &str,
) -> [sea_orm::sea_query::SimpleExpr; MARK_AND_RETENTION_COLUMNS] {
    use sea_orm::sea_query::Expr;
    // The org's newest event is the one last in its log (log indexes are
    // given in `seq` order, under the org's lock): one probe of
    // `ux_activity_events_log_index` from its end. An event without a log
    // index (only ever one slipped past the gateway) is looked for too, by
    // the same index's NULL entries, so that none is left out uncounted.
    // On PostgreSQL the org is named through a subquery, for the reason a
    // page does (see `activity::page_condition`): so that its plan is kept.
    // SeaQuery renumbers each expression's `$1` on PostgreSQL.
    let org = match backend {
        DbBackend::Postgres => "(SELECT CAST($1 AS TEXT))",
        _ => "?",
    };
    let of_org = |sql: String| Expr::cust_with_values(sql, [org_id]);
    // The view's name is a constant of the text: one parameter fewer for
    // PostgreSQL to plan by.
    let watermark = |column: &str| {
        Expr::cust(format!(
            "(SELECT w.{column} FROM rollup_watermarks w WHERE w.name = '{ROLLUP_VIEW}')"
        ))
    };
    [
        watermark("last_seq"),
        watermark("refreshed_at"),
        of_org(format!(
            "(SELECT e.seq FROM activity_events e WHERE e.org_id = {org} AND e.log_index IS NOT NULL \
             ORDER BY e.log_index DESC LIMIT 1)"
        )),
        of_org(format!(
            "(SELECT MAX(e.seq) FROM activity_events e WHERE e.org_id = {org} AND e.log_index IS NULL)"
        )),
        of_org(format!(
            "(SELECT r.days FROM org_retention r WHERE r.org_id = {org})"
        )),
        of_org(format!(
            "(SELECT r.purged_before FROM org_retention r WHERE r.org_id = {org})"
        )),
    ]
}

/// How many columns [`mark_and_retention_columns`] adds to a statement.
pub const MARK_AND_RETENTION_COLUMNS: usize = 6;

/// The mark and retention read by [`mark_and_retention_columns`] from
/// `row`, starting at its column `at`.
pub fn mark_and_retention_at(row: &sea_orm::QueryResult, at: usize) -> AppResult<MarkAndRetention> {
    let newest = row
        .try_get_by_index::<Option<i64>>(at + 2)?
        .max(row.try_get_by_index::<Option<i64>>(at + 3)?)
        .unwrap_or(0);
    let mark = match row.try_get_by_index::<Option<i64>>(at)? {
        Some(watermark) => (
            Mark {
                watermark,
                refreshed_at: row.try_get_by_index(at + 1)?,
            },
            newest,
        ),
        None => never_folded(),
    };
    let retention = super::retention::Retention::of_row(
        row.try_get_by_index(at + 4)?,
        row.try_get_by_index(at + 5)?,
    );
    Ok((mark, retention))
}

/// The mark of rollups never folded: nothing is known to be folded.
fn never_folded() -> (Mark, i64) {
    (
        Mark {
            watermark: 0,
            refreshed_at: 0,
        },
        i64::MAX,
    )
}

/// Moves the mark for a change of the rollup cells that is not a fold (the
/// demo data set replacing its orgs' cells), so that no process keeps cells
/// read before it.
pub async fn moved(db: &impl ConnectionTrait) -> AppResult<()> {
    db.execute_raw(statement(
        db,
        "UPDATE rollup_watermarks SET refreshed_at = ? WHERE name = ?",
        vec![now_micros().into(), ROLLUP_VIEW.into()],
    ))
    .await?;
    Ok(())
}

/// The watermark as an expression of a statement that reads the rollups,
/// so that one statement sees both at one snapshot.
pub fn watermark_expr(backend: sea_orm::DbBackend) -> sea_orm::sea_query::SimpleExpr {
    let at = match backend {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    sea_orm::sea_query::Expr::cust_with_values(
        format!("COALESCE((SELECT last_seq FROM rollup_watermarks WHERE name = {at}), 0)"),
        [sea_orm::Value::from(ROLLUP_VIEW)],
    )
}

/// How far the rollups are behind: events not folded yet, and seconds since
/// the last fold that folded something (`None` before the first).
pub struct Lag {
    pub unfolded_events: i64,
    pub seconds_since_fold: Option<f64>,
}

/// The rollups' [`Lag`]: one read of the watermark and a count over the
/// `seq` index beyond it (short while the background refresh keeps up).
pub async fn lag(db: &DatabaseConnection) -> AppResult<Lag> {
    // No watermark row yet (no refresh ever ran): every event is unfolded.
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT COALESCE((SELECT refreshed_at FROM rollup_watermarks WHERE name = ?), 0), \
                    (SELECT COUNT(*) FROM activity_events WHERE seq > \
                        COALESCE((SELECT last_seq FROM rollup_watermarks WHERE name = ?), 0))",
            vec![ROLLUP_VIEW.into(), ROLLUP_VIEW.into()],
        ))
        .await?;
    let (refreshed_at, unfolded) = match row {
        Some(row) => (
            row.try_get_by_index::<i64>(0)?,
            row.try_get_by_index::<i64>(1)?,
        ),
        None => (0, 0),
    };
    Ok(Lag {
        unfolded_events: unfolded,
        seconds_since_fold: (refreshed_at > 0)
            .then(|| (now_micros() - refreshed_at).max(0) as f64 / 1e6),
    })
}

/// What a refresh answers: the views brought up to date, and the cache tags
/// of the org's summaries and analytics. The gateway itself caches no
/// summary (they read the rollups and the newer raw events in one snapshot,
/// so they are never stale); the tags are for caches in front of it.
pub struct RefreshAnswer {
    pub views: Vec<&'static str>,
    pub tags: Vec<String>,
}

/// [`refresh`] for a caller holding `activity:refresh`.
pub async fn refresh_for(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::ActivityRefresh>,
) -> AppResult<RefreshAnswer> {
    let report = super::detached({
        let db = db.clone();
        async move { refresh(&db).await }
    })
    .await?;
    let org = &principal.org_id;
    let tags = [
        "activity",
        "activity-summary",
        "session-analytics",
        "sessions",
        "problems",
    ]
    .iter()
    .map(|t| format!("{t}:{org}"))
    .collect();
    Ok(RefreshAnswer {
        views: report.views,
        tags,
    })
}

/// The advisory lock key of folds ("rollups" in ASCII).
const FOLD_LOCK: i64 = 0x0072_6f6c_6c75_7073;

/// Folds every event newer than the watermark into the rollups, in one
/// transaction with the watermark's move, so a reader sees both or neither.
/// Waits for a fold running elsewhere (another replica) to end first.
#[tracing::instrument(skip(db))]
pub async fn refresh(db: &DatabaseConnection) -> AppResult<RefreshReport> {
    fold(db, true)
        .await?
        .ok_or_else(|| AppError::internal_msg("a fold that waits for its lock did not run"))
}

/// [`refresh`], unless a fold is running elsewhere (`None`): the background
/// folds of several replicas then take turns instead of queueing.
pub async fn refresh_unless_busy(db: &DatabaseConnection) -> AppResult<Option<RefreshReport>> {
    fold(db, false).await
}

async fn fold(db: &DatabaseConnection, wait: bool) -> AppResult<Option<RefreshReport>> {
    let txn = db.begin().await?;
    // One fold at a time across every process: two folds reading the same
    // watermark would both fold the events beyond it, counting them twice.
    if wait {
        super::advisory_xact_lock(&txn, FOLD_LOCK).await?;
    } else if !super::try_advisory_xact_lock(&txn, FOLD_LOCK).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    // A write first: on SQLite it takes the write lock before anything is read,
    // so no event can commit between reading the bounds and folding them.
    txn.execute_raw(statement(
        &txn,
        "INSERT INTO rollup_watermarks (name, last_seq, refreshed_at) VALUES (?, 0, 0) ON CONFLICT (name) DO NOTHING",
        vec![ROLLUP_VIEW.into()],
    ))
    .await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        // Waits for inserts in flight and holds new ones until commit: with
        // concurrent writers, sequence order is not commit order, and an event
        // with a lower seq committing after the fold would be skipped for good.
        txn.execute_unprepared("LOCK TABLE activity_events IN SHARE MODE")
            .await?;
    }
    let from = watermark(&txn).await?;
    let to: i64 = txn
        .query_one_raw(statement(
            &txn,
            "SELECT COALESCE(MAX(seq), 0) FROM activity_events",
            vec![],
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    let mut folded = 0;
    if to > from {
        folded = txn
            .query_one_raw(statement(
                &txn,
                "SELECT COUNT(*) FROM activity_events WHERE seq > ? AND seq <= ?",
                vec![from.into(), to.into()],
            ))
            .await?
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0) as u64;
        for (kind, column) in SCOPE_COLUMNS {
            txn.execute_raw(statement(
                &txn,
                &fold_sql(txn.get_database_backend(), kind, column),
                vec![from.into(), to.into()],
            ))
            .await?;
        }
        txn.execute_raw(statement(
            &txn,
            "UPDATE rollup_watermarks SET last_seq = ?, refreshed_at = ? WHERE name = ?",
            vec![to.into(), now_micros().into(), ROLLUP_VIEW.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    if folded > 0 && db.get_database_backend() == DbBackend::Sqlite {
        // Keeps SQLite's planner statistics current (PostgreSQL's autovacuum
        // does this itself): without them it may read the unfolded tail of a
        // summary through the org index instead of the `seq` range.
        db.execute_unprepared("PRAGMA optimize").await?;
    }
    Ok(Some(RefreshReport {
        views: vec![ROLLUP_VIEW],
        folded_events: folded,
        watermark: to.max(from),
    }))
}

/// Folds the events of a `seq` range into the hourly rollups of one scope
/// kind. Sums are wide and saturate (see `summary::wide_sum`), so that rows
/// stored before the ingest bounds cannot make a refresh fail.
fn fold_sql(backend: DbBackend, kind: &str, column: &str) -> String {
    use super::summary::{wide_add, wide_sum};
    let hour = format!("(ts / {MICROS_PER_HOUR}) * {MICROS_PER_HOUR}");
    let (durations, tokens) = (
        wide_sum(backend, "duration_ms"),
        wide_sum(backend, "tokens_total"),
    );
    let (add_durations, add_tokens) = (
        wide_add(
            backend,
            "activity_rollups_hourly.duration_sum_ms",
            "excluded.duration_sum_ms",
        ),
        wide_add(
            backend,
            "activity_rollups_hourly.tokens_sum",
            "excluded.tokens_sum",
        ),
    );
    format!(
        "INSERT INTO activity_rollups_hourly \
         (org_id, scope_kind, scope_id, hour_start, action, resource_type, request_count, success_count, duration_sum_ms, tokens_sum) \
         SELECT org_id, '{kind}', {column}, {hour}, action, COALESCE(resource_type, ''), COUNT(*), \
                SUM(CASE WHEN success THEN 1 ELSE 0 END), {durations}, {tokens} \
         FROM activity_events WHERE seq > ? AND seq <= ? AND {column} IS NOT NULL \
         GROUP BY org_id, {column}, {hour}, action, COALESCE(resource_type, '') \
         ON CONFLICT (org_id, scope_kind, scope_id, hour_start, action, resource_type) DO UPDATE SET \
           request_count = activity_rollups_hourly.request_count + excluded.request_count, \
           success_count = activity_rollups_hourly.success_count + excluded.success_count, \
           duration_sum_ms = {add_durations}, \
           tokens_sum = {add_tokens}"
    )
}

/// Refreshes on an interval until the process ends; failures are logged and retried.
pub fn spawn_background_refresh(
    db: DatabaseConnection,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match refresh_unless_busy(&db).await {
                Ok(Some(report)) if report.folded_events > 0 => {
                    tracing::debug!(
                        folded = report.folded_events,
                        watermark = report.watermark,
                        "rollups refreshed"
                    )
                }
                Ok(Some(_)) => {}
                Ok(None) => tracing::debug!("another process is folding; skipped this tick"),
                Err(e) => {
                    tracing::warn!(error = %e, "rollup refresh failed; retrying at the next tick")
                }
            }
        }
    })
}
