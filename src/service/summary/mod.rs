//! Exact summaries. Whole hours come from the rollups, as far as the watermark
//! reaches; the partial hours at both ends of the window and every event newer
//! than the watermark come from the raw events. Both reads share one snapshot.

use std::collections::BTreeMap;

use sea_orm::sea_query::UnionType;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};

use entity::activity_event::{self, Column};

use super::activity::{filter_condition, scope_condition};
use super::rollups;
use crate::domain::error::AppResult;
use crate::domain::feed::{ActivityFilter, Scope};
use crate::domain::time::{MICROS_PER_DAY, MICROS_PER_HOUR};

mod cells;
mod kept;

use cells::{raw_cells, rollup_cells, tail_cells, whole_hours, Cell, Grouping};
pub use cells::{wide_add, wide_sum};
pub use kept::KeptCells;

/// What a summary reads: the database, and the rollup cells this process
/// keeps between requests, when it keeps them (the server does; a bare
/// connection reads the rollups every time).
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub db: &'a DatabaseConnection,
    pub kept: Option<&'a KeptCells>,
}

impl<'a> Source<'a> {
    pub fn kept(db: &'a DatabaseConnection, kept: &'a KeptCells) -> Self {
        Self {
            db,
            kept: Some(kept),
        }
    }
}

impl<'a> From<&'a DatabaseConnection> for Source<'a> {
    fn from(db: &'a DatabaseConnection) -> Self {
        Self { db, kept: None }
    }
}

/// Where a count without an end time ends: far past any event's time, and
/// on an hour's boundary, so that its window has no partial hour to read at
/// the end.
const OPEN_END: i64 = (i64::MAX / 2).div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;

/// Sums kept as sums: averages and rates are derived, never stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: i64,
    pub successes: i64,
    pub duration_sum_ms: i64,
    pub tokens: i64,
}

impl Totals {
    /// Saturating, so that no stored data can make a summary fail; the
    /// ingest bounds keep real sums far below the limit.
    fn add(&mut self, other: Totals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.successes = self.successes.saturating_add(other.successes);
        self.duration_sum_ms = self.duration_sum_ms.saturating_add(other.duration_sum_ms);
        self.tokens = self.tokens.saturating_add(other.tokens);
    }

    pub fn failures(&self) -> i64 {
        self.requests - self.successes
    }

