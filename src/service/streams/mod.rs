//! Log streams: an org's events delivered to a destination of its own (a
//! webhook, an S3 bucket or a syslog collector), at least once, in the org's log order, from a cursor that
//! moves only after the destination acknowledged.
//!
//! A stream's row is its whole state (see the migration that made
//! `log_streams`): what it delivers (format, filter), where (destination,
//! and its secret sealed with a key kept outside the database: [`seal`]),
//! how far it got (`next_index`, the first log index not yet acknowledged)
//! and who delivers it (a lease: [`deliver`]). Admins manage streams
//! (`stream:manage`); the delivery runs off the request path.

pub mod deliver;
pub mod encode;
pub mod ocsf;
mod reads;
pub mod s3;
pub mod seal;
pub mod target;
pub mod trust;

use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult};
use serde::{Deserialize, Serialize};

use super::statement;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::feed::ActivityFilter;
use crate::domain::grant::{cap, Grant};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;

/// Streams one org may have: each one costs a deliverer while it is behind.
pub const MAX_STREAMS_PER_ORG: u64 = 10;
/// The longest stream name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest destination URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest destination secret, in bytes.
pub const MAX_SECRET_BYTES: usize = 1024;

/// How events are written for the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The REST activity shape, with the org id and the log index.
    Native,
    /// OCSF API Activity (class 6003): see [`ocsf`].
    Ocsf,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Ocsf => "ocsf",
        }
    }

    /// The stored name (anything else reads as `native`).
    fn parse(text: &str) -> Self {
        match text {
            "ocsf" => Self::Ocsf,
            _ => Self::Native,
        }
    }
}

/// The request shape of a webhook destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookShape {
    /// Standard Webhooks: a signed JSON batch.
    Standard,
    /// Splunk's HTTP Event Collector: `Authorization: Splunk <token>`,
    /// one JSON event object per event, concatenated.
    SplunkHec,
    /// Datadog's logs intake (v2): `DD-API-KEY`, a JSON array of logs.
    Datadog,
}

impl WebhookShape {
    /// The documented path of the shape, used when a URL names none.
    pub fn default_path(self) -> Option<&'static str> {
        match self {
            Self::Standard => None,
            Self::SplunkHec => Some("/services/collector/event"),
            Self::Datadog => Some("/api/v2/logs"),
        }
    }
}

/// Where a stream delivers, without its secret, as `destination` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    Webhook {
        url: String,
        shape: WebhookShape,
    },
    /// RFC 5424 messages over TCP, framed by octet counting (RFC 6587),
    /// in TLS (RFC 5425) when `tls` is set.
    Syslog {
        host: String,
        port: u16,
        /// Streams stored before TLS existed are plain TCP.
        #[serde(default)]
        tls: bool,
    },
    /// One gzip NDJSON object per batch in an S3-compatible bucket (the
    /// secret access key is the stream's secret).
    S3 {
        /// The S3 API's base URL; `None` for AWS's own, by region.
        endpoint: Option<String>,
        bucket: String,
        /// Prepended to every object name, without slashes at either end;
        /// empty for none.
        prefix: String,
        region: String,
        access_key_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Active,
    Paused,
    /// The destination refused a batch as malformed; delivery waits for
    /// `resume` (the refusal is kept in `last_error`).
    Failing,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Failing => "failing",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "paused" => Self::Paused,
            "failing" => Self::Failing,
            _ => Self::Active,
        }
    }
}

/// Where a new stream starts in the org's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// After the events stored so far.
    #[default]
    Now,
    /// At the first event the org's log holds (a backfill).
    Beginning,
}

/// A webhook destination as asked for.
#[derive(Debug, Clone)]
pub struct WebhookInput {
    pub url: String,
    pub secret: String,
    pub shape: WebhookShape,
}

/// A syslog destination as asked for.
#[derive(Debug, Clone)]
pub struct SyslogInput {
    pub host: String,
    pub port: i64,
    /// TLS, verified against the public roots and `--stream-ca-file`.
    pub tls: bool,
}

/// An S3-compatible destination as asked for.
#[derive(Debug, Clone)]
pub struct S3Input {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A stream as asked for, before it is checked. Exactly one destination.
#[derive(Debug, Clone)]
pub struct StreamInput {
    pub name: String,
    pub format: Format,
    pub filter: ActivityFilter,
    pub start: Start,
    pub webhook: Option<WebhookInput>,
    pub s3: Option<S3Input>,
    pub syslog: Option<SyslogInput>,
}

/// What an update may change: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct StreamChange {
    pub name: Option<String>,
    pub format: Option<Format>,
    pub filter: Option<ActivityFilter>,
}

