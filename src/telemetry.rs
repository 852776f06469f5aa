//! The figures an operator's tools read, in the Prometheus text format at
//! `/metrics`. Events (requests, GraphQL operations) go through the `metrics`
//! facade into this gateway's own recorder (several gateways can share a
//! process, as the tests do); figures of a moment (pool, rollup lag, queues,
//! subscriptions) are read when scraped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const HTTP_REQUESTS: &str = "activity_gateway_http_requests_total";
pub const HTTP_DURATION: &str = "activity_gateway_http_request_duration_seconds";
pub const GRAPHQL_OPERATIONS: &str = "activity_gateway_graphql_operations_total";
pub const GRAPHQL_PLANNED: &str = "activity_gateway_graphql_planned_total";

/// Latency buckets, in seconds: from a cached page to a timed-out request.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The operation names that have a series of their own.
    operation_names: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Operation names that get a series of their own: the first ones seen, up
/// to this many, each at most [`MAX_OPERATION_NAME_BYTES`] long. Names are
/// the client's choice, so past these they count as `other`, and no client
/// can grow the series without end.
pub const MAX_OPERATION_NAMES: usize = 100;
pub const MAX_OPERATION_NAME_BYTES: usize = 64;

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/metrics` says of a GraphQL operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationLabel {
    /// `query`, `mutation`, `subscription`; `none` when refused before it
    /// ran; `batch` for the operations of a JSON array.
    pub kind: &'static str,
    /// The first root field (`none`, `batch` as above).
    pub field: String,
    /// The operation's name in its document, when it has one.
    pub name: Option<String>,
}

impl OperationLabel {
    /// An operation that never ran, or one of a batch.
    pub fn of(kind: &'static str) -> Self {
        Self {
            kind,
            field: kind.to_owned(),
            name: None,
        }
    }
}

/// One figure of the moment, set when `/metrics` is scraped.
pub struct Reading {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub value: f64,
    /// The labels of a figure with several series (`state` of export
    /// jobs; `org`, `stream` of log streams).
    pub labels: Vec<(&'static str, String)>,
}

pub enum Kind {
    Counter,
    Gauge,
}

impl Telemetry {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let telemetry = Self {
            recorder,
            handle,
            operation_names: Default::default(),
        };
        telemetry.with(|| {
            metrics::describe_counter!(
                HTTP_REQUESTS,
                "HTTP requests answered, by matched route, method and status."
            );
            metrics::describe_histogram!(
                HTTP_DURATION,
                metrics::Unit::Seconds,
                "Time to answer an HTTP request, by matched route, method and status."
            );
            metrics::describe_counter!(
                GRAPHQL_OPERATIONS,
                "GraphQL operations over HTTP, by operation type, first root field, name (the first 100 names; others: other) and outcome (ok, partial, error)."
            );
            metrics::describe_counter!(
                GRAPHQL_PLANNED,
                "GraphQL operations over HTTP answered by a planned read rather than the general executor."
            );
            // Shown from the start, so that zero reads as zero.
            counter!(GRAPHQL_PLANNED).increment(0);
        });
        telemetry
    }

    fn with(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// One answered HTTP request. `route` is the matched route template
    /// (`/v1/orgs/{org_id}/activity`), never the raw path, so the series stay
    /// as few as the routes.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let labels = [
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        self.with(|| {
            counter!(HTTP_REQUESTS, &labels).increment(1);
            histogram!(HTTP_DURATION, &labels).record(took.as_secs_f64());
        });
    }

    /// One GraphQL operation: its type and first root field (which the
    /// schema bounds), its name (bounded by [`MAX_OPERATION_NAMES`]) and
    /// how it went.
    pub fn graphql_operation(&self, operation: &OperationLabel, outcome: &str) {
        let labels = [
            ("type", operation.kind.to_owned()),
            ("field", operation.field.clone()),
            ("name", self.name_label(operation.name.as_deref())),
            ("outcome", outcome.to_owned()),
        ];
        self.with(|| counter!(GRAPHQL_OPERATIONS, &labels).increment(1));
    }

    /// One operation answered by a planned read.
    pub fn graphql_planned(&self) {
        self.with(|| counter!(GRAPHQL_PLANNED).increment(1));
    }

    /// The `name` label of an operation: `anonymous` without a name, the
    /// name itself while there is room, `other` past it.
    fn name_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        if name.len() > MAX_OPERATION_NAME_BYTES {
            return "other".to_owned();
        }
        let mut names = self
            .operation_names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if names.contains(name) || names.len() < MAX_OPERATION_NAMES {
            names.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// The text a scraper reads, with `readings` of the moment.
    pub fn render(&self, readings: &[Reading]) -> String {
        self.with(|| {
            for reading in readings {
                match reading.kind {
                    Kind::Counter => {
                        metrics::describe_counter!(reading.name, reading.help);
                        counter!(reading.name, &reading.labels).absolute(reading.value as u64);
                    }
                    Kind::Gauge => {
                        metrics::describe_gauge!(reading.name, reading.help);
                        gauge!(reading.name, &reading.labels).set(reading.value);
                    }
                }
            }
        });
        self.handle.render()
    }
}

/// OpenTelemetry traces over OTLP (HTTP, JSON), when the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
/// names a collector: every `tracing` span (one per request, named by its
/// matched route, and the ones inside it) becomes an OpenTelemetry span. The
/// exporter reads the standard variables itself (endpoint, headers,
/// timeout); the service name is `OTEL_SERVICE_NAME` or `activity-gateway`.
/// `None` without an endpoint, or when the exporter cannot be built (said on
/// stderr: logs are not set up yet).
pub fn otlp_tracer() -> Option<(
    opentelemetry_sdk::trace::SdkTracerProvider,
    opentelemetry_sdk::trace::Tracer,
)> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    if !configured {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("warning: OpenTelemetry traces are off: {e}");
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "activity-gateway".into());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    let tracer = provider.tracer("activity-gateway");
    Some((provider, tracer))
}

/// How the database pool handed out its connections, for the process: sqlx
/// reports each acquisition, with the time it took, as a trace-level
/// `sqlx::pool::acquire` event (`db::connect` turns that on), and
/// [`PoolAcquisitions::layer`] counts them. One count per process, because
/// events name no pool; a deployment runs one gateway per process.
pub struct PoolAcquisitions {
    counting: AtomicBool,
    acquired: AtomicU64,
    waited: AtomicU64,
}

/// An acquisition slower than this found no idle connection at hand: taking
/// an idle one (tested with a ping when it sat idle) takes well under it.
pub const POOL_WAITED_OVER: Duration = Duration::from_millis(1);

pub static POOL_ACQUISITIONS: PoolAcquisitions = PoolAcquisitions {
    counting: AtomicBool::new(false),
    acquired: AtomicU64::new(0),
    waited: AtomicU64::new(0),
};

/// What [`PoolAcquisitions`] counted so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolCounts {
    pub acquired: u64,
    pub waited: u64,
}

impl PoolAcquisitions {
    /// The `tracing` layer that counts the pool's acquisitions; the counts
    /// are reported once it is installed (by `main`).
    pub fn layer<S>() -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer as _;
        POOL_ACQUISITIONS.counting.store(true, Ordering::Relaxed);
        PoolAcquisitionLayer.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(ACQUIRE_TARGET, tracing::Level::TRACE),
        )
    }

    /// The counts, or `None` when nothing counts them in this process.
    pub fn counts(&self) -> Option<PoolCounts> {
        self.counting.load(Ordering::Relaxed).then(|| PoolCounts {
            acquired: self.acquired.load(Ordering::Relaxed),
            waited: self.waited.load(Ordering::Relaxed),
        })
    }

    fn count(&self, took: Duration) {
        self.acquired.fetch_add(1, Ordering::Relaxed);
        if took > POOL_WAITED_OVER {
            self.waited.fetch_add(1, Ordering::Relaxed);
        }
    }
}

const ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

struct PoolAcquisitionLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PoolAcquisitionLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != ACQUIRE_TARGET {
            return;
        }
        let mut took = AcquiredAfter(None);
        event.record(&mut took);
        if let Some(took) = took.0.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
            POOL_ACQUISITIONS.count(took);
        }
    }
}

/// The `acquired_after_secs` field of sqlx's acquisition event.
struct AcquiredAfter(Option<f64>);

impl tracing::field::Visit for AcquiredAfter {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "acquired_after_secs" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn acquisitions_are_counted_from_sqlx_events_and_waits_past_a_millisecond_not_at_it() {
        let counts = || POOL_ACQUISITIONS.counts().unwrap();
        let subscriber = tracing_subscriber::registry().with(PoolAcquisitions::layer());
        tracing::subscriber::with_default(subscriber, || {
            let before = counts();
            tracing::trace!(target: "sqlx::pool::acquire", acquired_after_secs = 0.0002_f64, "acquired connection");
            // At the threshold: no wait; just past it: a wait.
            tracing::trace!(target: "sqlx::pool::acquire", acquired_after_secs = 0.001_f64, "acquired connection");
            tracing::trace!(target: "sqlx::pool::acquire", acquired_after_secs = 0.0011_f64, "acquired connection");
            tracing::warn!(target: "sqlx::pool::acquire", acquired_after_secs = 2.5_f64, "slow");
            tracing::trace!(target: "sqlx::pool::other", acquired_after_secs = 9.0_f64, "not counted");
            tracing::trace!(target: "sqlx::pool::acquire", "no time: not counted");
            tracing::trace!(target: "sqlx::pool::acquire", acquired_after_secs = -1.0_f64, "no time: not counted");
            let after = counts();
            assert_eq!(after.acquired - before.acquired, 4);
            assert_eq!(after.waited - before.waited, 2);
        });
    }
}