    pub fn avg_duration_ms(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.duration_sum_ms as f64 / self.requests as f64
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures() as f64 / self.requests as f64
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The window, `[start, end)`, in microseconds.
    pub start: i64,
    pub end: i64,
    pub totals: Totals,
    pub by_action: BTreeMap<String, i64>,
    /// Events without a resource type count under `unknown`.
    pub by_resource: BTreeMap<String, i64>,
}

pub const UNKNOWN_RESOURCE: &str = "unknown";

impl Summary {
    fn add(&mut self, cell: Cell) {
        let t = cell.totals();
        self.totals.add(t);
        *self.by_action.entry(cell.action).or_default() += t.requests;
        let resource = if cell.resource_type.is_empty() {
            UNKNOWN_RESOURCE.to_owned()
        } else {
            cell.resource_type
        };
        *self.by_resource.entry(resource).or_default() += t.requests;
    }
}

/// Chart buckets of `width` covering `[start, end)`, empty ones included,
/// from per-hour totals.
pub fn buckets(
    start: i64,
    end: i64,
    width: i64,
    hourly: &BTreeMap<i64, Totals>,
) -> Vec<(i64, Totals)> {
    let first = start.div_euclid(width) * width;
    let mut out: BTreeMap<i64, Totals> = (0..)
        .map(|i| first + i * width)
        .take_while(|b| *b < end)
        .map(|b| (b, Totals::default()))
        .collect();
    for (hour, t) in hourly {
        out.entry(hour.div_euclid(width) * width)
            .or_default()
            .add(*t);
    }
    out.into_iter().collect()
}

/// How many events a feed lists: exact, and for rollup scopes filtered by
/// time only as cheap as a summary. A feed lists nothing older than the
/// org's retention allows, so neither does its count (the rollups still
/// hold those hours).
#[tracing::instrument(skip_all, fields(org_id = %org_id, scope = ?scope))]
pub async fn count(
    source: impl Into<Source<'_>>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
) -> AppResult<u64> {
    let source = source.into();
    // With kept cells, the retention and the mark are one statement.
    let (retention, mark) = match source.kept {
        Some(_) => {
            let (mark, retention) = rollups::mark_and_retention(source.db, org_id).await?;
            (retention, Some(mark))
        }
        None => (super::retention::of(source.db, org_id).await?, None),
    };
    count_in(source, org_id, scope, filter, retention, mark).await
}

/// [`count`] with its mark and retention read already, by a statement of
/// the caller's (see [`rollups::mark_and_retention_columns`]); without
/// kept cells only the retention is used.
#[tracing::instrument(skip_all, fields(org_id = %org_id, scope = ?scope))]
pub async fn count_marked(
    source: Source<'_>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    (mark, retention): rollups::MarkAndRetention,
) -> AppResult<u64> {
    count_in(source, org_id, scope, filter, retention, Some(mark)).await
}

async fn count_in(
    source: Source<'_>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    retention: super::retention::Retention,
    mark: Option<(rollups::Mark, i64)>,
) -> AppResult<u64> {
    let feed_start = retention.feed_start(crate::domain::time::now_micros());
    let window = window(
        filter,
        filter.start_time.unwrap_or(0).max(feed_start),
        filter.end_time.unwrap_or(OPEN_END),
    );
    let cells = aggregate(source, org_id, scope, &window, Grouping::Total, true, mark).await?;
    Ok(cells.iter().map(|c| c.n).sum::<i64>().max(0) as u64)
}

/// The window a summary covers: `[start, end)` narrowed by the filter's own times.
pub fn window(filter: &ActivityFilter, start: i64, end: i64) -> ActivityFilter {
    let mut f = filter.clone();
    f.start_time = Some(filter.start_time.map_or(start, |s| s.max(start)));
    f.end_time = Some(filter.end_time.map_or(end, |e| e.min(end)));
    f
}

/// Aggregates `scope` over `[start, end)` (narrowed by the filter). Exact:
/// equal to aggregating the raw events.
#[tracing::instrument(skip(source))]
pub async fn summarize(
    source: impl Into<Source<'_>>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    start: i64,
    end: i64,
) -> AppResult<Summary> {
    summary_from(source, org_id, scope, filter, start, end, true).await
}

/// The same summary from the raw events alone: the baseline the rollups are
/// measured against.
pub async fn summarize_raw(
    db: &DatabaseConnection,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    start: i64,
    end: i64,
) -> AppResult<Summary> {
    summary_from(db, org_id, scope, filter, start, end, false).await
}

async fn summary_from(
    source: impl Into<Source<'_>>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    start: i64,
    end: i64,
    use_rollups: bool,
) -> AppResult<Summary> {
    let filter = window(filter, start, end);
    let (start, end) = (
        filter.start_time.unwrap_or(start),
        filter.end_time.unwrap_or(end),
    );
    let mut summary = Summary {
        start,
        end,
        ..Default::default()
    };
    for cell in aggregate(
        source.into(),
        org_id,
        scope,
        &filter,
        Grouping::ActionAndResource,
        use_rollups,
        None,
    )
    .await?
    {
        summary.add(cell);
    }
    Ok(summary)
}

/// Totals per hour (keyed by the hour's start) over `[start, end)`, for charts.
#[tracing::instrument(skip(source))]
pub async fn hourly(
    source: impl Into<Source<'_>>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    start: i64,
    end: i64,
) -> AppResult<BTreeMap<i64, Totals>> {
    let filter = window(filter, start, end);
    let mut out: BTreeMap<i64, Totals> = BTreeMap::new();
    for cell in aggregate(
        source.into(),
        org_id,
        scope,
        &filter,
        Grouping::Hour,
        true,
        None,
    )
    .await?
    {
        out.entry(cell.hour).or_default().add(cell.totals());
    }
    Ok(out)
}

/// The parts as one `UNION ALL`, or nothing without parts.
fn union_all(
    parts: impl IntoIterator<Item = sea_orm::sea_query::SelectStatement>,
) -> Option<sea_orm::sea_query::SelectStatement> {
    let mut parts = parts.into_iter();
    let mut union = parts.next()?;
    for part in parts {
        union.union(UnionType::All, part);
    }
    Some(union)
}

/// The cells of a window (the filter carries it): whole hours from the
/// rollups as far as the watermark reaches, the rest from the raw events:
/// the partial hours at both ends, and the whole hours' events not folded
/// yet, three range scans (an OR of them would scan the whole window).
///
/// The rollup cells and the raw remainder must agree on the watermark, or a
/// fold committing meanwhile would count an event twice or drop one. With
/// kept cells (see [`KeptCells`]) the mark is read first: the cells kept
/// for it, or read and kept when the mark has not moved meanwhile, are the
/// rollups at that watermark, and the raw remainder is read past it as a
/// value. Otherwise both are read in one statement (one snapshot on either
/// backend).
async fn aggregate(
    source: Source<'_>,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    grouping: Grouping,
    use_rollups: bool,
    // The rollups' mark (and newest `seq`), when the caller read it already.
    marked: Option<(rollups::Mark, i64)>,
) -> AppResult<Vec<Cell>> {
    let db = source.db;
    let (Some(start), Some(end)) = (filter.start_time, filter.end_time) else {
        return Ok(Vec::new());
    };
    if end <= start {
        return Ok(Vec::new());
    }
    let (first_hour, last_hour) = whole_hours(start, end);
    let rollup = scope
        .rollup_key(org_id)
        .filter(|_| use_rollups && !filter.narrows_beyond_time() && last_hour > first_hour);
    let backend = db.get_database_backend();
    let base = scope_condition(org_id, scope).add(filter_condition(backend, filter));
    let Some((kind, scope_id)) = rollup else {
        return Ok(
            Cell::find_by_statement(backend.build(&raw_cells(backend, base, grouping)))
                .all(db)
                .await?,
        );
    };
    let hours = (first_hour, last_hour);
    // The raw remainder: the partial hours (when there are any) and the
    // events of the whole hours not folded yet (when there may be any):
    // past `seq` `after`, and meeting `more`.
    let remainder = |unfolded: Option<(i64, Condition)>| {
        let mut parts = Vec::with_capacity(3);
        if start < first_hour {
            let part = Condition::all().add(Column::Ts.lt(first_hour));
            parts.push(raw_cells(backend, base.clone().add(part), grouping));
        }
        if last_hour < end {
            let part = Condition::all().add(Column::Ts.gte(last_hour));
            parts.push(raw_cells(backend, base.clone().add(part), grouping));
        }
        if let Some((after, more)) = unfolded {
            let part = more
                .add(Column::Ts.gte(first_hour))
                .add(Column::Ts.lt(last_hour));
            parts.push(tail_cells(backend, base.clone().add(part), grouping, after));
        }
        parts
    };
    if let Some(kept) = source.kept {
        let (mark, newest) = match marked {
            Some(marked) => marked,
            None => rollups::mark(db).await?,
        };
        let window = kept::Window {
            org_id: org_id.to_owned(),
            kind,
            scope_id: scope_id.to_owned(),
            hours,
            grouping,
            mark,
        };
        let folded = match kept.get(&window) {
            Some(cells) => Some(cells),
            None => {
                let statement = rollup_cells(backend, org_id, (kind, scope_id), hours, grouping);
                let cells = Cell::find_by_statement(backend.build(&statement))
                    .all(db)
                    .await?;
                // Unmoved, so no fold committed while the cells were read.
                (rollups::mark(db).await?.0 == mark).then(|| kept.keep(window, cells))
            }
        };
        if let Some(folded) = folded {
            // Nothing past the watermark: the rollups hold every event.
            let unfolded = (newest > mark.watermark).then(|| (mark.watermark, Condition::all()));
            let mut cells = match union_all(remainder(unfolded)) {
                Some(union) => {
                    Cell::find_by_statement(backend.build(&union))
                        .all(db)
                        .await?
                }
                None => Vec::new(),
            };
            cells.extend(folded.iter().cloned());
            return Ok(cells);
        }
    }
    // The statement reads the watermark itself; the one read just before is
    // a lower bound of it (it only grows) that, as a value, lets the planner
    // read the unfolded tail by the `seq` range: the statement's own
    // watermark alone is unknown at planning time, and PostgreSQL would then
    // read every event of the window.
    let known = rollups::watermark(db).await?;
    let unfolded = Condition::all().add(sea_orm::sea_query::ExprTrait::gt(
        sea_orm::sea_query::Expr::col(Column::Seq),
        rollups::watermark_expr(backend),
    ));
    let folded = rollup_cells(backend, org_id, (kind, scope_id), hours, grouping);
    let union = union_all(std::iter::once(folded).chain(remainder(Some((known, unfolded)))))
        .expect("the rollup cells are a part");
    Ok(Cell::find_by_statement(backend.build(&union))
        .all(db)
        .await?)
}

/// Exact duration percentiles (nearest rank) over the window, one indexed
/// probe per percentile. `count` is the number of matching events.
#[tracing::instrument(skip(db))]
pub async fn duration_percentiles(
    db: &DatabaseConnection,
    org_id: &str,
    scope: &Scope,
    filter: &ActivityFilter,
    count: i64,
    percentiles: &[f64],
) -> AppResult<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(percentiles.len());
    for p in percentiles {
        if count == 0 {
            out.push(None);
            continue;
        }
        let rank = ((p * count as f64).ceil() as i64).clamp(1, count);
        let value: Option<i64> = activity_event::Entity::find()
            .select_only()
            .column(Column::DurationMs)
            .filter(
                scope_condition(org_id, scope)
                    .add(filter_condition(db.get_database_backend(), filter)),
            )
            .order_by_asc(Column::DurationMs)
            .offset((rank - 1) as u64)
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        out.push(value);
    }
    Ok(out)
}

pub const BUCKET_HOUR: i64 = MICROS_PER_HOUR;
pub const BUCKET_DAY: i64 = MICROS_PER_DAY;