/// A stream and its health, as admins see it (never its secret).
#[derive(Debug, Clone)]
pub struct Stream {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub format: Format,
    pub filter: ActivityFilter,
    pub destination: Destination,
    pub status: StreamStatus,
    /// The first log index not yet acknowledged.
    pub next_index: i64,
    pub delivered_total: i64,
    /// Events of the log that retention purged before the stream reached them.
    pub purged_total: i64,
    pub last_delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    /// Events of the org's log past the cursor.
    pub lag_events: i64,
    /// Age of the oldest event past the cursor (by its timestamp), in
    /// seconds; 0 when nothing waits.
    pub lag_seconds: f64,
}

/// What stream management needs beyond the database.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub key: seal::SealKey,
    /// `--allow-private-stream-targets`: streams may reach loopback and
    /// private addresses (tests, and destinations on the operator's own network).
    pub allow_private: bool,
    /// The roots TLS destinations are verified against (`--stream-ca-file`).
    pub trust: trust::Trust,
    /// How long a stream may keep failing before that is recorded as an
    /// event of its org.
    pub alert_after: std::time::Duration,
    /// Streams one replica delivers at once; memory is bounded by this
    /// times one batch.
    pub max_deliverers: usize,
}

const COLUMNS: &str = "s.id, s.org_id, s.name, s.format, s.filter, s.destination, s.status, \
    s.next_index, s.delivered_total, s.purged_total, s.last_delivered_at, s.last_error, s.created_at";

/// The org's streams with their health, oldest first.
pub async fn list(db: &impl ConnectionTrait, org_id: &str) -> AppResult<Vec<Stream>> {
    read(db, "s.org_id = ?", vec![org_id.into()]).await
}

/// Every org's streams with their health: for `/metrics`, which only the
/// operator reads.
pub async fn every_stream(db: &impl ConnectionTrait) -> AppResult<Vec<Stream>> {
    read(db, "1 = 1", vec![]).await
}

/// One stream of the org; 404 for a stream of another org.
pub async fn get(db: &impl ConnectionTrait, org_id: &str, id: &str) -> AppResult<Stream> {
    read(
        db,
        "s.org_id = ? AND s.id = ?",
        vec![org_id.into(), id.into()],
    )
    .await?
    .pop()
    .ok_or_else(|| AppError::not_found("log_stream", id))
}

async fn read(
    db: &impl ConnectionTrait,
    condition: &str,
    values: Vec<sea_orm::Value>,
) -> AppResult<Vec<Stream>> {
    let rows = db
        .query_all_raw(statement(
            db,
            &format!(
                "SELECT {COLUMNS}, \
                   COALESCE((SELECT l.tree_size FROM org_logs l WHERE l.org_id = s.org_id), 0), \
                   (SELECT e.ts FROM activity_events e WHERE e.org_id = s.org_id \
                      AND e.log_index >= s.next_index ORDER BY e.log_index LIMIT 1) \
                 FROM log_streams s WHERE {condition} ORDER BY s.created_at, s.id"
            ),
            values,
        ))
        .await?;
    let now = now_micros();
    rows.iter().map(|row| stream_of(row, now)).collect()
}

fn stream_of(row: &QueryResult, now: i64) -> AppResult<Stream> {
    let filter: String = row.try_get_by_index(4)?;
    let destination: String = row.try_get_by_index(5)?;
    let next_index: i64 = row.try_get_by_index(7)?;
    let tree_size: i64 = row.try_get_by_index(13)?;
    let oldest: Option<i64> = row.try_get_by_index(14)?;
    Ok(Stream {
        id: row.try_get_by_index(0)?,
        org_id: row.try_get_by_index(1)?,
        name: row.try_get_by_index(2)?,
        format: Format::parse(&row.try_get_by_index::<String>(3)?),
        filter: serde_json::from_str(&filter).map_err(AppError::internal)?,
        destination: serde_json::from_str(&destination).map_err(AppError::internal)?,
        status: StreamStatus::parse(&row.try_get_by_index::<String>(6)?),
        next_index,
        delivered_total: row.try_get_by_index(8)?,
        purged_total: row.try_get_by_index(9)?,
        last_delivered_at: row.try_get_by_index(10)?,
        last_error: row.try_get_by_index(11)?,
        created_at: row.try_get_by_index(12)?,
        lag_events: (tree_size - next_index).max(0),
        lag_seconds: oldest.map_or(0.0, |ts| (now - ts).max(0) as f64 / 1e6),
    })
}

