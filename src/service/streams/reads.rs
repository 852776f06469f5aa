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

use super::deliver::{Claim, Position};
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

impl Batch {
    /// Whether the batch serves the stream `stream_id` at `next_index`: it
    /// starts there, another stream read it, and it is fresh.
    fn serves(&self, next_index: i64, stream_id: &str) -> bool {
        self.from == next_index && self.read_by != stream_id && self.read_at.elapsed() < SHARED_FOR
    }
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
    /// The slot of an org and format: the same one while it stays among
    /// the [`SHARED_SLOTS`] most recently used.
    fn slot(&self, org_id: &str, format: Format) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .get_or_insert((org_id.to_owned(), format), Slot::default)
            .clone()
    }

    /// The stream's next batch, or `None` once the stream is no longer
    /// active and this claim's. A filtered stream reads its own.
    pub async fn next(
        &self,
        db: &DatabaseConnection,
        claim: &Claim,
        at: &Position,
    ) -> AppResult<Option<Arc<Batch>>> {
        if at.filter != ActivityFilter::default() {
            return Ok(Some(Arc::new(read(db, claim, at).await?)));
        }
        let slot = self.slot(&claim.org_id, at.format);
        let mut kept = slot.lock().await;
        if let Some(batch) = kept.as_ref().filter(|b| b.serves(at.next_index, &claim.id)) {
            // The read that made it checked another stream's claim: check ours.
            return Ok(still_ours(db, claim).await?.then(|| batch.clone()));
        }
        let batch = Arc::new(read(db, claim, at).await?);
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
async fn read(db: &DatabaseConnection, claim: &Claim, at: &Position) -> AppResult<Batch> {
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
        [sea_orm::Value::from(claim.token), claim.id.as_str().into()],
    );
    let rows = Entity::find()
        .filter(Column::OrgId.eq(claim.org_id.as_str()))
        .filter(Column::LogIndex.gte(at.next_index))
        .filter(Column::LogIndex.lt(at.tree_size))
        .filter(crate::service::activity::filter_condition(
            db.get_database_backend(),
            &at.filter,
        ))
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
        read_by: claim.id.clone(),
    };
    for row in rows {
        let Some(index) = row.log_index else { continue };
        batch.log_indexes.push(index);
        batch.written.push((row.ts, encode::event(at.format, row)));
    }
    Ok(batch)
}

/// Whether the stream is still active and this claim's.
async fn still_ours(db: &DatabaseConnection, claim: &Claim) -> AppResult<bool> {
    Ok(db
        .query_one_raw(statement(
            db,
            "SELECT 1 FROM log_streams WHERE id = ? AND lease_token = ? AND status = 'active'",
            vec![claim.id.as_str().into(), claim.token.into()],
        ))
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(read_at: Instant) -> Batch {
        Batch {
            from: 10,
            below: 20,
            log_indexes: vec![10],
            written: vec![(0, b"{}".to_vec())],
            read_at,
            read_by: "lst_a".into(),
        }
    }

    fn ago(elapsed: Duration) -> Instant {
        Instant::now()
            .checked_sub(elapsed)
            .expect("the clock has run that long")
    }

    #[test]
    fn a_batch_serves_other_streams_at_its_start_until_its_time_is_up() {
        let fresh = batch(ago(SHARED_FOR / 2));
        assert!(fresh.serves(10, "lst_b"));
        assert!(!fresh.serves(11, "lst_b"), "another cursor");
        assert!(!fresh.serves(10, "lst_a"), "the stream that read it");
        assert!(!batch(ago(SHARED_FOR)).serves(10, "lst_b"), "at the edge");
        assert!(!batch(ago(SHARED_FOR + Duration::from_millis(1))).serves(10, "lst_b"));
    }

    #[test]
    fn slots_are_kept_for_the_most_recent_orgs_and_formats_only() {
        let formats = SharedReads::default();
        assert!(!Arc::ptr_eq(
            &formats.slot("org_0", Format::Native),
            &formats.slot("org_0", Format::Ocsf)
        ));
        let reads = SharedReads::default();
        let kept: Vec<Slot> = (0..SHARED_SLOTS)
            .map(|n| reads.slot(&format!("org_{n}"), Format::Native))
            .collect();
        // At the capacity every slot is still the same one.
        for (n, slot) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(
                slot,
                &reads.slot(&format!("org_{n}"), Format::Native)
            ));
        }
        // Past it, the least recently used (org_0, looked up first) goes.
        reads.slot("org_more", Format::Native);
        assert_eq!(reads.slots.lock().unwrap().len(), SHARED_SLOTS);
        assert!(Arc::ptr_eq(&kept[1], &reads.slot("org_1", Format::Native)));
        assert!(!Arc::ptr_eq(&kept[0], &reads.slot("org_0", Format::Native)));
    }
}
