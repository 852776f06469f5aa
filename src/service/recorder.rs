//! Records every authenticated request as an activity event of the caller's
//! org, off the request's path: requests put events into a bounded buffer and a
//! background writer stores them in batches. A full buffer drops (and counts)
//! events rather than ever slowing a request down.
//!
//! A request only pushes onto the buffer under a short lock. It wakes the
//! writer only for the first event of a batch and when a batch is full, never
//! per event: a wake per request costs a thread wake-up on an idle core, more
//! than recording the event itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::events::{insert_batch, EventRow};
use super::live::LiveFeed;

/// How long an event may wait in the buffer before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
const MAX_BATCH: usize = 1_000;

#[derive(Clone)]
pub struct Recorder {
    buffer: Option<Arc<Buffer>>,
    dropped: Arc<AtomicU64>,
    /// Events the database would not take, after retries and one by one.
    lost: Arc<AtomicU64>,
    writer: Arc<tokio::sync::Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>>,
}

/// Events waiting for the writer, at most `capacity` of them.
struct Buffer {
    events: Mutex<Waiting>,
    capacity: usize,
    /// Rung for the first event of a batch.
    arrived: Notify,
    /// Rung when a whole batch is waiting.
    full: Notify,
}

#[derive(Default)]
struct Waiting {
    events: Vec<EventRow>,
    /// The last batch's vector, emptied, to take the next one: the buffer
    /// is not grown again (moving up to half a megabyte under the lock)
    /// for every batch.
    spare: Vec<EventRow>,
    /// Set once the writer has stopped: nothing is taken any more.
    closed: bool,
}

impl Buffer {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A push or a take cannot panic half-way; a poisoned lock still holds
        // a consistent buffer.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the event if there is room; rings the writer when it starts or fills a batch.
    fn push(&self, event: EventRow) -> bool {
        let waiting = {
            let mut waiting = self.waiting();
            if waiting.closed || waiting.events.len() >= self.capacity {
                return false;
            }
            waiting.events.push(event);
            waiting.events.len()
        };
        if waiting == 1 {
            self.arrived.notify_one();
        }
        if waiting == MAX_BATCH {
            self.full.notify_one();
        }
        true
    }

    /// The oldest events, at most a batch of them.
    fn take_batch(&self) -> Vec<EventRow> {
        let mut waiting = self.waiting();
        if waiting.events.len() <= MAX_BATCH {
            let spare = std::mem::take(&mut waiting.spare);
            return std::mem::replace(&mut waiting.events, spare);
        }
        let rest = waiting.events.split_off(MAX_BATCH);
        std::mem::replace(&mut waiting.events, rest)
    }

    /// A written batch's vector, kept to take a later batch.
    fn give_back(&self, mut batch: Vec<EventRow>) {
        // The events are dropped outside the lock.
        batch.clear();
        // A backlog's vector (up to the buffer's capacity) is not kept whole.
        if batch.capacity() > 2 * MAX_BATCH {
            batch.shrink_to(MAX_BATCH);
        }
        let mut waiting = self.waiting();
        if waiting.spare.capacity() < batch.capacity() {
            waiting.spare = batch;
        }
    }

    fn len(&self) -> usize {
        self.waiting().events.len()
    }

    fn close(&self) {
        self.waiting().closed = true;
    }
}

impl Recorder {
    /// A recorder with room for `capacity` events in flight.
    pub fn start(db: DatabaseConnection, live: LiveFeed, capacity: usize) -> Self {
        let buffer = Arc::new(Buffer {
            events: Mutex::default(),
            capacity: capacity.max(1),
            arrived: Notify::new(),
            full: Notify::new(),
        });
        let (stop, stopped) = oneshot::channel();
        let lost = Arc::<AtomicU64>::default();
        let writer = tokio::spawn(write_batches(
            Writer {
                db,
                live,
                lost: lost.clone(),
            },
            buffer.clone(),
            stopped,
        ));
        Self {
            buffer: Some(buffer),
            dropped: Arc::default(),
            lost,
            writer: Arc::new(tokio::sync::Mutex::new(Some((stop, writer)))),
        }
    }

