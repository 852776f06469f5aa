//! Delivery: each replica's runner claims streams that have no live
//! deliverer and delivers each from its cursor, one batch at a time.
//!
//! - **One deliverer per stream.** A claim takes the stream's lease
//!   (`lease_until`, renewed every [`RENEW_EVERY`] while the deliverer lives,
//!   also during a request and a backoff) and moves `lease_token` on;
//!   PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so replicas take
//!   different streams. A killed replica's streams are claimed again once
//!   its leases run out ([`LEASE`]).
//! - **Nothing lost, nothing reordered.** A batch is the events from the
//!   cursor on, in log order, read only while the stream is still active
//!   and still this deliverer's; the cursor moves past it only after the
//!   destination acknowledged it, by a write conditioned on the token. A
//!   deliverer killed between the two makes its successor send the batch
//!   again (at least once: receivers deduplicate on the event ids).
//! - **Retries** back off exponentially with jitter, honour `Retry-After`,
//!   and go on until the destination takes the batch: network errors, 408,
//!   429 and 5xx. Any other refusal (a 3xx or 4xx) moves the stream to
//!   `failing` with the answer kept, without skipping the batch.
//! - **Visible.** Every failure is kept in `last_error`; a stream failing
//!   longer than the alert time is recorded as an event of its org.
//! - **Fair.** A replica delivers at most [`MAX_DELIVERERS_PER_ORG`] streams
//!   of one org at once, and while streams wait for a deliverer, one that
//!   held its stream (or kept failing) for [`HOLD_WHILE_OTHERS_WAIT`] gives
//!   it up; the stream that waited longest is claimed next.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::encode::{self, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use super::reads::SharedReads;
use super::{target, Destination, Format, StreamSettings, WebhookShape};
use crate::domain::error::{AppError, AppResult};
use crate::domain::feed::ActivityFilter;
use crate::domain::grant::{cap, Grant};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;
use crate::service::live::LiveFeed;
use crate::service::statement;

/// How long a silent deliverer keeps its stream.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often a deliverer renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a runner looks for streams without a deliverer.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// How often an idle deliverer looks for new events when no bell rang
/// (events written by another replica ring on PostgreSQL too).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often a deliverer that is behind looks for a checkpoint to deliver
/// (one that is caught up looks at every round).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// How long a caught-up deliverer lets new events gather after a bell:
/// fewer, fuller batches under a steady ingest, for little lag.
const LINGER: Duration = Duration::from_millis(50);
/// Streams of one org one replica delivers at once: an org whose
/// destinations hang cannot take every deliverer from the other orgs.
pub const MAX_DELIVERERS_PER_ORG: i64 = 4;
/// How long a deliverer keeps its stream while other streams wait for a
/// deliverer: then it gives the stream up, and the one that waited longest
/// is claimed.
const HOLD_WHILE_OTHERS_WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of a destination's answer read (and kept, in part, as the error).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Bytes of a refusal kept in `last_error`.
const KEPT_ANSWER_BYTES: usize = 1024;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// This replica's stream runner; cheap to clone.
#[derive(Clone)]
pub struct StreamRunner {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    live: LiveFeed,
    settings: StreamSettings,
    client: reqwest::Client,
    /// Who this runner is, in `log_streams.lease_owner`.
    name: String,
    stop: CancellationToken,
    wake: Notify,
    running: AtomicUsize,
    /// Set by the claim loop when a stream waits for a deliverer.
    others_wait: std::sync::atomic::AtomicBool,
    reads: SharedReads,
}

/// A stream this runner holds.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub(super) id: String,
    pub(super) org_id: String,
    pub(super) token: i64,
    destination: Destination,
    sealed: String,
}

/// What a stream's row says at the top of each round.
pub(super) struct Position {
    pub(super) next_index: i64,
    /// The tree size of the last checkpoint delivered.
    checkpoint_size: i64,
    pub(super) tree_size: i64,
    pub(super) format: Format,
    pub(super) filter: ActivityFilter,
}

/// How one delivery attempt ended.
pub(super) enum Sent {
    Acknowledged,
    /// Worth trying again: the network, a timeout, 408, 429 or 5xx.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// The destination will not take this batch as it is.
    Refused(String),
}

