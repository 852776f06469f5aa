//! Settings from flags and environment variables: every flag also reads one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://activity-gateway.db?mode=rwc";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(
    name = "activity-gateway",
    version,
    about = "GraphQL API and REST compatibility shim over an org's activity data"
)]
pub struct Cli {
    /// How log lines are written to stderr: `text` for people, `json` (one
    /// object per line) for log shippers.
    #[arg(
        long,
        global = true,
        env = "ACTIVITY_GATEWAY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line as `--help` shows it: each flag names its variable
    /// without a value (clap would print `[env: NAME=]` for an unset one,
    /// which reads like a setting to an empty string).
    pub fn command_line() -> clap::Command {
        fn without_env_values(command: clap::Command) -> clap::Command {
            command
                .mut_args(|arg| arg.hide_env_values(true))
                .mut_subcommands(without_env_values)
        }
        without_env_values(<Self as clap::CommandFactory>::command())
    }

    /// Parses this process's arguments (and variables), or exits as clap does.
    pub fn from_env() -> Self {
        use clap::FromArgMatches as _;
        Self::from_arg_matches(&Self::command_line().get_matches()).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve HTTP.
    Serve(ServeArgs),
    /// Apply pending migrations.
    Migrate(DatabaseArgs),
    /// Write the deterministic demo data set (replacing the demo orgs).
    Seed(SeedArgs),
    /// Print the GraphQL SDL (the same as schema.graphql).
    Schema,
    /// Print the permission of every REST and GraphQL operation (the README's table).
    Permissions,
    /// Print the OpenAPI 3.1 document of the REST routes (the same as /openapi.json).
    Openapi,
    /// Export an org's activity as a ZIP (the same as POST /api/v5/artifacts/activity/export).
    Export(ExportArgs),
    /// Create or revoke API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the verifiable log's verifier key (signed-note form), on one line.
    LogKey(LogKeyCommandArgs),
    /// Verify an org's log in the database, or an export ZIP offline.
    Verify(VerifyArgs),
    /// Set an org's retention period, or purge now.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Manage an org's log streams (what the GraphQL stream mutations do).
    Streams {
        #[command(subcommand)]
        command: StreamsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Print the org's streams and their health, one JSON object per line.
    List(StreamOrgArgs),
    /// Make a stream (webhook, syslog or S3); prints it as JSON.
    Create(StreamCreateArgs),
    /// Stop a stream's delivery at its cursor.
    Pause(StreamIdArgs),
    /// Deliver a paused or failing stream again from its cursor.
    Resume(StreamIdArgs),
    /// Delete a stream.
    Delete(StreamIdArgs),
    /// Send a test delivery and print how the destination took it.
    Test(StreamIdArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StreamOrgArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The org.
    #[arg(long, env = "ACTIVITY_GATEWAY_STREAM_ORG")]
    pub org: String,
}

#[derive(Debug, Clone, Args)]
pub struct StreamIdArgs {
    #[command(flatten)]
    pub org: StreamOrgArgs,
    /// The stream's id (`lst_...`).
    #[arg(long)]
    pub id: String,
    #[command(flatten)]
    pub streams: StreamArgs,
}

/// `streams create`: exactly one destination, a webhook (`--url`), a
/// syslog collector (`--syslog-host`) or an S3 bucket (`--s3-bucket`).
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["url", "syslog_host", "s3_bucket"])))]
pub struct StreamCreateArgs {
    #[command(flatten)]
    pub org: StreamOrgArgs,
    /// The stream's name, unique in the org.
    #[arg(long)]
    pub name: String,
    /// A webhook destination's URL.
    #[arg(long)]
    pub url: Option<String>,
    /// The destination's secret: a webhook's (a `whsec_` secret, the HEC
    /// token or the Datadog API key) or an S3 bucket's secret access key;
    /// better from the environment than the command line.
    #[arg(long, env = "ACTIVITY_GATEWAY_STREAM_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The webhook's request shape: Standard Webhooks, Splunk HEC or Datadog.
    #[arg(long, value_enum, default_value = "standard")]
    pub shape: StreamShapeArg,
    /// A syslog collector's host (RFC 5424 over TCP, octet counted).
    #[arg(long, requires = "syslog_port")]
    pub syslog_host: Option<String>,
    /// The syslog collector's port.
    #[arg(long, requires = "syslog_host", allow_negative_numbers = true)]
    pub syslog_port: Option<i64>,
    /// Reach the syslog collector in TLS, verifying its certificate.
    #[arg(long, requires = "syslog_host")]
    pub syslog_tls: bool,
    /// An S3-compatible bucket (one gzip NDJSON object per batch).
    #[arg(long, requires = "s3_access_key_id")]
    pub s3_bucket: Option<String>,
    /// The S3 API's base URL; AWS's own (by region) when absent.
    #[arg(long, requires = "s3_bucket")]
    pub s3_endpoint: Option<String>,
    /// Prepended to every object name.
    #[arg(long, requires = "s3_bucket")]
    pub s3_prefix: Option<String>,
    /// The bucket's region.
    #[arg(long, requires = "s3_bucket")]
    pub s3_region: Option<String>,
    /// The access key id; the secret access key is `--secret`.
    #[arg(long, requires = "s3_bucket")]
    pub s3_access_key_id: Option<String>,
    /// How events are written: the REST shape, or OCSF API Activity.
    #[arg(long, value_enum, default_value = "native")]
    pub format: StreamFormatArg,
    /// Where the stream starts: after the events stored so far, or at the log's first.
    #[arg(long, value_enum, default_value = "now")]
    pub start_at: StreamStartArg,
    /// Deliver only these actions (repeatable).
    #[arg(long = "action")]
    pub actions: Vec<String>,
    #[command(flatten)]
    pub streams: StreamArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StreamShapeArg {
    Standard,
    SplunkHec,
    Datadog,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StreamFormatArg {
    Native,
    Ocsf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StreamStartArg {
    Now,
    Beginning,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Keep an org's raw events `--days N` (1 to 36500), or `--forever`.
    Set(RetentionSetArgs),
    /// Purge every org's events past its retention now (what serve does every few minutes).
    Purge(DatabaseArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RetentionSetArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The org.
    #[arg(long, env = "ACTIVITY_GATEWAY_RETENTION_ORG")]
    pub org: String,
    /// Days to keep raw events.
    #[arg(long, required_unless_present = "forever", conflicts_with = "forever")]
    pub days: Option<i64>,
    /// Keep raw events forever (the default).
    #[arg(long)]
    pub forever: bool,
}

/// The key that signs checkpoints and the prefix of every org's log origin.
#[derive(Debug, Clone, Args, Default)]
pub struct LogKeyArgs {
    /// The Ed25519 key that signs checkpoints, as a signed-note private key
    /// (`PRIVATE+KEY+name+keyhash+base64`). Unset: one is generated on first
    /// start and kept in the database, so every replica signs with it.
    #[arg(long, env = "ACTIVITY_GATEWAY_LOG_SIGNING_KEY", hide_env_values = true)]
    pub log_signing_key: Option<String>,
    /// Every org's log origin is `PREFIX/ORG_ID`. Unset: the first
    /// replica's `<hostname>/activity`, kept in the database.
    #[arg(long, env = "ACTIVITY_GATEWAY_LOG_ORIGIN_PREFIX")]
    pub log_origin_prefix: Option<String>,
}

impl LogKeyArgs {
    pub fn settings(&self) -> crate::service::log::checkpoints::KeySettings {
        crate::service::log::checkpoints::KeySettings {
            signing_key: self.log_signing_key.clone(),
            origin_prefix: self.log_origin_prefix.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LogKeyCommandArgs {
    /// Print a new signing key named NAME (for --log-signing-key) and its
    /// verifier key, one per line, instead; no database is read.
    #[arg(long, value_name = "NAME")]
    pub generate: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub log: LogKeyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// An export ZIP to verify offline (no database, no server); needs `--key`.
    #[arg(conflicts_with_all = ["org", "against"], required_unless_present = "org")]
    pub zip: Option<PathBuf>,
    /// The log's verifier key (`name+keyhash+base64`, as `log-key` prints it).
    #[arg(long, env = "ACTIVITY_GATEWAY_VERIFY_KEY", requires = "zip")]
    pub key: Option<String>,
    /// The org whose log in the database to verify.
    #[arg(long, env = "ACTIVITY_GATEWAY_VERIFY_ORG")]
    pub org: Option<String>,
    /// A signed checkpoint the org saved earlier: the log must be consistent with it.
    #[arg(long, requires = "org")]
    pub against: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub log: LogKeyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://FILE?mode=rwc` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The org to export.
    #[arg(long, env = "ACTIVITY_GATEWAY_EXPORT_ORG")]
    pub org: String,
    /// The ZIP file to write (replaced if it exists).
    #[arg(long, env = "ACTIVITY_GATEWAY_EXPORT_OUT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub log: LogKeyArgs,
    /// A session not ended and seen within this many minutes counts as active.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_SESSION_IDLE_MINUTES",
        default_value_t = 30
    )]
    pub session_idle_minutes: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The address and port to listen on.
    #[arg(long, env = "ACTIVITY_GATEWAY_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Seed the demo data set when the database holds no org, and print a ready-to-use admin key per demo org.
    #[arg(long, env = "ACTIVITY_GATEWAY_DEMO")]
    pub demo: bool,
    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Secret for HS256 bearer tokens; JWTs are refused when unset.
    #[arg(long, env = "ACTIVITY_GATEWAY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Secret that seals pagination and live cursors (any length). Unset: a
    /// random one is generated on first start and kept in the database, so
    /// every gateway on one database shares it.
    #[arg(long, env = "ACTIVITY_GATEWAY_CURSOR_SECRET", hide_env_values = true)]
    pub cursor_secret: Option<String>,
    /// Bearer token that `/metrics` asks for. Unset: `/metrics` answers
    /// connections from this machine (loopback) only.
    #[arg(long, env = "ACTIVITY_GATEWAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Where export ZIPs are written.
    #[arg(long, env = "ACTIVITY_GATEWAY_EXPORT_DIR", default_value = "exports")]
    pub export_dir: PathBuf,
    /// How long a finished export stays downloadable, in seconds (7 days).
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_EXPORT_KEEP_SECS",
        default_value_t = 7 * 24 * 3600
    )]
    pub export_keep_secs: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ACTIVITY_GATEWAY_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest a request may take, in seconds.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_REQUEST_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub request_timeout_secs: u64,
    /// Record every authenticated request as an activity event.
    #[arg(long, env = "ACTIVITY_GATEWAY_RECORD_REQUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub record_requests: bool,
    /// Answer the feed pages a plan covers without async-graphql's per-field
    /// execution (see the README's "Planned reads"); off answers every
    /// operation through the general executor.
    #[arg(long, env = "ACTIVITY_GATEWAY_PLANNED_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub planned_reads: bool,
    /// How many recorded requests may wait for the writer; more are dropped and counted.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_RECORDER_CAPACITY",
        default_value_t = 65_536
    )]
    pub recorder_capacity: usize,
    /// How often the hourly rollups fold in new events, in seconds.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_ROLLUP_INTERVAL_SECS",
        default_value_t = 30
    )]
    pub rollup_interval_secs: u64,
    /// How often events past their org's retention are purged, in seconds.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_PURGE_INTERVAL_SECS",
        default_value_t = 300
    )]
    pub purge_interval_secs: u64,
    /// A session not ended and seen within this many minutes counts as active.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_SESSION_IDLE_MINUTES",
        default_value_t = 30
    )]
    pub session_idle_minutes: u64,
    /// Requests one credential may have in flight; more answer 429.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_MAX_IN_FLIGHT_PER_CREDENTIAL",
        default_value_t = 32
    )]
    pub max_in_flight_per_credential: usize,
    /// Requests one org may have running at once (more wait their turn);
    /// 0: three quarters of the database pool.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_MAX_IN_FLIGHT_PER_ORG",
        default_value_t = 0
    )]
    pub max_in_flight_per_org: usize,
    /// Seconds a client has to send a request's headers before its connection is closed.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub header_read_timeout_secs: u64,
    /// Open connections at most; more are closed as they arrive.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,
    /// Database connections the pool may open, at most 1000; 0: 8 on SQLite
    /// (one writer anyway), 16 on PostgreSQL.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_DB_POOL_SIZE",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=MAX_DB_POOL_SIZE as i64)
    )]
    pub db_pool_size: u32,
    /// A checkpoint of each org's grown log is signed at most this often, in seconds.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_CHECKPOINT_INTERVAL_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub checkpoint_interval_secs: u64,
    #[command(flatten)]
    pub log: LogKeyArgs,
    #[command(flatten)]
    pub streams: StreamArgs,
}