/// Makes a stream in the caller's org.
pub async fn create(
    db: &DatabaseConnection,
    settings: &StreamSettings,
    principal: Grant<'_, cap::StreamManage>,
    input: StreamInput,
) -> AppResult<Stream> {
    let org_id = principal.org_id.as_str();
    let mut problems = Vec::new();
    let name = checked_name(&input.name, &mut problems);
    problems.extend(input.filter.validate(&["input", "filter"]));
    let (destination, secret) = match (input.webhook, input.s3, input.syslog) {
        (Some(webhook), None, None) => {
            let url = checked_url(
                &webhook.url,
                webhook.shape,
                settings.allow_private,
                &mut problems,
            );
            let secret = checked_secret(webhook.shape, &webhook.secret, &mut problems);
            (
                Destination::Webhook {
                    url,
                    shape: webhook.shape,
                },
                secret,
            )
        }
        (None, Some(s3), None) => checked_s3(&s3, settings.allow_private, &mut problems),
        (None, None, Some(syslog)) => {
            let destination = checked_syslog(&syslog, settings.allow_private, &mut problems);
            (destination, String::new())
        }
        _ => {
            problems.push(InvalidInput::new(
                &["input"],
                "missing_destination",
                "A stream needs exactly one destination: webhook, s3 or syslog",
                serde_json::Value::Null,
            ));
            return Err(AppError::Invalid(problems));
        }
    };
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let id = new_id(IdKind::LogStream);
    let sealed = settings.key.seal(&id, &secret)?;
    let now = now_micros();
    let txn = sea_orm::TransactionTrait::begin(db).await?;
    // The org's log is locked so that "now" is exact (no event commits
    // between reading its size and the stream's row), and so that two
    // creations in one org take turns for the cap and the name.
    let size = super::log::lock(&txn, org_id).await?;
    let existing = txn
        .query_all_raw(statement(
            &txn,
            "SELECT name FROM log_streams WHERE org_id = ?",
            vec![org_id.into()],
        ))
        .await?;
    if existing.len() as u64 >= MAX_STREAMS_PER_ORG {
        return Err(AppError::invalid(
            InvalidInput::new(
                &["input"],
                "too_many_streams",
                format!("An org may have at most {MAX_STREAMS_PER_ORG} log streams"),
                serde_json::Value::Null,
            )
            .with_ctx(serde_json::json!({ "limit": MAX_STREAMS_PER_ORG })),
        ));
    }
    if existing
        .iter()
        .any(|r| r.try_get_by_index::<String>(0).is_ok_and(|n| n == name))
    {
        return Err(name_taken(&name));
    }
    let next_index = match input.start {
        Start::Now => size as i64,
        Start::Beginning => 0,
    };
    txn.execute_raw(statement(
        &txn,
        "INSERT INTO log_streams (id, org_id, name, format, filter, destination, secret_sealed, \
           status, next_index, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            id.as_str().into(),
            org_id.into(),
            name.as_str().into(),
            input.format.as_str().into(),
            serde_json::to_string(&input.filter)
                .map_err(AppError::internal)?
                .into(),
            serde_json::to_string(&destination)
                .map_err(AppError::internal)?
                .into(),
            sealed.into(),
            StreamStatus::Active.as_str().into(),
            next_index.into(),
            now.into(),
            now.into(),
        ],
    ))
    .await
    .map_err(|e| unique_name(e, &name))?;
    txn.commit().await?;
    tracing::info!(org = %org_id, stream = %id, "log stream created");
    get(db, org_id, &id).await
}

