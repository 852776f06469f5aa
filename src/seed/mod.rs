//! The deterministic demo data set: the same `--seed` gives the same ids and the
//! same counts; times are laid out relative to now so "the last 24 hours" always
//! has data. Events are generated and written in chunks, so memory stays flat
//! whatever `--events` is.

mod directory;
mod events;
mod fixtures;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};

use crate::domain::time::{now_micros, MICROS_PER_DAY};
use crate::service::events::{insert_batch, EventRow};
use crate::service::statement;

use directory::*;
use events::*;
pub use fixtures::DEMO_ORGS;
use fixtures::*;

#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub events: u64,
    pub days: u32,
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            events: 200_000,
            days: 14,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub orgs: Vec<String>,
    pub events: u64,
    pub sessions: u64,
    pub users: u64,
}

pub(super) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Picks by weight: `[(item, weight)]`.
pub(super) fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total);
    for (item, w) in items {
        if n < *w {
            return *item;
        }
        n -= w;
    }
    items[items.len() - 1].0
}

pub(super) fn hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

pub(super) async fn exec(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> anyhow::Result<()> {
    db.execute_raw(statement(db, sql, values)).await?;
    Ok(())
}

/// Writes the demo data set, replacing the demo orgs if they exist already.
/// `progress` is told how many events have been written so far.
pub async fn seed(
    db: &DatabaseConnection,
    options: &SeedOptions,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<SeedReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let now = now_micros();
    let window = i64::from(options.days.max(1)) * MICROS_PER_DAY;
    let start = now - window;
    let orgs: Vec<OrgShape> = DEMO_ORGS
        .iter()
        .map(|(id, slug, _, _)| OrgShape::new(id, slug))
        .collect();

    let txn = db.begin().await?;
    for table in ORG_TABLES {
        let column = if table == "orgs" { "id" } else { "org_id" };
        exec(
            &txn,
            &format!("DELETE FROM {table} WHERE {column} IN (?, ?)"),
            vec![DEMO_ORGS[0].0.into(), DEMO_ORGS[1].0.into()],
        )
        .await?;
    }
    // The demo orgs' rollup cells are gone: no process may keep them.
    crate::service::rollups::moved(&txn).await?;
    let mut sessions = 0;
    for ((_, _, name, _), org) in DEMO_ORGS.iter().zip(&orgs) {
        sessions += seed_directory(&txn, &mut rng, org, name, now, start).await?;
    }
    txn.commit().await?;

    let per_org: Vec<u64> = {
        let total_weight: u64 = DEMO_ORGS.iter().map(|o| o.3).sum();
        let first = options.events * DEMO_ORGS[0].3 / total_weight;
        vec![first, options.events - first]
    };
    // Each chunk covers its own slice of the window and is written in time
    // order: every feed index is (scope, ts, id), so time-ordered inserts append
    // near the end of each scope's range instead of splitting pages at random.
    let mut written = 0;
    const EVENTS_PER_TRANSACTION: u64 = 10_000;
    for (org, count) in orgs.iter().zip(per_org) {
        let chunks = count.div_ceil(EVENTS_PER_TRANSACTION).max(1);
        let slice = window / chunks as i64;
        let mut left = count;
        for chunk in 0..chunks as i64 {
            let n = left.min(EVENTS_PER_TRANSACTION);
            let (from, to) = (
                chunk * slice,
                if chunk + 1 == chunks as i64 {
                    window
                } else {
                    (chunk + 1) * slice
                },
            );
            let mut offsets: Vec<i64> = (0..n)
                .map(|_| rng.random_range(from..to.max(from + 1)))
                .collect();
            offsets.sort_unstable();
            let rows: Vec<EventRow> = offsets
                .into_iter()
                .map(|offset| demo_event(&mut rng, org, start, offset))
                .collect();
            let txn = db.begin().await?;
            insert_batch(&txn, rows, false).await?;
            txn.commit().await?;
            left -= n;
            written += n;
            progress(written);
        }
    }
    // Fresh planner statistics for the new volume.
    db.execute_unprepared("ANALYZE").await?;
    Ok(SeedReport {
        orgs: DEMO_ORGS.iter().map(|o| o.0.to_owned()).collect(),
        events: written,
        sessions,
        users: (orgs.len() * FIRST_NAMES.len()) as u64,
    })
}
