//! The HTTP application: the router, and a server that binds first, reports
//! its port, and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{self, Principal};
use crate::domain::error::AppError;
use crate::graphql;
use crate::service::export::jobs::ExportRunner;
use crate::service::live::LiveFeed;
use crate::service::recorder::Recorder;
pub use crate::state::AppState;
use crate::{graphiql, recording, rest, service};

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .nest(crate::operations::ORG_ROUTES, rest::orgs::router())
        .nest(crate::operations::ARTIFACTS, rest::artifacts::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_principal,
        ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    rest::openapi::json(),
                )
            }),
        )
        .merge(graphql::router(&state))
        .merge(graphiql::router())
        .merge(protected)
        .fallback(unknown_route)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.settings.request_timeout(),
        ))
        // The configured limit is the one that applies: axum's own 2 MiB
        // default for buffered bodies is switched off in its favour.
        .layer(RequestBodyLimitLayer::new(state.settings.max_body_bytes))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn(refuse_unstorable_text))
        .layer(middleware::from_fn(refuse_oversized_heads))
        // A bug that panics answers a 500 like any other, and costs its
        // connection nothing.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        // Outside the limit and timeout layers, so their bare answers get the envelope too.
        .layer(middleware::from_fn(envelope_errors))
        // Outside everything that can answer, so every authenticated answer is recorded.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            recording::record_requests,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            measure_requests,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The matched route, never the raw path: ids and query strings stay out of span names.
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let span = tracing::info_span!("request", method = %req.method(), route);
            continue_trace(&span, req.headers());
            span
        }))
        .with_state(state)
}

/// A caller that sent a W3C `traceparent` gets its trace continued: the
/// request's span (and with it every database query made for the request)
/// becomes a child of the caller's span. Without the header, or without an
/// OTLP exporter, nothing changes.
fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
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

/// Resolves the credential once and hands the principal to the handlers.
async fn require_principal(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let principal: Principal = auth::resolve(&state.db, state.jwt_secret(), req.headers()).await?;
    let admitted = state.admission.admit(&principal).await;
    let mut response = match admitted {
        Ok(_place) => {
            req.extensions_mut().insert(principal.clone());
            next.run(req).await
        }
        Err(refused) => refused.into_response(),
    };
    // For the recorder, which runs outside and sees only the response.
    response.extensions_mut().insert(principal);
    Ok(response)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    if service::ping(&state.db).await {
        Ok(Json(
            serde_json::json!({ "status": "ok", "database": "ok" }),
        ))
    } else {
        Err(AppError::Unavailable)
    }
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
async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    if let Err(refused) = may_scrape(&state.settings, &req) {
        return refused.into_response();
    }
    use crate::telemetry::{Kind, Reading};
    let reading = |name, help, kind, value: f64| Reading {
        name,
        help,
        kind,
        value,
        label: None,
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
                label: Some(("state", status.as_str())),
                ..reading(
                    "activity_gateway_export_jobs",
                    "Export jobs of every org by state (pending, running, done, failed), unexpired.",
                    Kind::Gauge,
                    count as f64,
                )
            });
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.telemetry.render(&readings),
    )
        .into_response()
}

/// Counts and times every answer by matched route, method and status.
async fn measure_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
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

/// The longest request URI answered; longer is 414 in the envelope.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) answered; more is 431 in the
/// envelope. (Past hyper's own read buffer, some 400 KiB, hyper answers
/// before the router sees the request; `serve::Enveloped` puts that answer
/// in the envelope too.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

async fn refuse_oversized_heads(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if uri > MAX_URI_BYTES {
        AppError::UriTooLong.into_response()
    } else if headers > MAX_HEADER_BYTES {
        AppError::HeadersTooLarge.into_response()
    } else {
        next.run(req).await
    }
}

/// Paths and query strings whose decoded text a backend could not store (a
/// NUL character) are refused before anything else sees them: 422 at
/// `["path"]` or `["query", name]`, the same on every backend.
async fn refuse_unstorable_text(req: Request, next: Next) -> Response {
    use crate::domain::text::{is_storable, unstorable_at};
    let uri = req.uri();
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    let mut problems = Vec::new();
    if !is_storable(&path) {
        problems.push(unstorable_at(vec!["path".into()], path.as_ref()));
    }
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if !is_storable(&name) || !is_storable(&value) {
            problems.push(unstorable_at(
                vec!["query".into(), name.as_ref().into()],
                value.as_ref(),
            ));
        }
    }
    if problems.is_empty() {
        next.run(req).await
    } else {
        AppError::Invalid(problems).into_response()
    }
}

fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let cause = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    AppError::internal_msg(format!("handler panicked: {cause}")).into_response()
}

async fn unknown_route(req: Request) -> AppError {
    AppError::not_found("route", req.uri().path())
}

/// Responses that layers or axum produced without our envelope (413 from the
/// body limit, 408 from the timeout, 405 from the method router) get it here,
/// so every error a client sees has one shape.
async fn envelope_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => AppError::not_found("route", path),
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::REQUEST_TIMEOUT => AppError::Timeout,
        StatusCode::SERVICE_UNAVAILABLE => AppError::Unavailable,
        StatusCode::URI_TOO_LONG => AppError::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => AppError::HeadersTooLarge,
        s if s.is_server_error() => AppError::internal_msg(format!("unenveloped {s} response")),
        _ => AppError::invalid(crate::domain::error::InvalidInput::new(
            &["request"],
            "invalid_request",
            "The request is invalid",
            serde_json::Value::Null,
        )),
    };
    let mut enveloped = error.into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) = response.headers().get(header::ALLOW) {
            enveloped.headers_mut().insert(header::ALLOW, allow.clone());
        }
    }
    enveloped
}

/// A bound server: the port is known before it serves (tests bind port 0).
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: crate::serve::Limits,
    recorder: Recorder,
    live: LiveFeed,
    exports: ExportRunner,
    db: DatabaseConnection,
}

impl Application {
    pub async fn build(state: AppState, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {bind}: {e}"))?;
        let (recorder, live) = (state.recorder.clone(), state.live.clone());
        let (exports, db) = (state.exports.clone(), state.db.clone());
        let limits = crate::serve::Limits {
            header_read_timeout: std::time::Duration::from_secs(
                state.settings.header_read_timeout_secs,
            ),
            max_connections: state.settings.max_connections,
        };
        Ok(Self {
            listener,
            limits,
            router: router(state),
            recorder,
            live,
            exports,
            db,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, finishes the requests in flight,
    /// then writes every recorded request still buffered and ends the live
    /// subscriptions (WebSockets outlive the graceful shutdown otherwise).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let served = crate::serve::serve(self.listener, self.router, self.limits, shutdown).await;
        self.recorder.close().await;
        self.live.close();
        self.exports.stop(&self.db).await;
        served?;
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}