/// Changes a stream's name, format or filter. Events already delivered stay
/// delivered; the new filter applies from the cursor on.
pub async fn update(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::StreamManage>,
    id: &str,
    change: StreamChange,
) -> AppResult<Stream> {
    let org_id = principal.org_id.as_str();
    let current = get(db, org_id, id).await?;
    let mut problems = Vec::new();
    let name = change
        .name
        .as_deref()
        .map(|n| checked_name(n, &mut problems))
        .unwrap_or(current.name);
    let filter = change.filter.unwrap_or(current.filter);
    problems.extend(filter.validate(&["input", "filter"]));
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let taken = db
        .query_one_raw(statement(
            db,
            "SELECT 1 FROM log_streams WHERE org_id = ? AND name = ? AND id <> ?",
            vec![org_id.into(), name.as_str().into(), id.into()],
        ))
        .await?;
    if taken.is_some() {
        return Err(name_taken(&name));
    }
    let format = change.format.unwrap_or(current.format);
    let taken_name = name.clone();
    db.execute_raw(statement(
        db,
        "UPDATE log_streams SET name = ?, format = ?, filter = ?, updated_at = ? WHERE id = ? AND org_id = ?",
        vec![
            name.into(),
            format.as_str().into(),
            serde_json::to_string(&filter)
                .map_err(AppError::internal)?
                .into(),
            now_micros().into(),
            id.into(),
            org_id.into(),
        ],
    ))
    .await
    .map_err(|e| unique_name(e, &taken_name))?;
    get(db, org_id, id).await
}

/// A write that lost a race for a name to another (the check before it
/// passed for both): the name is taken, as the check would have said.
fn unique_name(e: sea_orm::DbErr, name: &str) -> AppError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => name_taken(name),
        _ => e.into(),
    }
}

/// Deletes a stream; a batch in flight may still arrive, nothing after it.
pub async fn delete(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::StreamManage>,
    id: &str,
) -> AppResult<Stream> {
    let org_id = principal.org_id.as_str();
    let stream = get(db, org_id, id).await?;
    db.execute_raw(statement(
        db,
        "DELETE FROM log_streams WHERE id = ? AND org_id = ?",
        vec![id.into(), org_id.into()],
    ))
    .await?;
    tracing::info!(org = %org_id, stream = %id, "log stream deleted");
    Ok(stream)
}

/// Stops delivery: nothing past the cursor is sent until `resume`. A batch
/// already sent when the pause commits is still acknowledged.
pub async fn pause(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::StreamManage>,
    id: &str,
) -> AppResult<Stream> {
    set_status(db, &principal.org_id, id, StreamStatus::Paused).await
}

/// Delivers again from the cursor, after a pause or a refusal.
pub async fn resume(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::StreamManage>,
    id: &str,
) -> AppResult<Stream> {
    set_status(db, &principal.org_id, id, StreamStatus::Active).await
}

async fn set_status(
    db: &DatabaseConnection,
    org_id: &str,
    id: &str,
    status: StreamStatus,
) -> AppResult<Stream> {
    // A change of status ends the lease: a paused stream has no deliverer,
    // and a resumed one is claimed afresh (with a new token). Resuming an
    // active stream changes nothing.
    let done = db
        .execute_raw(statement(
            db,
            "UPDATE log_streams SET lease_until = CASE WHEN status <> ? THEN 0 ELSE lease_until END, \
               status = ?, updated_at = ?, \
               failing_since = CASE WHEN ? THEN NULL ELSE failing_since END, \
               alerted = CASE WHEN ? THEN FALSE ELSE alerted END \
             WHERE id = ? AND org_id = ?",
            vec![
                status.as_str().into(),
                status.as_str().into(),
                now_micros().into(),
                (status == StreamStatus::Active).into(),
                (status == StreamStatus::Active).into(),
                id.into(),
                org_id.into(),
            ],
        ))
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found("log_stream", id));
    }
    get(db, org_id, id).await
}

fn name_taken(name: &str) -> AppError {
    AppError::invalid(InvalidInput::new(
        &["input", "name"],
        "name_taken",
        "The org has a log stream of this name already",
        name,
    ))
}

fn checked_name(name: &str, problems: &mut Vec<InvalidInput>) -> String {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        problems.push(
            InvalidInput::new(
                &["input", "name"],
                "string_length",
                format!("name should have 1 to {MAX_NAME_CHARS} characters"),
                name,
            )
            .with_ctx(serde_json::json!({ "min_length": 1, "max_length": MAX_NAME_CHARS })),
        );
    } else if !crate::domain::text::is_storable(trimmed) {
        problems.push(crate::domain::text::unstorable_at(
            vec!["input".into(), "name".into()],
            name,
        ));
    }
    trimmed.to_owned()
}

fn checked_url(
    text: &str,
    shape: WebhookShape,
    allow_private: bool,
    problems: &mut Vec<InvalidInput>,
) -> String {
    let Some(mut url) =
        checked_http_url(text, &["input", "webhook", "url"], allow_private, problems)
    else {
        return String::new();
    };
    if let Some(path) = shape.default_path().filter(|_| url.path() == "/") {
        url.set_path(path);
    }
    url.to_string()
}