/// How a batch ended.
enum Outcome {
    Delivered,
    Refused(String),
    /// Paused, deleted, lease lost or shutting down: someone else goes on.
    Stopped,
}

/// The answer of `testLogStream`.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub delivered: bool,
    pub error: Option<String>,
}

impl StreamRunner {
    /// Starts claiming streams (needs a Tokio runtime).
    pub fn start(db: DatabaseConnection, live: LiveFeed, settings: StreamSettings) -> Self {
        let runner = Self {
            inner: Arc::new(Inner {
                client: client(&settings),
                db,
                live,
                settings,
                name: format!("streams-{}", uuid::Uuid::now_v7()),
                stop: CancellationToken::new(),
                wake: Notify::new(),
                running: AtomicUsize::new(0),
                others_wait: Default::default(),
                reads: SharedReads::default(),
            }),
        };
        tokio::spawn(runner.clone().claim_loop());
        runner
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.inner.settings
    }

    /// Looks for streams at once (after one was made or resumed).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Stops delivering and gives up this runner's leases, so another
    /// replica takes the streams at once instead of after [`LEASE`].
    pub async fn stop(&self) {
        self.inner.stop.cancel();
        let db = &self.inner.db;
        if let Err(e) = db
            .execute_raw(statement(
                db,
                "UPDATE log_streams SET lease_until = 0 WHERE lease_owner = ?",
                vec![self.inner.name.as_str().into()],
            ))
            .await
        {
            tracing::warn!(error = %e, "giving up the log stream leases failed; they run out by themselves");
        }
    }

    async fn claim_loop(self) {
        loop {
            while self.inner.running.load(Ordering::Relaxed) < self.inner.settings.max_deliverers {
                match claim(&self.inner.db, &self.inner.name).await {
                    Ok(Some(claim)) => {
                        self.inner.running.fetch_add(1, Ordering::Relaxed);
                        let inner = self.inner.clone();
                        tokio::spawn(async move {
                            let id = claim.id.clone();
                            if let Err(e) = deliver(&inner, claim).await {
                                tracing::warn!(stream = %id, error = %e, "log stream deliverer stopped by an error; the stream is claimed again");
                            }
                            inner.running.fetch_sub(1, Ordering::Relaxed);
                            inner.wake.notify_one();
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming log streams failed");
                        break;
                    }
                }
            }
            // Whatever kept them (every deliverer busy, or their org at its
            // share), streams left waiting make long-held ones give way.
            let waiting = any_waiting(&self.inner.db).await.unwrap_or(false);
            self.inner.others_wait.store(waiting, Ordering::Relaxed);
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(CLAIM_EVERY) => {}
            }
        }
    }

    /// [`test`], with this runner's client.
    pub async fn test(
        &self,
        principal: Grant<'_, cap::StreamManage>,
        stream_id: &str,
    ) -> AppResult<TestOutcome> {
        test_with(
            &self.inner.db,
            &self.inner.settings,
            &self.inner.client,
            principal,
            stream_id,
        )
        .await
    }
}

/// Sends a delivery with no events to the stream's destination, signed like
/// any other, and tells how it went.
pub async fn test(
    db: &DatabaseConnection,
    settings: &StreamSettings,
    principal: Grant<'_, cap::StreamManage>,
    stream_id: &str,
) -> AppResult<TestOutcome> {
    test_with(db, settings, &client(settings), principal, stream_id).await
}

async fn test_with(
    db: &DatabaseConnection,
    settings: &StreamSettings,
    client: &reqwest::Client,
    principal: Grant<'_, cap::StreamManage>,
    stream_id: &str,
) -> AppResult<TestOutcome> {
    let org_id = principal.org_id.as_str();
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT destination, secret_sealed FROM log_streams WHERE id = ? AND org_id = ?",
            vec![stream_id.into(), org_id.into()],
        ))
        .await?
        .ok_or_else(|| AppError::not_found("log_stream", stream_id))?;
    let destination: Destination =
        serde_json::from_str(&row.try_get_by_index::<String>(0)?).map_err(AppError::internal)?;
    let secret = settings
        .key
        .open(stream_id, &row.try_get_by_index::<String>(1)?)?;
    let parcel = encode::test_parcel(&destination, org_id, stream_id);
    let sent = send(client, settings, &destination, &secret, &parcel).await;
    Ok(match sent {
        Sent::Acknowledged => TestOutcome {
            delivered: true,
            error: None,
        },
        Sent::Retry { why, .. } | Sent::Refused(why) => TestOutcome {
            delivered: false,
            error: Some(why),
        },
    })
}

