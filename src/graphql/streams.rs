//! Log streams in GraphQL: `Org.logStreams` and the mutations that manage
//! them (`stream:manage`). Thin: every check is the service's.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use sea_orm::DatabaseConnection;

use super::activity::ActivityFilterInput;
use super::error::{GqlResult, IntoGql};
use super::guard::Gate;
use crate::auth::Principal;
use crate::domain::error::AppError;
use crate::domain::time::format_micros;
use crate::service::streams::{self, deliver::StreamRunner};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum LogStreamFormat {
    /// The REST activity shape of each event, with `org_id` and `log_index`.
    Native,
    /// OCSF API Activity (class 6003); the mapping is in the README.
    Ocsf,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum LogStreamStart {
    /// After the events stored so far.
    Now,
    /// From the first event the org's log holds.
    Beginning,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookShape {
    /// Standard Webhooks: a JSON batch signed with HMAC-SHA256
    /// (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
    /// Splunk's HTTP Event Collector (`secret`: the HEC token; a URL
    /// without a path posts to `/services/collector/event`).
    SplunkHec,
    /// Datadog's logs intake (`secret`: the API key; a URL without a path
    /// posts to `/api/v2/logs`).
    Datadog,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum LogStreamStatus {
    Active,
    Paused,
    /// The destination refused a batch; delivery waits for `resumeLogStream`.
    Failing,
}

/// An HTTPS webhook. For `STANDARD`, `secret` is a Standard Webhooks secret
/// (`whsec_` and base64); for `SPLUNK_HEC` the HEC token, for `DATADOG` the
/// API key. The secret is never returned.
#[derive(InputObject)]
pub struct WebhookDestinationInput {
    pub url: String,
    pub secret: String,
    #[graphql(default_with = "WebhookShape::Standard")]
    pub shape: WebhookShape,
}

/// An S3-compatible bucket: one gzip NDJSON object per batch, named
/// `{prefix}/{org_id}/{yyyy}/{mm}/{dd}/{hh}/{first}-{last}.ndjson.gz`.
/// `endpoint` is the S3 API's base URL (AWS's own, by region, when absent;
/// requests are path-style); `region` defaults to `us-east-1`. The secret
/// access key is never returned.
#[derive(InputObject)]
pub struct S3DestinationInput {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A syslog collector: RFC 5424 messages over TCP, framed by octet
/// counting (RFC 6587), in TLS (RFC 5425) when `tls` is true.
#[derive(InputObject)]
pub struct SyslogDestinationInput {
    pub host: String,
    pub port: i64,
    /// Connect in TLS and verify the collector's certificate for `host`
    /// (against the public roots and the operator's `--stream-ca-file`).
    #[graphql(default = false)]
    pub tls: bool,
}

/// A new stream: a name, exactly one destination, and optionally a format,
/// a filter (the feed's) and where in the log it starts.
#[derive(InputObject)]
pub struct LogStreamInput {
    pub name: String,
    #[graphql(default_with = "LogStreamFormat::Native")]
    pub format: LogStreamFormat,
    pub filter: Option<ActivityFilterInput>,
    #[graphql(default_with = "LogStreamStart::Now")]
    pub start_at: LogStreamStart,
    pub webhook: Option<WebhookDestinationInput>,
    pub s3: Option<S3DestinationInput>,
    pub syslog: Option<SyslogDestinationInput>,
}

/// What `updateLogStream` changes; absent fields stay as they are.
#[derive(InputObject)]
pub struct LogStreamUpdateInput {
    pub name: Option<String>,
    pub format: Option<LogStreamFormat>,
    pub filter: Option<ActivityFilterInput>,
}

/// Where a stream delivers (never its secret).
#[derive(SimpleObject)]
pub struct LogStreamDestination {
    /// `webhook`, `s3` or `syslog`.
    pub kind: String,
    /// A webhook's URL.
    pub url: Option<String>,
    /// A webhook's request shape.
    pub shape: Option<WebhookShape>,
    /// A syslog collector's host.
    pub host: Option<String>,
    /// A syslog collector's port.
    pub port: Option<i32>,
    /// Whether a syslog collector is reached in TLS.
    pub tls: Option<bool>,
    /// An S3 destination's endpoint (absent for AWS's own).
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    /// The prefix of an S3 destination's object names (empty for none).
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
}

impl LogStreamDestination {
    fn of_kind(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            url: None,
            shape: None,
            host: None,
            port: None,
            tls: None,
            endpoint: None,
            bucket: None,
            prefix: None,
            region: None,
            access_key_id: None,
        }
    }
}

/// A stream of the org's events to a destination of its own, and how it is doing.
#[derive(SimpleObject)]
pub struct LogStream {
    pub id: ID,
    pub name: String,
    pub status: LogStreamStatus,
    pub format: LogStreamFormat,
    pub destination: LogStreamDestination,
    /// The first log index not yet acknowledged by the destination.
    pub next_log_index: i64,
    /// Events of the org's log past the cursor.
    pub lag_events: i64,
    /// Age of the oldest event past the cursor, by its timestamp; 0 when
    /// nothing waits.
    pub lag_seconds: f64,
    /// Events the destination acknowledged.
    pub delivered_total: i64,
    /// Events retention purged before the stream reached them.
    pub purged_total: i64,
    pub last_delivered_at: Option<String>,
    /// The last failure (the destination's answer, or why it could not be
    /// reached); cleared by the next delivery.
    pub last_error: Option<String>,
    pub created_at: String,
}

impl From<streams::Stream> for LogStream {
    fn from(s: streams::Stream) -> Self {
        let destination = match s.destination {
            streams::Destination::Webhook { url, shape } => LogStreamDestination {
                url: Some(url),
                shape: Some(match shape {
                    streams::WebhookShape::Standard => WebhookShape::Standard,
                    streams::WebhookShape::SplunkHec => WebhookShape::SplunkHec,
                    streams::WebhookShape::Datadog => WebhookShape::Datadog,
                }),
                ..LogStreamDestination::of_kind("webhook")
            },
            streams::Destination::Syslog { host, port, tls } => LogStreamDestination {
                host: Some(host),
                port: Some(i32::from(port)),
                tls: Some(tls),
                ..LogStreamDestination::of_kind("syslog")
            },
            streams::Destination::S3 {
                endpoint,
                bucket,
                prefix,
                region,
                access_key_id,
            } => LogStreamDestination {
                endpoint,
                bucket: Some(bucket),
                prefix: Some(prefix),
                region: Some(region),
                access_key_id: Some(access_key_id),
                ..LogStreamDestination::of_kind("s3")
            },
        };
        Self {
            id: ID(s.id),
            name: s.name,
            status: match s.status {
                streams::StreamStatus::Active => LogStreamStatus::Active,
                streams::StreamStatus::Paused => LogStreamStatus::Paused,
                streams::StreamStatus::Failing => LogStreamStatus::Failing,
            },
            format: match s.format {
                streams::Format::Native => LogStreamFormat::Native,
                streams::Format::Ocsf => LogStreamFormat::Ocsf,
            },
            destination,
            next_log_index: s.next_index,
            lag_events: s.lag_events,
            lag_seconds: s.lag_seconds,
            delivered_total: s.delivered_total,
            purged_total: s.purged_total,
            last_delivered_at: s.last_delivered_at.map(format_micros),
            last_error: s.last_error,
            created_at: format_micros(s.created_at),
        }
    }
}

/// How a test delivery went.
#[derive(SimpleObject)]
pub struct LogStreamTest {
    /// Whether the destination acknowledged it (a 2xx answer).
    pub delivered: bool,
    pub error: Option<String>,
}

fn format_of(format: LogStreamFormat) -> streams::Format {
    match format {
        LogStreamFormat::Native => streams::Format::Native,
        LogStreamFormat::Ocsf => streams::Format::Ocsf,
    }
}

fn filter_of(
    filter: Option<ActivityFilterInput>,
) -> GqlResult<Option<crate::domain::feed::ActivityFilter>> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    let read = ActivityFilterInput::read(Some(filter), &mut problems);
    if problems.is_empty() {
        Ok(Some(read))
    } else {
        Err(AppError::Invalid(problems).located(&["input"])).gql()
    }
}

#[derive(Default)]
pub struct StreamMutations;

#[Object]
impl StreamMutations {
    /// Makes a log stream of the caller's org. Needs `stream:manage`.
    #[graphql(guard = "Gate(\"createLogStream\")")]
    async fn create_log_stream(
        &self,
        ctx: &Context<'_>,
        input: LogStreamInput,
    ) -> GqlResult<LogStream> {
        let principal = ctx.data::<Principal>()?;
        let runner = ctx.data::<StreamRunner>()?;
        let input = streams::StreamInput {
            name: input.name,
            format: format_of(input.format),
            filter: filter_of(input.filter)?.unwrap_or_default(),
            start: match input.start_at {
                LogStreamStart::Now => streams::Start::Now,
                LogStreamStart::Beginning => streams::Start::Beginning,
            },
            webhook: input.webhook.map(|w| streams::WebhookInput {
                url: w.url,
                secret: w.secret,
                shape: match w.shape {
                    WebhookShape::Standard => streams::WebhookShape::Standard,
                    WebhookShape::SplunkHec => streams::WebhookShape::SplunkHec,
                    WebhookShape::Datadog => streams::WebhookShape::Datadog,
                },
            }),
            s3: input.s3.map(|s| streams::S3Input {
                endpoint: s.endpoint,
                bucket: s.bucket,
                prefix: s.prefix,
                region: s.region,
                access_key_id: s.access_key_id,
                secret_access_key: s.secret_access_key,
            }),
            syslog: input.syslog.map(|s| streams::SyslogInput {
                host: s.host,
                port: s.port,
                tls: s.tls,
            }),
        };
        let stream = streams::create(
            ctx.data::<DatabaseConnection>()?,
            runner.settings(),
            principal.grant().gql()?,
            input,
        )
        .await
        .gql()?;
        runner.wake();
        Ok(stream.into())
    }

    /// Changes a stream's name, format or filter. Needs `stream:manage`.
    #[graphql(guard = "Gate(\"updateLogStream\")")]
    async fn update_log_stream(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: LogStreamUpdateInput,
    ) -> GqlResult<LogStream> {
        let change = streams::StreamChange {
            name: input.name,
            format: input.format.map(format_of),
            filter: filter_of(input.filter)?,
        };
        let principal = ctx.data::<Principal>()?;
        Ok(streams::update(
            ctx.data::<DatabaseConnection>()?,
            principal.grant().gql()?,
            &id,
            change,
        )
        .await
        .gql()?
        .into())
    }

    /// Deletes a stream and answers it as it was. Needs `stream:manage`.
    #[graphql(guard = "Gate(\"deleteLogStream\")")]
    async fn delete_log_stream(&self, ctx: &Context<'_>, id: ID) -> GqlResult<LogStream> {
        let principal = ctx.data::<Principal>()?;
        Ok(streams::delete(
            ctx.data::<DatabaseConnection>()?,
            principal.grant().gql()?,
            &id,
        )
        .await
        .gql()?
        .into())
    }

    /// Stops delivery at the cursor. Needs `stream:manage`.
    #[graphql(guard = "Gate(\"pauseLogStream\")")]
    async fn pause_log_stream(&self, ctx: &Context<'_>, id: ID) -> GqlResult<LogStream> {
        let principal = ctx.data::<Principal>()?;
        Ok(streams::pause(
            ctx.data::<DatabaseConnection>()?,
            principal.grant().gql()?,
            &id,
        )
        .await
        .gql()?
        .into())
    }

    /// Delivers again from the cursor (after a pause, or a refusal).
    /// Needs `stream:manage`.
    #[graphql(guard = "Gate(\"resumeLogStream\")")]
    async fn resume_log_stream(&self, ctx: &Context<'_>, id: ID) -> GqlResult<LogStream> {
        let principal = ctx.data::<Principal>()?;
        let stream = streams::resume(
            ctx.data::<DatabaseConnection>()?,
            principal.grant().gql()?,
            &id,
        )
        .await
        .gql()?;
        ctx.data::<StreamRunner>()?.wake();
        Ok(stream.into())
    }

    /// Sends a signed delivery with no events (`"type": "activity.test"`)
    /// and answers how the destination took it. Needs `stream:manage`.
    #[graphql(guard = "Gate(\"testLogStream\")")]
    async fn test_log_stream(&self, ctx: &Context<'_>, id: ID) -> GqlResult<LogStreamTest> {
        let principal = ctx.data::<Principal>()?;
        let outcome = ctx
            .data::<StreamRunner>()?
            .test(principal.grant().gql()?, &id)
            .await
            .gql()?;
        Ok(LogStreamTest {
            delivered: outcome.delivered,
            error: outcome.error,
        })
    }
}