/// An absolute http or https URL the stream may reach: plain http and
/// inward hosts only with `--allow-private-stream-targets`, no credentials
/// in it (the secret is kept apart, sealed).
fn checked_http_url(
    text: &str,
    at: &[&str],
    allow_private: bool,
    problems: &mut Vec<InvalidInput>,
) -> Option<reqwest::Url> {
    let mut refuse = |kind: &str, msg: &str| {
        problems.push(InvalidInput::new(at, kind, msg, text));
    };
    if text.len() > MAX_URL_BYTES {
        refuse(
            "url_too_long",
            &format!("url should have at most {MAX_URL_BYTES} bytes"),
        );
        return None;
    }
    let Ok(url) = reqwest::Url::parse(text) else {
        refuse("url_parsing", "url should be an absolute http or https URL");
        return None;
    };
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() || !matches!(url.scheme(), "http" | "https") {
        refuse("url_scheme", "url should be an absolute http or https URL");
    } else if url.scheme() == "http" && !allow_private {
        refuse(
            "url_scheme",
            "url should use https (plain http only with --allow-private-stream-targets)",
        );
    } else if !url.username().is_empty() || url.password().is_some() {
        refuse(
            "url_credentials",
            "url should carry no credentials: the secret is given apart",
        );
    } else if let Some(why) = target::refusal(host, allow_private) {
        refuse("private_target", why);
    } else {
        return Some(url);
    }
    None
}

/// The longest object name prefix of an S3 destination, in bytes.
pub const MAX_PREFIX_BYTES: usize = 512;
/// The longest S3 access key id and region, in bytes.
const MAX_KEY_ID_BYTES: usize = 128;
const MAX_REGION_BYTES: usize = 64;

/// An S3 destination checked: its endpoint as a URL the stream may reach,
/// the bucket by S3's naming rules, the prefix as plain path segments, and
/// the keys as visible ASCII. Answers the destination and its secret.
fn checked_s3(
    s3: &S3Input,
    allow_private: bool,
    problems: &mut Vec<InvalidInput>,
) -> (Destination, String) {
    let endpoint = s3
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let endpoint = endpoint.and_then(|text| {
        let at = ["input", "s3", "endpoint"];
        let url = checked_http_url(text, &at, allow_private, problems)?;
        if url.query().is_some() || url.fragment().is_some() {
            problems.push(InvalidInput::new(
                &at,
                "url_query",
                "endpoint should be the S3 API's base URL, without a query or fragment",
                text,
            ));
            return None;
        }
        Some(url.as_str().trim_end_matches('/').to_owned())
    });
    let bucket = s3.bucket.trim();
    let bucket_valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..")
        && bucket.parse::<std::net::Ipv4Addr>().is_err();
    if !bucket_valid {
        problems.push(InvalidInput::new(
            &["input", "s3", "bucket"],
            "bucket_invalid",
            "bucket should be an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
            s3.bucket.as_str(),
        ));
    }
    let prefix = s3
        .prefix
        .as_deref()
        .unwrap_or_default()
        .trim()
        .trim_matches('/');
    let prefix_valid = prefix.len() <= MAX_PREFIX_BYTES
        && (prefix.is_empty()
            || prefix.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
            }));
    if !prefix_valid {
        problems.push(
            InvalidInput::new(
                &["input", "s3", "prefix"],
                "prefix_invalid",
                format!("prefix should be at most {MAX_PREFIX_BYTES} bytes of path segments separated by /, each of letters, digits and !-_.*'()"),
                s3.prefix.as_deref().unwrap_or_default(),
            )
            .with_ctx(serde_json::json!({ "max_length": MAX_PREFIX_BYTES })),
        );
    }
    let region = s3
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("us-east-1");
    if region.len() > MAX_REGION_BYTES
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push(InvalidInput::new(
            &["input", "s3", "region"],
            "region_invalid",
            format!(
                "region should be at most {MAX_REGION_BYTES} lowercase letters, digits and hyphens"
            ),
            s3.region.as_deref().unwrap_or_default(),
        ));
    }
    let visible = |text: &str, max: usize| {
        (1..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
    };
    let key_id = s3.access_key_id.trim();
    if !visible(key_id, MAX_KEY_ID_BYTES) {
        problems.push(InvalidInput::new(
            &["input", "s3", "accessKeyId"],
            "access_key_invalid",
            format!("accessKeyId should be 1 to {MAX_KEY_ID_BYTES} visible ASCII characters"),
            s3.access_key_id.as_str(),
        ));
    }
    let secret = s3.secret_access_key.as_str();
    if !visible(secret, MAX_SECRET_BYTES) {
        problems.push(InvalidInput::new(
            &["input", "s3", "secretAccessKey"],
            "secret_invalid",
            format!("secretAccessKey should be 1 to {MAX_SECRET_BYTES} visible ASCII characters"),
            "[redacted]",
        ));
    }
    (
        Destination::S3 {
            endpoint,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            region: region.to_owned(),
            access_key_id: key_id.to_owned(),
        },
        secret.to_owned(),
    )
}