    /// A recorder that records nothing (recording switched off).
    pub fn disabled() -> Self {
        Self {
            buffer: None,
            dropped: Arc::default(),
            lost: Arc::default(),
            writer: Arc::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.buffer.is_some()
    }

    /// Hands an event to the writer without waiting; when the buffer is full
    /// the event is dropped and counted.
    pub fn record(&self, event: EventRow) {
        let Some(buffer) = &self.buffer else { return };
        // Cleaned here, so that no request's text can make a batch fail.
        if !buffer.push(event.storable()) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "activity recorder buffer full: events dropped");
            }
        }
    }

    /// Events waiting in the recorder's buffer.
    pub fn queued(&self) -> usize {
        self.buffer.as_ref().map_or(0, |b| b.len())
    }

    /// Events dropped because the buffer was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events the database refused or could not take, since start.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Writes everything buffered so far and stops the writer; events recorded
    /// afterwards (by clones still alive) are counted as dropped.
    pub async fn close(self) {
        if let Some((stop, writer)) = self.writer.lock().await.take() {
            let _ = stop.send(());
            let _ = writer.await;
        }
    }
}

struct Writer {
    db: DatabaseConnection,
    live: LiveFeed,
    lost: Arc<AtomicU64>,
}

async fn write_batches(writer: Writer, buffer: Arc<Buffer>, mut stop: oneshot::Receiver<()>) {
    loop {
        // Asleep until the first event of a batch (or the stop).
        if buffer.len() == 0 {
            tokio::select! {
                _ = buffer.arrived.notified() => continue,
                _ = &mut stop => break,
            }
        }
        // Then what arrives within FLUSH_EVERY, or until a batch is full.
        if buffer.len() < MAX_BATCH {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = buffer.full.notified() => {}
                _ = &mut stop => break,
            }
        }
        let batch = buffer.take_batch();
        flush(&writer, &batch).await;
        buffer.give_back(batch);
    }
    buffer.close();
    loop {
        let batch = buffer.take_batch();
        if batch.is_empty() {
            break;
        }
        flush(&writer, &batch).await;
    }
}

async fn flush(writer: &Writer, rows: &[EventRow]) {
    if rows.is_empty() {
        return;
    }
    let count = rows.len();
    // Retried a few times: a database restart should not lose recorded calls.
    for attempt in 0..3 {
        // Fresh ids cannot be stored yet, so the first attempt is a plain
        // insert (PostgreSQL's ON CONFLICT costs about half as much again per
        // row). A retry may follow a commit that landed unseen, so it skips
        // the ids already stored.
        let retry = attempt > 0;
        match store(&writer.db, rows, retry).await {
            Ok(()) => return writer.live.committed(),
            // The database answers, so one row is at fault: never let it cost
            // the others their record.
            Err(e) if super::ping(&writer.db).await => {
                tracing::warn!(error = %e, count, "a recorded batch was refused; storing its events one by one");
                return store_one_by_one(writer, rows).await;
            }
            Err(e) if attempt < 2 => {
                tracing::warn!(error = %e, count, "recording activity failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
            Err(e) => {
                writer.lost.fetch_add(count as u64, Ordering::Relaxed);
                tracing::error!(error = %e, count, "recorded activity lost: the database is unavailable");
            }
        }
    }
}

async fn store(
    db: &DatabaseConnection,
    rows: &[EventRow],
    skip_existing: bool,
) -> Result<(), sea_orm::DbErr> {
    let txn = db.begin().await?;
    insert_batch(&txn, rows, skip_existing).await?;
    txn.commit().await
}

async fn store_one_by_one(writer: &Writer, rows: &[EventRow]) {
    let mut stored = false;
    for row in rows {
        let (org, path) = (&row.org_id, &row.path);
        match store(&writer.db, std::slice::from_ref(row), true).await {
            Ok(()) => stored = true,
            Err(e) => {
                writer.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, org, path, "a recorded event could not be stored");
            }
        }
    }
    if stored {
        writer.live.committed();
    }
}
