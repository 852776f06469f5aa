//! Records every authenticated request as an activity event of the caller's
//! org, off the request's path: requests hand events to a bounded buffer and a
//! background writer stores them in batches. A full buffer drops (and counts)
//! events rather than ever slowing a request down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::events::{insert_batch, EventRow};
use super::live::LiveFeed;

/// How long an event may wait in the buffer before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
const MAX_BATCH: usize = 1_000;

#[derive(Clone)]
pub struct Recorder {
    sender: Option<mpsc::Sender<EventRow>>,
    dropped: Arc<AtomicU64>,
    /// Events the database would not take, after retries and one by one.
    lost: Arc<AtomicU64>,
    writer: Arc<tokio::sync::Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>>,
}

impl Recorder {
    /// A recorder with room for `capacity` events in flight.
    pub fn start(db: DatabaseConnection, live: LiveFeed, capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let (stop, stopped) = oneshot::channel();
        let lost = Arc::<AtomicU64>::default();
        let writer = tokio::spawn(write_batches(
            Writer {
                db,
                live,
                lost: lost.clone(),
            },
            receiver,
            stopped,
        ));
        Self {
            sender: Some(sender),
            dropped: Arc::default(),
            lost,
            writer: Arc::new(tokio::sync::Mutex::new(Some((stop, writer)))),
        }
    }

    /// A recorder that records nothing (recording switched off).
    pub fn disabled() -> Self {
        Self {
            sender: None,
            dropped: Arc::default(),
            lost: Arc::default(),
            writer: Arc::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Hands an event to the writer without waiting; when the buffer is full
    /// the event is dropped and counted.
    pub fn record(&self, event: EventRow) {
        let Some(sender) = &self.sender else { return };
        // Cleaned here, so that no request's text can make a batch fail.
        if sender.try_send(event.storable()).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "activity recorder buffer full: events dropped");
            }
        }
    }

    /// Events waiting in the recorder's buffer.
    pub fn queued(&self) -> usize {
        self.sender
            .as_ref()
            .map_or(0, |s| s.max_capacity() - s.capacity())
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

async fn write_batches(
    writer: Writer,
    mut receiver: mpsc::Receiver<EventRow>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for the first event (or the stop), then gather what arrives within FLUSH_EVERY.
        tokio::select! {
            event = receiver.recv() => match event {
                Some(event) => batch.push(event),
                None => break,
            },
            _ = &mut stop => {
                receiver.close();
                while let Some(event) = receiver.recv().await {
                    batch.push(event);
                    if batch.len() >= MAX_BATCH {
                        flush(&writer, &mut batch).await;
                    }
                }
                break;
            }
        }
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(event)) => batch.push(event),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&writer, &mut batch).await;
    }
    flush(&writer, &mut batch).await;
}

async fn flush(writer: &Writer, batch: &mut Vec<EventRow>) {
    if batch.is_empty() {
        return;
    }
    let rows = std::mem::take(batch);
    let count = rows.len();
    // Retried a few times: a database restart should not lose recorded calls.
    for attempt in 0..3 {
        match store(&writer.db, rows.clone()).await {
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

async fn store(db: &DatabaseConnection, rows: Vec<EventRow>) -> Result<(), sea_orm::DbErr> {
    let txn = db.begin().await?;
    insert_batch(&txn, rows, true).await?;
    txn.commit().await
}

async fn store_one_by_one(writer: &Writer, rows: Vec<EventRow>) {
    let mut stored = false;
    for row in rows {
        let (org, path) = (row.org_id.clone(), row.path.clone());
        match store(&writer.db, vec![row]).await {
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