/// The HTTP client of every delivery: no redirects, no proxies (a proxy
/// would resolve names where the check cannot see), bounded in time, and
/// unless private targets are allowed, a resolver that answers only public
/// addresses. TLS trusts the public roots and `--stream-ca-file`'s.
fn client(settings: &StreamSettings) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("activity-gateway/", env!("CARGO_PKG_VERSION")));
    for root in settings.trust.added() {
        match reqwest::Certificate::from_der(root) {
            Ok(root) => builder = builder.add_root_certificate(root),
            Err(e) => tracing::error!(error = %e, "a --stream-ca-file certificate was not taken"),
        }
    }
    let builder = if settings.allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(target::PublicOnly))
    };
    builder.build().unwrap_or_else(|e| {
        tracing::error!(error = %e, "building the log stream HTTP client failed; using the default one");
        reqwest::Client::new()
    })
}

/// Whether an active stream has no live deliverer.
async fn any_waiting(db: &DatabaseConnection) -> AppResult<bool> {
    Ok(db
        .query_one_raw(statement(
            db,
            "SELECT 1 FROM log_streams WHERE status = 'active' AND lease_until < ? LIMIT 1",
            vec![now_micros().into()],
        ))
        .await?
        .is_some())
}

/// Takes the stream that has waited longest without a live deliverer, of
/// an org this runner delivers fewer than [`MAX_DELIVERERS_PER_ORG`] streams of.
async fn claim(db: &DatabaseConnection, owner: &str) -> AppResult<Option<Claim>> {
    let now = now_micros();
    let skip_locked = match db.get_database_backend() {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let row = db
        .query_one_raw(statement(
            db,
            &format!(
                "UPDATE log_streams SET lease_owner = ?, lease_token = lease_token + 1, lease_until = ? \
                 WHERE id = (SELECT id FROM log_streams WHERE status = 'active' AND lease_until < ? \
                   AND org_id NOT IN (SELECT h.org_id FROM log_streams h \
                     WHERE h.lease_owner = ? AND h.lease_until >= ? GROUP BY h.org_id HAVING COUNT(*) >= ?) \
                   ORDER BY lease_until, id LIMIT 1 {skip_locked}) \
                 RETURNING id, org_id, lease_token, destination, secret_sealed"
            ),
            vec![
                owner.into(),
                (now + LEASE.as_micros() as i64).into(),
                now.into(),
                owner.into(),
                now.into(),
                MAX_DELIVERERS_PER_ORG.into(),
            ],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let destination: String = row.try_get_by_index(3)?;
    Ok(Some(Claim {
        id: row.try_get_by_index(0)?,
        org_id: row.try_get_by_index(1)?,
        token: row.try_get_by_index(2)?,
        destination: serde_json::from_str(&destination).map_err(AppError::internal)?,
        sealed: row.try_get_by_index(4)?,
    }))
}

/// Delivers one claimed stream until it is paused, deleted, refused, taken
/// over or the runner stops.
async fn deliver(inner: &Inner, claim: Claim) -> AppResult<()> {
    let db = &inner.db;
    let secret = match inner.settings.key.open(&claim.id, &claim.sealed) {
        Ok(secret) => secret,
        Err(e) => {
            e.log();
            let why = "the destination secret does not open with this server's stream secrets key";
            return refuse(inner, &claim, why).await;
        }
    };
    let mut bell = inner.live.bell();
    let mut renewed = Instant::now();
    let mut checked = Instant::now();
    let held_since = Instant::now();
    loop {
        if inner.stop.is_cancelled() {
            return Ok(());
        }
        if held_since.elapsed() >= HOLD_WHILE_OTHERS_WAIT
            && inner.others_wait.load(Ordering::Relaxed)
        {
            return give_up(db, &claim).await;
        }
        let Some(at) = position(db, &claim).await? else {
            return Ok(());
        };
        if at.next_index >= at.tree_size || checked.elapsed() >= CHECKPOINT_EVERY {
            checked = Instant::now();
            match deliver_checkpoint(inner, &claim, &secret, &at).await? {
                Outcome::Delivered => {}
                Outcome::Stopped => return Ok(()),
                Outcome::Refused(why) => return refuse(inner, &claim, &why).await,
            }
        }
        if at.next_index >= at.tree_size {
            if renewed.elapsed() >= RENEW_EVERY {
                if !renew(db, &claim).await? {
                    return Ok(());
                }
                renewed = Instant::now();
            }
            tokio::select! {
                _ = inner.stop.cancelled() => return Ok(()),
                _ = bell.changed() => tokio::time::sleep(LINGER).await,
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let Some(batch) = inner.reads.next(db, &claim, &at).await? else {
            return Ok(());
        };
        let read = batch.written.len();
        let full = read as u64 >= MAX_BATCH_EVENTS;
        // A batch stops growing past its bytes (one event always goes).
        let mut bytes = 0;
        let sent = batch
            .written
            .iter()
            .position(|(_, event)| {
                bytes += event.len();
                bytes >= MAX_BATCH_BYTES
            })
            .map_or(read, |at| at + 1);
        let written = &batch.written[..sent];
        let cut = sent < read;
        let first = batch.log_indexes.first().copied();
        let last = sent.checked_sub(1).map(|i| batch.log_indexes[i]);
        // A full or cut batch ends at its last event; a short one read
        // every event below the tree size it was read at, matching or not.
        let next_index = match last {
            Some(last) if full || cut => last + 1,
            _ => batch.below,
        };
        // Events read back to back from the cursor to where it moves leave
        // no room for a purge: only a gap needs the purges looked up.
        let contiguous = first == Some(at.next_index)
            && last.is_some_and(|l| l + 1 == next_index && l - at.next_index + 1 == sent as i64);
        let purged = if contiguous {
            0
        } else {
            purged_between(db, &claim.org_id, at.next_index, next_index).await?
        };
        if purged > 0 {
            tracing::warn!(stream = %claim.id, org = %claim.org_id, events = purged, "retention purged events of the log before this stream delivered them");
        }
        if !written.is_empty() {
            let first = first.unwrap_or(at.next_index);
            let last = last.unwrap_or(first);
            let parcel = encode::batch_parcel(
                &claim.destination,
                &claim.org_id,
                &claim.id,
                first,
                last,
                written,
            );
            match send_until_taken(inner, &claim, &secret, &parcel).await? {
                Outcome::Delivered => {}
                Outcome::Stopped => return Ok(()),
                Outcome::Refused(why) => return refuse(inner, &claim, &why).await,
            }
        }
        if !acknowledge(db, &claim, next_index, written.len() as i64, purged).await? {
            return Ok(());
        }
        renewed = Instant::now();
    }
}

/// The stream's cursor and settings, and its org's tree size, while the
/// stream is active and this claim's; `None` otherwise.
async fn position(db: &DatabaseConnection, claim: &Claim) -> AppResult<Option<Position>> {
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT s.next_index, COALESCE((SELECT l.tree_size FROM org_logs l WHERE l.org_id = s.org_id), 0), \
               s.format, s.filter, s.checkpoint_size \
             FROM log_streams s WHERE s.id = ? AND s.lease_token = ? AND s.status = 'active'",
            vec![claim.id.as_str().into(), claim.token.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let filter: String = row.try_get_by_index(3)?;
    Ok(Some(Position {
        next_index: row.try_get_by_index(0)?,
        tree_size: row.try_get_by_index(1)?,
        format: super::Format::parse(&row.try_get_by_index::<String>(2)?),
        filter: serde_json::from_str(&filter).map_err(AppError::internal)?,
        checkpoint_size: row.try_get_by_index(4)?,
    }))
}

/// Delivers the newest signed checkpoint of the org's log that the stream
/// has not delivered yet and whose events it has all delivered (so a
/// receiver always holds what a checkpoint covers), if there is one.
async fn deliver_checkpoint(
    inner: &Inner,
    claim: &Claim,
    secret: &str,
    at: &Position,
) -> AppResult<Outcome> {
    let db = &inner.db;
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT tree_size, note FROM log_checkpoints WHERE org_id = ? AND tree_size > ? AND tree_size <= ? \
             ORDER BY tree_size DESC LIMIT 1",
            vec![
                claim.org_id.as_str().into(),
                at.checkpoint_size.into(),
                at.next_index.into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(Outcome::Delivered);
    };
    let size: i64 = row.try_get_by_index(0)?;
    let note: String = row.try_get_by_index(1)?;
    let parcel =
        encode::checkpoint_parcel(&claim.destination, &claim.org_id, &claim.id, size, &note);
    let outcome = send_until_taken(inner, claim, secret, &parcel).await?;
    if matches!(outcome, Outcome::Delivered) {
        db.execute_raw(statement(
            db,
            "UPDATE log_streams SET checkpoint_size = ? WHERE id = ? AND lease_token = ? AND checkpoint_size < ?",
            vec![size.into(), claim.id.as_str().into(), claim.token.into(), size.into()],
        ))
        .await?;
    }
    Ok(outcome)
}

/// Log indexes in `[from, to)` that retention purged.
async fn purged_between(db: &DatabaseConnection, org: &str, from: i64, to: i64) -> AppResult<i64> {
    if to <= from {
        return Ok(0);
    }
    let last = to - 1;
    let row = db
        .query_one_raw(statement(
            db,
            // PostgreSQL sums BIGINTs as NUMERIC: cast back.
            "SELECT CAST(COALESCE(SUM((CASE WHEN last_index < ? THEN last_index ELSE ? END) \
                                - (CASE WHEN first_index > ? THEN first_index ELSE ? END) + 1), 0) AS BIGINT) \
             FROM log_purges WHERE org_id = ? AND last_index >= ? AND first_index <= ?",
            vec![
                last.into(),
                last.into(),
                from.into(),
                from.into(),
                org.into(),
                from.into(),
                last.into(),
            ],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// Sends until the destination takes the batch, refuses it, or the stream
/// stops being this deliverer's.
async fn send_until_taken(
    inner: &Inner,
    claim: &Claim,
    secret: &str,
    parcel: &encode::Parcel,
) -> AppResult<Outcome> {
    let mut attempt: u32 = 0;
    let failing_since = Instant::now();
    loop {
        let sent = {
            let request = send(
                &inner.client,
                &inner.settings,
                &claim.destination,
                secret,
                parcel,
            );
            tokio::pin!(request);
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
            loop {
                tokio::select! {
                    sent = &mut request => break sent,
                    _ = inner.stop.cancelled() => return Ok(Outcome::Stopped),
                    _ = tick.tick() => if !renew(&inner.db, claim).await? {
                        return Ok(Outcome::Stopped);
                    },
                }
            }
        };
        let (why, after) = match sent {
            Sent::Acknowledged => return Ok(Outcome::Delivered),
            Sent::Refused(why) => return Ok(Outcome::Refused(why)),
            Sent::Retry { why, after } => (why, after),
        };
        attempt = attempt.saturating_add(1);
        tracing::info!(stream = %claim.id, attempt, error = %why, "log stream delivery failed; retrying");
        if !note_failure(inner, claim, &why).await? {
            return Ok(Outcome::Stopped);
        }
        // A failing destination does not keep a deliverer from streams
        // that wait: it takes its turn again later, from its cursor.
        if failing_since.elapsed() >= HOLD_WHILE_OTHERS_WAIT
            && inner.others_wait.load(Ordering::Relaxed)
        {
            give_up(&inner.db, claim).await?;
            return Ok(Outcome::Stopped);
        }
        let wait = after.unwrap_or_else(|| backoff(attempt));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            let nap = (until - Instant::now()).min(RENEW_EVERY);
            tokio::select! {
                _ = inner.stop.cancelled() => return Ok(Outcome::Stopped),
                _ = tokio::time::sleep(nap) => {}
            }
            if !renew(&inner.db, claim).await? {
                return Ok(Outcome::Stopped);
            }
        }
    }
}

/// Exponential from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`], with full jitter
/// over its upper half (so many streams failing at once spread out).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_FIRST
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    let half = ceiling / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// One delivery attempt.
async fn send(
    client: &reqwest::Client,
    settings: &StreamSettings,
    destination: &Destination,
    secret: &str,
    parcel: &encode::Parcel,
) -> Sent {
    let (url, shape) = match destination {
        Destination::Webhook { url, shape } => (url, shape),
        Destination::Syslog { host, port, tls } => {
            let tls = tls.then(|| settings.trust.tls());
            return send_syslog(host, *port, tls, settings.allow_private, &parcel.body).await;
        }
        Destination::S3 { .. } => {
            return super::s3::put(client, settings.allow_private, destination, secret, parcel)
                .await
        }
    };
    let (message_id, body) = (parcel.id.as_str(), parcel.body.clone());
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Sent::Refused("the destination URL does not parse".into());
    };
    if let Some(why) = target::refusal(
        parsed.host_str().unwrap_or_default(),
        settings.allow_private,
    ) {
        return Sent::Refused(why.into());
    }
    let request = client.post(parsed);
    let request = match shape {
        WebhookShape::Standard => {
            let timestamp = now_micros() / 1_000_000;
            let signature = match standardwebhooks::Webhook::new(secret)
                .and_then(|hook| hook.sign(message_id, timestamp, &body))
            {
                Ok(signature) => signature,
                Err(e) => return Sent::Refused(format!("signing failed: {e}")),
            };
            request
                .header("webhook-id", message_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .header("content-type", "application/json")
        }
        WebhookShape::SplunkHec => request
            .header("authorization", format!("Splunk {secret}"))
            .header("content-type", "application/json"),
        WebhookShape::Datadog => request
            .header("dd-api-key", secret)
            .header("content-type", "application/json"),
    };
    let answer = match request.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Sent::Retry {
                why: describe_error(&e),
                after: None,
            }
        }
    };
    let status = answer.status();
    let retry_after = retry_after(answer.headers());
    let text = read_capped(answer).await;
    if status.is_success() {
        return Sent::Acknowledged;
    }
    judged(status, retry_after, &text)
}

/// What a destination's answer other than a success means: worth trying
/// again (5xx, 408, 429) or a refusal (any other 3xx or 4xx).
pub(super) fn judged(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    text: &str,
) -> Sent {
    let why = format!(
        "the destination answered {}{}{}",
        status.as_u16(),
        if text.is_empty() { "" } else { ": " },
        text
    );
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Sent::Retry {
            why,
            after: retry_after,
        }
    } else if status.is_redirection() {
        Sent::Refused(format!("{why} (redirects are not followed)"))
    } else {
        Sent::Refused(why)
    }
}

/// One delivery to a syslog collector over TCP: a connection of its own,
/// the frames written, the writing half closed, and the collector's close
/// awaited. Syslog has no acknowledgement; a collector that closes after
/// reading to the end has read every frame, which is as close as TCP lets
/// a sender know. With `tls`, the frames go only over a connection whose
/// certificate was verified for `host`.
async fn send_syslog(
    host: &str,
    port: u16,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    allow_private: bool,
    body: &[u8],
) -> Sent {
    let retry = |why: String| Sent::Retry { why, after: None };
    if let Some(why) = target::refusal(host, allow_private) {
        return Sent::Refused(why.into());
    }
    let found =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found.collect::<Vec<_>>(),
            Ok(Err(e)) => return retry(format!("could not resolve {host}: {e}")),
            Err(_) => return retry(format!("resolving {host} timed out")),
        };
    let allowed: Vec<_> = found
        .iter()
        .copied()
        .filter(|a| allow_private || target::is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return retry(format!("{host} resolves to no public address"));
    }
    let mut stream = None;
    let mut last_error = String::new();
    for addr in allowed {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_error = format!("could not connect: {e}"),
            Err(_) => last_error = "connecting timed out".into(),
        }
    }
    let Some(stream) = stream else {
        return retry(last_error);
    };
    let Some(tls) = tls else {
        return syslog_exchange(stream, body).await;
    };
    // The host was checked to be a DNS name or an IP address when the
    // stream was made.
    let Ok(name) = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned()) else {
        return Sent::Refused(format!("{host} is not a name TLS can verify"));
    };
    let handshake = tokio_rustls::TlsConnector::from(tls).connect(name, stream);
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => syslog_exchange(stream, body).await,
        Ok(Err(e)) => retry(format!("the TLS handshake with {host} failed: {e}")),
        Err(_) => retry(format!("the TLS handshake with {host} timed out")),
    }
}

/// Writes the frames, closes the sending half (in TLS, with a
/// `close_notify`) and reads what the collector says, dropped, to its close.
async fn syslog_exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    body: &[u8],
) -> Sent {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        stream.write_all(body).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0;
        loop {
            let n = match stream.read(&mut sink).await {
                Ok(n) => n,
                // A TLS collector may close without its own `close_notify`:
                // everything was written and closed on our side, so that is
                // still its close.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(e),
            };
            if n == 0 || read > MAX_ANSWER_BYTES {
                return Ok::<_, std::io::Error>(());
            }
            read += n;
        }
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(())) => Sent::Acknowledged,
        Ok(Err(e)) => Sent::Retry {
            why: format!("the syslog connection failed: {e}"),
            after: None,
        },
        Err(_) => Sent::Retry {
            why: "the syslog collector did not close the connection in time".into(),
            after: None,
        },
    }
}