/// Log streams: where their destination secrets' key is, and where they may deliver.
#[derive(clap::Args, Debug, Clone)]
pub struct StreamArgs {
    /// The key that seals log stream destination secrets: base64 of 32
    /// random bytes. Overrides --stream-secrets-key-file. Every replica needs
    /// the same key.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_STREAM_SECRETS_KEY",
        hide_env_values = true
    )]
    pub stream_secrets_key: Option<String>,
    /// The file holding that key; written with a fresh key when missing.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_STREAM_SECRETS_KEY_FILE",
        default_value = "stream-secrets.key"
    )]
    pub stream_secrets_key_file: PathBuf,
    /// Lets log streams deliver to loopback, private and link-local addresses.
    #[arg(long, env = "ACTIVITY_GATEWAY_ALLOW_PRIVATE_STREAM_TARGETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_stream_targets: bool,
    /// A PEM file of CA certificates that log streams' TLS destinations may
    /// chain to besides the public roots (collectors and receivers on the
    /// operator's own network). Read and checked at startup.
    #[arg(long, env = "ACTIVITY_GATEWAY_STREAM_CA_FILE", value_name = "PEM_FILE", value_parser = stream_ca_file)]
    pub stream_ca_file: Option<crate::service::streams::trust::Trust>,
    /// Seconds a log stream may keep failing before that is recorded as an
    /// event of its org.
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_STREAM_ALERT_AFTER_SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=604_800)
    )]
    pub stream_alert_after_secs: u64,
    /// Log streams one replica delivers at once (each holds at most one batch).
    #[arg(
        long,
        env = "ACTIVITY_GATEWAY_STREAM_DELIVERERS",
        default_value_t = 16,
        value_parser = clap::value_parser!(u64).range(1..=256)
    )]
    pub stream_deliverers: u64,
}

