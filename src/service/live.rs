//! The live tail: events as they are committed, in commit order, resumable.
//!
//! Writers ring a bell after each commit; subscribers read the events
//! themselves, by `seq`, from where they left off. Nothing travels through
//! the bell but "something new", so a slow subscriber, a missed wake-up or a
//! reconnect can never lose or reorder an event: the database is the queue.
//! Writers of other processes (several gateways on one PostgreSQL) ring it
//! too: each commit of events sends a PostgreSQL `NOTIFY`, and every process
//! `LISTEN`s ([`spawn_listener`]). A poll every [`POLL_EVERY`] stays as the
//! fallback for a notification lost with a dropped listening connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::watch;

use entity::activity_event::{self, Column};

use super::activity::filter_condition;
use crate::domain::feed::ActivityFilter;

/// How often a subscriber looks for events even when no bell rang.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Events read per query; a subscriber far behind catches up in steps of this.
const READ_AHEAD: u64 = 500;

/// Rings after every commit of events; cheap to clone.
#[derive(Clone)]
pub struct LiveFeed {
    bell: Arc<watch::Sender<u64>>,
    subscribers: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self {
            bell: Arc::new(watch::channel(0).0),
            subscribers: Arc::default(),
            closed: Arc::default(),
        }
    }
}

impl LiveFeed {
    /// Call after a commit that stored events.
    pub fn committed(&self) {
        self.bell
            .send_modify(|rings| *rings = rings.wrapping_add(1));
    }

    /// Ends every tail (at shutdown): subscribers get `complete` and can
    /// resume elsewhere from their last cursor.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.committed();
    }

    /// A receiver that changes after every commit of events (or close).
    pub fn bell(&self) -> watch::Receiver<u64> {
        self.bell.subscribe()
    }

    /// Live subscriptions open right now.
    pub fn subscribers(&self) -> u64 {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// A tail of `org`'s events matching `filter`, strictly after `after_seq`.
    pub fn tail(&self, org_id: String, filter: ActivityFilter, after_seq: i64) -> Tail {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        Tail {
            org_id,
            filter,
            after_seq,
            bell: self.bell.subscribe(),
            subscribers: self.subscribers.clone(),
            closed: self.closed.clone(),
        }
    }
}

/// One subscriber's position in the live tail.
pub struct Tail {
    org_id: String,
    filter: ActivityFilter,
    after_seq: i64,
    bell: watch::Receiver<u64>,
    subscribers: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tail {
    /// The next events in commit order, waiting until there is at least one;
    /// none once the feed is closed. A database error is retried after the
    /// poll interval: a live tail outlives a database restart.
    pub async fn next_events(&mut self, db: &impl ConnectionTrait) -> Vec<activity_event::Model> {
        loop {
            if self.closed.load(Ordering::Relaxed) {
                return Vec::new();
            }
            // Marked seen before reading, so a commit during the read rings again.
            self.bell.borrow_and_update();
            match after(db, &self.org_id, &self.filter, self.after_seq, READ_AHEAD).await {
                Ok(events) if !events.is_empty() => {
                    self.after_seq = events.last().map_or(self.after_seq, |e| e.seq);
                    return events;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "live tail read failed; retrying"),
            }
            let _ = tokio::time::timeout(POLL_EVERY, self.bell.changed()).await;
        }
    }
}

/// The position of the newest committed event: a tail started here sees
/// only what comes next.
pub async fn newest_seq(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let newest: Option<Option<i64>> = activity_event::Entity::find()
        .select_only()
        .column_as(Column::Seq.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}

/// The commit position of one of `org`'s events, where a live cursor
/// resumes; `None` for an id the org does not hold.
pub async fn seq_of(
    db: &impl ConnectionTrait,
    org_id: &str,
    event_id: &str,
) -> Result<Option<i64>, DbErr> {
    activity_event::Entity::find()
        .select_only()
        .column(Column::Seq)
        .filter(Column::OrgId.eq(org_id))
        .filter(Column::Id.eq(event_id))
        .into_tuple()
        .one(db)
        .await
}

async fn after(
    db: &impl ConnectionTrait,
    org_id: &str,
    filter: &ActivityFilter,
    seq: i64,
    limit: u64,
) -> Result<Vec<activity_event::Model>, DbErr> {
    activity_event::Entity::find()
        .filter(Column::Seq.gt(seq))
        .filter(Column::OrgId.eq(org_id))
        .filter(filter_condition(db.get_database_backend(), filter))
        .order_by_asc(Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// The channel commits of events are announced on.
pub const CHANNEL: &str = "activity_gateway_events";

/// Call first in every transaction that stores events, on PostgreSQL: it
/// announces the commit to every process (PostgreSQL delivers the `NOTIFY`
/// when, and only if, the transaction commits).
///
/// Commit order is `seq` order within each org, which is all a tail needs
/// (a tail reads one org): writers lock their orgs' logs (see
/// [`super::log::lock`]) before they write a row, so one org's writers draw
/// their sequence numbers and commit one at a time.
pub async fn start_event_write(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_notify('{CHANNEL}', '')"))
            .await?;
    }
    Ok(())
}

/// Rings `live` whenever another process (or this one) commits events, for
/// as long as the process runs. On PostgreSQL only; the listening
/// connection reconnects by itself after a database restart, and the poll
/// covers what was announced while it was away.
pub fn spawn_listener(db: &sea_orm::DatabaseConnection, live: LiveFeed) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    use sea_orm::sqlx::postgres::PgPoolOptions;
    // A connection of its own, outside the request pool: it is held for
    // the life of the process.
    let options = (*db.get_postgres_connection_pool().connect_options()).clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    tokio::spawn(async move {
        let mut closing = live.bell.subscribe();
        loop {
            tokio::select! {
                e = listen(&pool, &live) => {
                    tracing::warn!(error = %e, "listening for other processes' events failed; retrying");
                    tokio::time::sleep(POLL_EVERY).await;
                }
                _ = async {
                    while closing.changed().await.is_ok() {
                        if live.closed.load(Ordering::Relaxed) {
                            return;
                        }
                    }
                } => return,
            }
        }
    });
}

/// Rings `live` at every notification until the connection fails for good.
async fn listen(pool: &sea_orm::sqlx::PgPool, live: &LiveFeed) -> sea_orm::sqlx::Error {
    let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(e) => return e,
    };
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    loop {
        // `None`: the connection was lost and the next call reconnects;
        // ring anyway, as the tails read whatever they missed.
        if let Err(e) = listener.try_recv().await {
            return e;
        }
        live.committed();
    }
}