/// The `Retry-After` of an answer, at most [`RETRY_AFTER_MAX`].
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
        .map(|d| d.min(RETRY_AFTER_MAX))
}

/// The first [`KEPT_ANSWER_BYTES`] of an answer's body as text, reading at
/// most [`MAX_ANSWER_BYTES`] of it.
async fn read_capped(mut answer: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match answer.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(KEPT_ANSWER_BYTES);
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// An HTTP client error as an operator reads it: its kind and its causes,
/// never the URL's query (which may carry a token).
fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text.trim()).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// Gives the stream up for another to take its turn: its lease ends now,
/// after those of the streams that waited longer.
async fn give_up(db: &DatabaseConnection, claim: &Claim) -> AppResult<()> {
    db.execute_raw(statement(
        db,
        "UPDATE log_streams SET lease_until = ? WHERE id = ? AND lease_token = ?",
        vec![
            now_micros().into(),
            claim.id.as_str().into(),
            claim.token.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Renews the lease; false when the stream is no longer active and this
/// claim's.
async fn renew(db: &DatabaseConnection, claim: &Claim) -> AppResult<bool> {
    let done = db
        .execute_raw(statement(
            db,
            "UPDATE log_streams SET lease_until = ? WHERE id = ? AND lease_token = ? AND status = 'active'",
            vec![
                (now_micros() + LEASE.as_micros() as i64).into(),
                claim.id.as_str().into(),
                claim.token.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the cursor past an acknowledged batch (or past events the filter
/// left out); false when the claim is no longer this deliverer's.
async fn acknowledge(
    db: &DatabaseConnection,
    claim: &Claim,
    next_index: i64,
    delivered: i64,
    purged: i64,
) -> AppResult<bool> {
    let now = now_micros();
    let done = db
        .execute_raw(statement(
            db,
            "UPDATE log_streams SET next_index = ?, delivered_total = delivered_total + ?, \
               purged_total = purged_total + ?, \
               last_delivered_at = CASE WHEN ? > 0 THEN ? ELSE last_delivered_at END, \
               last_error = CASE WHEN ? > 0 THEN NULL ELSE last_error END, \
               failing_since = NULL, alerted = FALSE, lease_until = ? \
             WHERE id = ? AND lease_token = ? AND status = 'active' AND next_index < ?",
            vec![
                next_index.into(),
                delivered.into(),
                purged.into(),
                delivered.into(),
                now.into(),
                delivered.into(),
                (now + LEASE.as_micros() as i64).into(),
                claim.id.as_str().into(),
                claim.token.into(),
                next_index.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps the failure for the operator, and records it as an event of the
/// org once it has lasted past the alert time. False when the stream is no
/// longer active and this claim's.
async fn note_failure(inner: &Inner, claim: &Claim, why: &str) -> AppResult<bool> {
    let db = &inner.db;
    let now = now_micros();
    let row = db
        .query_one_raw(statement(
            db,
            "UPDATE log_streams SET last_error = ?, failing_since = COALESCE(failing_since, ?), lease_until = ? \
             WHERE id = ? AND lease_token = ? AND status = 'active' \
             RETURNING failing_since, alerted, name",
            vec![
                why.into(),
                now.into(),
                (now + LEASE.as_micros() as i64).into(),
                claim.id.as_str().into(),
                claim.token.into(),
            ],
        ))
        .await?;
    let Some(row) = row else { return Ok(false) };
    let since: i64 = row.try_get_by_index(0)?;
    let alerted: bool = row.try_get_by_index(1)?;
    let name: String = row.try_get_by_index(2)?;
    let alert_after = inner.settings.alert_after.as_micros() as i64;
    if !alerted && now - since >= alert_after {
        let marked = db
            .execute_raw(statement(
                db,
                "UPDATE log_streams SET alerted = TRUE WHERE id = ? AND lease_token = ? AND NOT alerted",
                vec![claim.id.as_str().into(), claim.token.into()],
            ))
            .await?;
        if marked.rows_affected() == 1 {
            tracing::warn!(stream = %claim.id, org = %claim.org_id, error = %why, "log stream failing past the alert time");
            record(inner, claim, &name, "log_stream.failing", why, since).await?;
        }
    }
    Ok(true)
}

/// Moves the stream to `failing` with the refusal kept, and records it.
async fn refuse(inner: &Inner, claim: &Claim, why: &str) -> AppResult<()> {
    let db = &inner.db;
    let now = now_micros();
    let row = db
        .query_one_raw(statement(
            db,
            "UPDATE log_streams SET status = 'failing', last_error = ?, \
               failing_since = COALESCE(failing_since, ?), alerted = TRUE, lease_until = 0, updated_at = ? \
             WHERE id = ? AND lease_token = ? AND status = 'active' RETURNING name, failing_since",
            vec![
                why.into(),
                now.into(),
                now.into(),
                claim.id.as_str().into(),
                claim.token.into(),
            ],
        ))
        .await?;
    if let Some(row) = row {
        let name: String = row.try_get_by_index(0)?;
        let since: i64 = row.try_get_by_index(1)?;
        tracing::warn!(stream = %claim.id, org = %claim.org_id, error = %why, "log stream refused by its destination; delivery waits for resumeLogStream");
        record(inner, claim, &name, "log_stream.refused", why, since).await?;
    }
    Ok(())
}

/// A stream's trouble as an event of its org, so it shows in the org's
/// own feed (and in its other streams).
async fn record(
    inner: &Inner,
    claim: &Claim,
    name: &str,
    action: &str,
    why: &str,
    since: i64,
) -> AppResult<()> {
    let row = crate::service::events::EventRow {
        id: new_id(IdKind::Activity),
        org_id: claim.org_id.clone(),
        ts: now_micros(),
        principal_type: Some("system".into()),
        principal_id: Some("log_streams".into()),
        resource_type: Some("log_stream".into()),
        resource_id: Some(claim.id.clone()),
        action: action.into(),
        status_code: 502,
        success: false,
        error_code: Some("STREAM_DELIVERY_FAILED".into()),
        token_usage: "{}".into(),
        metadata: serde_json::json!({
            "stream_name": name,
            "error": why,
            "failing_since": crate::domain::time::format_micros(since),
        })
        .to_string(),
        ..Default::default()
    };
    let txn = sea_orm::TransactionTrait::begin(&inner.db).await?;
    crate::service::events::insert_batch(&txn, [row], false).await?;
    txn.commit().await?;
    inner.live.committed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_with_jitter() {
        for attempt in 1..40 {
            let wait = backoff(attempt);
            let ceiling = BACKOFF_FIRST
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(BACKOFF_MAX);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        let secs = parse_retry_after(&later).unwrap().as_secs();
        assert!((58..=60).contains(&secs), "{secs}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