impl Default for StreamArgs {
    fn default() -> Self {
        Self {
            stream_secrets_key: None,
            stream_secrets_key_file: PathBuf::from("stream-secrets.key"),
            allow_private_stream_targets: false,
            stream_ca_file: None,
            stream_alert_after_secs: 300,
            stream_deliverers: 16,
        }
    }
}

fn stream_ca_file(path: &str) -> Result<crate::service::streams::trust::Trust, String> {
    crate::service::streams::trust::Trust::from_pem_file(std::path::Path::new(path))
}

impl StreamArgs {
    pub fn settings(&self) -> crate::service::streams::StreamSettings {
        use crate::service::streams::seal::{KeySource, SealKey};
        let source = match &self.stream_secrets_key {
            Some(key) if !key.is_empty() => KeySource::Given(key.clone()),
            _ => KeySource::File(self.stream_secrets_key_file.clone()),
        };
        crate::service::streams::StreamSettings {
            key: SealKey::new(source),
            allow_private: self.allow_private_stream_targets,
            trust: self.stream_ca_file.clone().unwrap_or_default(),
            alert_after: Duration::from_secs(self.stream_alert_after_secs),
            max_deliverers: self.stream_deliverers as usize,
        }
    }
}

/// The largest pool `--db-pool-size` takes: past it, a pool would hold
/// more connections than a PostgreSQL server allows by default (100) many
/// times over.
pub const MAX_DB_POOL_SIZE: u32 = 1000;

