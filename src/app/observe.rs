//! What an operator watches: the request span that continues a caller's
//! trace, the per-route measurements, and `/metrics`.

use std::net::SocketAddr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::error::AppError;
use crate::service;
use crate::state::AppState;

/// A caller that sent a W3C `traceparent` gets its trace continued: the
/// request's span (and with it every database query made for the request)
/// becomes a child of the caller's span. Without the header, or without an
/// OTLP exporter, nothing changes.
pub(super) fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !headers.contains_key("traceparent") {
        return;
    }
    let caller = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers));
    // Refused only when the span is disabled (no exporter): nothing to continue.
    let _ = span.set_parent(caller);
}

/// Who may scrape `/metrics`: with a metrics token configured, whoever sends
/// it as a bearer token (compared in constant time); without one, only
/// connections from this machine. Org credentials play no part: scrapers
/// hold none, and the figures are the process's, never an org's data.
fn may_scrape(settings: &crate::config::HttpArgs, req: &Request) -> Result<(), AppError> {
    match settings.metrics_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => {
            let sent = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            use subtle::ConstantTimeEq as _;
            let same = bool::from(sent.as_bytes().ct_eq(token.as_bytes()));
            same.then_some(()).ok_or(AppError::Unauthenticated)
        }
        None => {
            let peer = req
                .extensions()
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            match peer {
                Some(ip) if ip.is_loopback() => Ok(()),
                _ => Err(AppError::Forbidden {
                    required_permission: "metrics",
                }),
            }
        }
    }
}

/// The process's figures in the Prometheus text format: requests and
/// GraphQL operations as they happened, and the figures of the moment (pool,
/// rollup lag, recorder, live tail). Who may read them: [`may_scrape`].
pub(super) async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    if let Err(refused) = may_scrape(&state.settings, &req) {
        return refused.into_response();
    }
    use crate::telemetry::{Kind, Reading};
    let reading = |name, help, kind, value: f64| Reading {
        name,
        help,
        kind,
        value,
        labels: Vec::new(),
    };
    let (size, idle) = crate::db::pool_usage(&state.db);
    let mut readings = vec![
        reading(
            "activity_gateway_recorder_dropped_total",
            "Recorded requests dropped because the recorder's buffer was full.",
            Kind::Counter,
            state.recorder.dropped() as f64,
        ),
        reading(
            "activity_gateway_recorder_lost_total",
            "Recorded requests the database refused or could not take (after retries, one by one).",
            Kind::Counter,
            state.recorder.lost() as f64,
        ),
        reading(
            "activity_gateway_recorder_queued",
            "Recorded requests waiting in the recorder's buffer.",
            Kind::Gauge,
            state.recorder.queued() as f64,
        ),
        reading(
            "activity_gateway_live_subscriptions",
            "Open activityAdded subscriptions.",
            Kind::Gauge,
            state.live.subscribers() as f64,
        ),
        reading(
            "activity_gateway_db_pool_connections",
            "Connections the database pool holds open.",
            Kind::Gauge,
            size as f64,
        ),
        reading(
            "activity_gateway_db_pool_idle",
            "Open pool connections no request is using.",
            Kind::Gauge,
            idle as f64,
        ),
        reading(
            "activity_gateway_db_pool_in_use",
            "Pool connections requests are using.",
            Kind::Gauge,
            size.saturating_sub(idle) as f64,
        ),
    ];
    // Counted where this process's logs are set up (the binary does).
    if let Some(pool) = crate::telemetry::POOL_ACQUISITIONS.counts() {
        readings.extend([
            reading(
                "activity_gateway_db_pool_acquires_total",
                "Connections the database pool handed out.",
                Kind::Counter,
                pool.acquired as f64,
            ),
            reading(
                "activity_gateway_db_pool_waits_total",
                "Connections handed out after a wait (over 1 ms): none was idle.",
                Kind::Counter,
                pool.waited as f64,
            ),
        ]);
    }
    // The rollups' lag needs the database; without it the other figures still answer.
    if let Ok(lag) = service::rollups::lag(&state.db).await {
        readings.push(reading(
            "activity_gateway_rollup_unfolded_events",
            "Events not folded into the hourly rollups yet.",
            Kind::Gauge,
            lag.unfolded_events as f64,
        ));
        if let Some(seconds) = lag.seconds_since_fold {
            readings.push(reading(
                "activity_gateway_rollup_seconds_since_fold",
                "Seconds since a refresh last folded events into the rollups.",
                Kind::Gauge,
                seconds,
            ));
        }
    }
    if let Ok(jobs) = service::export::jobs::by_status(&state.db).await {
        for (status, count) in jobs {
            readings.push(Reading {
                labels: vec![("state", status.as_str().to_owned())],
                ..reading(
                    "activity_gateway_export_jobs",
                    "Export jobs of every org by state (pending, running, done, failed), unexpired.",
                    Kind::Gauge,
                    count as f64,
                )
            });
        }
    }
    if let Ok(streams) = service::streams::every_stream(&state.db).await {
        readings.extend(stream_readings(&streams));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.telemetry.render(&readings),
    )
        .into_response()
}

/// Each log stream's health, the figures `Org.logStreams` answers, labelled
/// by `org` and `stream` (its id); `state` is 1 for the stream's status and
/// 0 for the others.
fn stream_readings(streams: &[service::streams::Stream]) -> Vec<crate::telemetry::Reading> {
    use crate::telemetry::{Kind, Reading};
    use service::streams::StreamStatus;
    let mut readings = Vec::new();
    for s in streams {
        let labels = vec![("org", s.org_id.clone()), ("stream", s.id.clone())];
        let mut add = |name, help, kind, value: f64, extra: Option<(&'static str, String)>| {
            let mut labels = labels.clone();
            labels.extend(extra);
            readings.push(Reading {
                name,
                help,
                kind,
                value,
                labels,
            });
        };
        add(
            "activity_gateway_log_stream_lag_events",
            "Events of the org's log past the stream's cursor.",
            Kind::Gauge,
            s.lag_events as f64,
            None,
        );
        add(
            "activity_gateway_log_stream_lag_seconds",
            "Age of the oldest event past the stream's cursor, by its timestamp.",
            Kind::Gauge,
            s.lag_seconds,
            None,
        );
        add(
            "activity_gateway_log_stream_delivered_total",
            "Events the stream's destination acknowledged.",
            Kind::Counter,
            s.delivered_total as f64,
            None,
        );
        add(
            "activity_gateway_log_stream_purged_total",
            "Events retention purged before the stream reached them.",
            Kind::Counter,
            s.purged_total as f64,
            None,
        );
        if let Some(at) = s.last_delivered_at {
            add(
                "activity_gateway_log_stream_last_delivered_timestamp_seconds",
                "When the stream's destination last acknowledged a batch.",
                Kind::Gauge,
                at as f64 / 1e6,
                None,
            );
        }
        for status in [
            StreamStatus::Active,
            StreamStatus::Paused,
            StreamStatus::Failing,
        ] {
            add(
                "activity_gateway_log_stream_state",
                "1 for the stream's status (active, paused, failing), 0 for the others.",
                Kind::Gauge,
                f64::from(u8::from(s.status == status)),
                Some(("state", status.as_str().to_owned())),
            );
        }
    }
    readings
}

/// Counts and times every answer by matched route, method and status.
pub(super) async fn measure_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let response = next.run(req).await;
    state.telemetry.request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
