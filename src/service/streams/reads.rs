//! Reading a stream's next batch, once per org for all its streams.
//!
//! An org's streams on one replica wake on the same commit and ask for the
//! same events: three unfiltered streams would read and encode every event
//! three times (on SQLite each row also crosses a thread to reach the
//! gateway). So the newest batch read for an org and format is kept for a
//! moment, and a stream whose cursor stands where that batch begins takes
//! it instead of reading again. The first reader of a batch holds the slot
//! while it reads, so the others wait for it rather than read beside it.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::encode::{self, MAX_BATCH_EVENTS};
use super::Format;
use crate::domain::error::AppResult;
use crate::domain::feed::ActivityFilter;
use crate::service::statement;

/// How long a batch read for one stream serves the org's other streams:
/// long enough for the streams woken by one commit, short enough that a
/// stream coming back later (after a refusal, a pause, a restart) reads
/// afresh, after whatever retention purged meanwhile.
const SHARED_FOR: Duration = Duration::from_millis(200);

/// The (org, format) pairs whose newest batch is kept: each holds at most
/// one batch ([`MAX_BATCH_EVENTS`] events, about [`encode::MAX_BATCH_BYTES`]).
const SHARED_SLOTS: usize = 16;

/// The events of a stream from its cursor on, encoded for its destination.
pub(super) struct Batch {
    /// The cursor the batch starts at.
    pub from: i64,
    /// Every log index below this was committed when the batch was read, so
    /// a batch that is not full covers the log up to here.
    pub below: i64,
    /// Each event's log index, in log order.
    pub log_indexes: Vec<i64>,
    /// Each event's time and bytes, in the same order.
    pub written: Vec<(i64, Vec<u8>)>,
    read_at: Instant,
    /// The stream that read it: it reads afresh itself.
    read_by: String,
}

/// The point of the stream's position a batch is read from.
pub(super) struct BatchStart<'a> {
    pub org_id: &'a str,
    pub stream_id: &'a str,
    pub token: i64,
    pub next_index: i64,
    pub tree_size: i64,
    pub format: Format,
    pub filter: &'a ActivityFilter,
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Batch>>>>;

/// The newest batch read per org and format, on this replica.
pub(super) struct SharedReads {
    slots: Mutex<LruCache<(String, Format), Slot>>,
}

impl Default for SharedReads {
    fn default() -> Self {
        Self {
            slots: Mutex::new(LruCache::new(
                NonZeroUsize::new(SHARED_SLOTS).expect("a positive capacity"),
            )),
        }
    }
}

impl SharedReads {
    /// The stream's next batch, or `None` once the stream is no longer
    /// active and this claim's. A filtered stream reads its own.
    pub async fn next(
        &self,
        db: &DatabaseConnection,
        at: &BatchStart<'_>,
    ) -> AppResult<Option<Arc<Batch>>> {
        if *at.filter != ActivityFilter::default() {
            return Ok(Some(Arc::new(read(db, at).await?)));
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .get_or_insert((at.org_id.to_owned(), at.format), Slot::default)
                .clone()
        };
        let mut kept = slot.lock().await;
        if let Some(batch) = kept.as_ref().filter(|b| {
            b.from == at.next_index && b.read_at.elapsed() < SHARED_FOR && b.read_by != at.stream_id
        }) {
            // The read that made it checked another stream's claim: check ours.
            return Ok(still_ours(db, at).await?.then(|| batch.clone()));
        }
        let batch = Arc::new(read(db, at).await?);
        // Only events prove the claim held when they were read: an empty
        // read may be a paused stream's, and no other stream may take it.
        if !batch.written.is_empty() {
            *kept = Some(batch.clone());
        }
        Ok(Some(batch))
    }
}

/// Reads and encodes the next events: from the cursor, below the tree size
/// read before (every index below it is committed), matching the filter,
/// in log order. Read in the same statement as the stream's status and
/// claim, so a pause that committed before this read leaves it empty.
async fn read(db: &DatabaseConnection, at: &BatchStart<'_>) -> AppResult<Batch> {
    use entity::activity_event::{Column, Entity};
    use sea_orm::sea_query::Expr;
    let (token_at, id_at) = match db.get_database_backend() {
        DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let still_ours = Expr::cust_with_values(
        format!(
            "EXISTS (SELECT 1 FROM log_streams s WHERE s.lease_token = {token_at} AND s.id = {id_at} AND s.status = 'active')"
        ),
        [sea_orm::Value::from(at.token), at.stream_id.into()],
    );
    let rows = Entity::find()
        .filter(Column::OrgId.eq(at.org_id))
        .filter(Column::LogIndex.gte(at.next_index))
        .filter(Column::LogIndex.lt(at.tree_size))
        .filter(crate::service::activity::filter_condition(at.filter))
        .filter(still_ours)
        .order_by_asc(Column::LogIndex)
        .limit(MAX_BATCH_EVENTS)
        .all(db)
        .await?;
    let mut batch = Batch {
        from: at.next_index,
        below: at.tree_size,
        log_indexes: Vec::with_capacity(rows.len()),
        written: Vec::with_capacity(rows.len()),
        read_at: Instant::now(),
        read_by: at.stream_id.to_owned(),
    };
    for row in rows {
        let Some(index) = row.log_index else { continue };
        batch.log_indexes.push(index);
        batch.written.push((row.ts, encode::event(at.format, row)));
    }
    Ok(batch)
}

/// Whether the stream is still active and this claim's.
async fn still_ours(db: &DatabaseConnection, at: &BatchStart<'_>) -> AppResult<bool> {
    Ok(db
        .query_one_raw(statement(
            db,
            "SELECT 1 FROM log_streams WHERE id = ? AND lease_token = ? AND status = 'active'",
            vec![at.stream_id.into(), at.token.into()],
        ))
        .await?
        .is_some())
}