impl Default for HttpArgs {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            cursor_secret: None,
            metrics_token: None,
            export_dir: PathBuf::from("exports"),
            export_keep_secs: 7 * 24 * 3600,
            max_body_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 30,
            record_requests: true,
            planned_reads: true,
            recorder_capacity: 65_536,
            rollup_interval_secs: 30,
            purge_interval_secs: 300,
            session_idle_minutes: 30,
            max_in_flight_per_credential: 32,
            max_in_flight_per_org: 0,
            header_read_timeout_secs: 10,
            max_connections: 10_000,
            db_pool_size: 0,
            checkpoint_interval_secs: 10,
            log: LogKeyArgs::default(),
            streams: StreamArgs::default(),
        }
    }
}

impl HttpArgs {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// When a session counts as active, as of now.
    pub fn activeness(&self) -> crate::service::sessions::Activeness {
        let idle = self.session_idle_minutes as i64 * crate::domain::time::MICROS_PER_MINUTE;
        crate::service::sessions::Activeness {
            seen_since: crate::domain::time::now_micros() - idle,
        }
    }

    pub fn export_jobs(&self) -> crate::service::export::jobs::JobSettings {
        crate::service::export::jobs::JobSettings {
            export_dir: self.export_dir.clone(),
            keep_for: Duration::from_secs(self.export_keep_secs),
            session_idle: Duration::from_secs(self.session_idle_minutes * 60),
            log: self.log.settings(),
        }
    }

