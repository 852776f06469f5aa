//! The cells a summary adds up: events grouped by hour and by the keys
//! asked for, read from the raw events or from the hourly rollups in the
//! same shape, and the whole hours of a window the rollups can answer.

use sea_orm::sea_query::{Asterisk, Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityName, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, QueryTrait,
};

use entity::activity_event;
use entity::activity_rollup;

use super::Totals;
use crate::domain::time::MICROS_PER_HOUR;

/// One aggregated group; the keys not grouped by are constants.
#[derive(Debug, Clone, FromQueryResult)]
pub(super) struct Cell {
    pub(super) hour: i64,
    pub(super) action: String,
    pub(super) resource_type: String,
    pub(super) n: i64,
    ok: i64,
    dur: i64,
    tok: i64,
}

impl Cell {
    pub(super) fn totals(&self) -> Totals {
        Totals {
            requests: self.n,
            successes: self.ok,
            duration_sum_ms: self.dur,
            tokens: self.tok,
        }
    }
}

/// What the aggregation groups by: the breakdowns, or the hours for charts.
/// Either way the database does the grouping, so a week of rollups costs a
/// few dozen rows on the wire, not thousands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Grouping {
    ActionAndResource,
    Hour,
    /// One row: the totals.
    Total,
}

impl Grouping {
    /// (hour, action, resource type) expressions for raw events and for rollup rows.
    pub(super) fn keys(self, rollup: bool) -> [String; 3] {
        match (self, rollup) {
            (Grouping::ActionAndResource, false) => [
                "0".into(),
                "action".into(),
                "COALESCE(resource_type, '')".into(),
            ],
            (Grouping::ActionAndResource, true) => {
                ["0".into(), "action".into(), "resource_type".into()]
            }
            (Grouping::Hour, false) => [
                format!("(ts / {MICROS_PER_HOUR}) * {MICROS_PER_HOUR}"),
                "''".into(),
                "''".into(),
            ],
            (Grouping::Hour, true) => ["hour_start".into(), "''".into(), "''".into()],
            (Grouping::Total, _) => ["0".into(), "''".into(), "''".into()],
        }
    }
}

/// A sum that no stored data can make fail: exact in 64 bits as far as they
/// reach, saturating past them (PostgreSQL sums `BIGINT` as `NUMERIC`;
/// SQLite's `TOTAL` never overflows and is exact below 2^53). The ingest
/// bounds keep real sums far below either limit; this guards rows stored
/// before those bounds existed.
pub fn wide_sum(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("CAST(LEAST(COALESCE(SUM({expr}), 0), 9223372036854775807) AS BIGINT)")
        }
        _ => format!("CAST(TOTAL({expr}) AS INTEGER)"),
    }
}

/// `a + b` of two 64-bit sums, saturating like [`wide_sum`] (SQLite turns an
/// overflowing integer sum into a real, which the cast saturates).
pub fn wide_add(backend: DbBackend, a: &str, b: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("CAST(LEAST(CAST({a} AS NUMERIC) + {b}, 9223372036854775807) AS BIGINT)")
        }
        _ => format!("CAST({a} + {b} AS INTEGER)"),
    }
}

pub(super) fn grouped<E: EntityTrait>(
    backend: DbBackend,
    grouping: Grouping,
    rollup: bool,
    sums: [&str; 4],
) -> sea_orm::Select<E> {
    let [hour, action, resource] = grouping.keys(rollup);
    let mut select = E::find()
        .select_only()
        .column_as(Expr::cust(format!("CAST({hour} AS BIGINT)")), "hour")
        .column_as(Expr::cust(action.clone()), "action")
        .column_as(Expr::cust(resource.clone()), "resource_type");
    for (alias, sum) in ["n", "ok", "dur", "tok"].into_iter().zip(sums) {
        select = select.column_as(Expr::cust(wide_sum(backend, sum)), alias);
    }
    for key in [hour, action, resource]
        .into_iter()
        .filter(|k| k != "0" && k != "''")
    {
        select = select.group_by(Expr::cust(key));
    }
    select
}

pub(super) fn raw_cells(
    backend: DbBackend,
    condition: Condition,
    grouping: Grouping,
) -> SelectStatement {
    grouped::<activity_event::Entity>(
        backend,
        grouping,
        false,
        [
            "1",
            "CASE WHEN success THEN 1 ELSE 0 END",
            "duration_ms",
            "tokens_total",
        ],
    )
    .filter(condition)
    .into_query()
}

/// The raw cells of the events past `seq` `after` that meet `condition`:
/// the tail the rollups have not folded yet, read by its `seq` range. As a
/// value the bound lets PostgreSQL plan that range; SQLite's planner takes
/// the scope's index (org and time) instead and walks the scope's whole
/// window, so there the range is read first, in a subquery that a LIMIT
/// keeps SQLite from flattening into the aggregate.
pub(super) fn tail_cells(
    backend: DbBackend,
    condition: Condition,
    grouping: Grouping,
    after: i64,
) -> SelectStatement {
    let mut cells = raw_cells(
        backend,
        condition.add(activity_event::Column::Seq.gt(after)),
        grouping,
    );
    if backend == DbBackend::Sqlite {
        let tail = Query::select()
            .column(Asterisk)
            .from(activity_event::Entity)
            .and_where(activity_event::Column::Seq.gt(after))
            .limit(i64::MAX as u64)
            .to_owned();
        cells.from_clear().from_subquery(
            tail,
            sea_orm::sea_query::Alias::new(activity_event::Entity.table_name()),
        );
    }
    cells
}

/// The rollup cells of whole hours `[first_hour, last_hour)`, only the columns a summary needs.
pub(super) fn rollup_cells(
    backend: DbBackend,
    org_id: &str,
    (kind, scope_id): (&str, &str),
    (first_hour, last_hour): (i64, i64),
    grouping: Grouping,
) -> SelectStatement {
    use activity_rollup::Column as R;
    grouped::<activity_rollup::Entity>(
        backend,
        grouping,
        true,
        [
            "request_count",
            "success_count",
            "duration_sum_ms",
            "tokens_sum",
        ],
    )
    .filter(R::OrgId.eq(org_id))
    .filter(R::ScopeKind.eq(kind))
    .filter(R::ScopeId.eq(scope_id))
    .filter(R::HourStart.gte(first_hour))
    .filter(R::HourStart.lt(last_hour))
    .into_query()
}

/// Whole hours of a window: `[first_hour, last_hour)`, empty when the window holds none.
pub(super) fn whole_hours(start: i64, end: i64) -> (i64, i64) {
    let first = start.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR
        + if start.rem_euclid(MICROS_PER_HOUR) == 0 {
            0
        } else {
            MICROS_PER_HOUR
        };
    (first, end.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR)
}