/// The longest syslog host name, in bytes (a DNS name's limit).
const MAX_HOST_BYTES: usize = 253;

fn checked_syslog(
    syslog: &SyslogInput,
    allow_private: bool,
    problems: &mut Vec<InvalidInput>,
) -> Destination {
    let host = syslog
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let valid_name = !host.is_empty()
        && host.len() <= MAX_HOST_BYTES
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !valid_name {
        problems.push(InvalidInput::new(
            &["input", "syslog", "host"],
            "host_invalid",
            format!("host should be a DNS name or an IP address of at most {MAX_HOST_BYTES} bytes"),
            syslog.host.as_str(),
        ));
    } else if let Some(why) = target::refusal(host, allow_private) {
        problems.push(InvalidInput::new(
            &["input", "syslog", "host"],
            "private_target",
            why,
            syslog.host.as_str(),
        ));
    }
    let port = u16::try_from(syslog.port).ok().filter(|p| *p > 0);
    if port.is_none() {
        problems.push(
            InvalidInput::new(
                &["input", "syslog", "port"],
                "port_range",
                "port should be from 1 to 65535",
                syslog.port,
            )
            .with_ctx(serde_json::json!({ "ge": 1, "le": 65535 })),
        );
    }
    Destination::Syslog {
        host: host.to_ascii_lowercase(),
        port: port.unwrap_or(0),
        tls: syslog.tls,
    }
}

/// The secret checked for the shape; an invalid one is never echoed back.
fn checked_secret(shape: WebhookShape, secret: &str, problems: &mut Vec<InvalidInput>) -> String {
    let refuse = |msg: &str| {
        InvalidInput::new(
            &["input", "webhook", "secret"],
            "secret_invalid",
            msg,
            "[redacted]",
        )
    };
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        problems.push(refuse(&format!(
            "secret should have 1 to {MAX_SECRET_BYTES} bytes"
        )));
        return String::new();
    }
    match shape {
        // A token goes in a header: visible ASCII only.
        WebhookShape::SplunkHec | WebhookShape::Datadog => {
            if !secret.bytes().all(|b| b.is_ascii_graphic()) {
                problems.push(refuse(
                    "secret should be the destination's token: visible ASCII, no spaces",
                ));
            }
        }
        WebhookShape::Standard => {
            use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
            use base64::Engine as _;
            // Padded or not, as Standard Webhooks libraries take either;
            // stored padded, as the signing crate reads it.
            let tolerant = GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
            );
            let key = secret
                .strip_prefix("whsec_")
                .and_then(|b64| tolerant.decode(b64).ok());
            return match key {
                Some(key) if (24..=64).contains(&key.len()) => {
                    format!("whsec_{}", general_purpose::STANDARD.encode(key))
                }
                _ => {
                    problems.push(refuse(
                        "secret should be a Standard Webhooks secret: whsec_ and the base64 of 24 to 64 random bytes",
                    ));
                    String::new()
                }
            };
        }
    }
    secret.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_secrets_are_taken_padded_or_not_and_kept_padded() {
        let mut problems = Vec::new();
        // 25 bytes: base64 with two padding characters.
        let padded = "whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==";
        let unpadded = padded.trim_end_matches('=');
        for given in [padded, unpadded] {
            assert_eq!(
                checked_secret(WebhookShape::Standard, given, &mut problems),
                padded
            );
        }
        assert!(problems.is_empty(), "{problems:?}");
        assert!(standardwebhooks::Webhook::new(padded).is_ok());
        for bad in ["BwcHBwcH", "whsec_not base64", "whsec_BwcH", ""] {
            let mut problems = Vec::new();
            checked_secret(WebhookShape::Standard, bad, &mut problems);
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].input, "[redacted]");
        }
    }
}