    pub fn rollup_interval(&self) -> Duration {
        Duration::from_secs(self.rollup_interval_secs.max(1))
    }
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// How many activity events to write.
    #[arg(long, env = "ACTIVITY_GATEWAY_SEED_EVENTS", default_value_t = 200_000)]
    pub events: u64,
    /// Over how many days before now.
    #[arg(long, env = "ACTIVITY_GATEWAY_SEED_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// The random seed: the same seed gives the same ids and counts.
    #[arg(long, env = "ACTIVITY_GATEWAY_SEED", default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once, alone, as the last line.
    Create(KeyCreateArgs),
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The key's id (`key_...`), as `keys create` printed it.
        key_id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct KeyCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The org the key belongs to.
    #[arg(long, env = "ACTIVITY_GATEWAY_KEY_ORG")]
    pub org: String,
    /// admin, member or viewer (viewer when neither role nor permissions are given).
    #[arg(long, env = "ACTIVITY_GATEWAY_KEY_ROLE", value_parser = ["admin", "member", "viewer"])]
    pub role: Option<String>,
    /// Comma-separated `resource:action` permissions; they replace the role's.
    #[arg(long, env = "ACTIVITY_GATEWAY_KEY_PERMISSIONS", value_delimiter = ',')]
    pub permissions: Vec<String>,
    /// A user of the org the key acts as (its calls are that user's); none: the key itself.
    #[arg(long, env = "ACTIVITY_GATEWAY_KEY_USER")]
    pub user: Option<String>,
    /// A name to tell keys apart (at most 200 characters; default "api key").
    #[arg(long, env = "ACTIVITY_GATEWAY_KEY_NAME")]
    pub name: Option<String>,
}
