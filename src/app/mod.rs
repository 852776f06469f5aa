//! The HTTP application: the router, and a server that binds first, reports
//! its port, and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
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
use crate::{graphiql, recording, rest, service, viewer};

mod cors;
mod guards;
mod observe;

use guards::{envelope_errors, panicked, refuse_oversized_heads, refuse_unstorable_text};
pub use guards::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use observe::{continue_trace, measure_requests, metrics};

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
        .merge(viewer::router())
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
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
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

/// Resolves the credential once and hands the principal to the handlers.
async fn require_principal(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let principal: Principal =
        auth::resolve(&state.db, &state.keys, state.jwt_secret(), req.headers()).await?;
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

async fn unknown_route(req: Request) -> AppError {
    AppError::not_found("route", req.uri().path())
}

/// A bound server: the port is known before it serves (tests bind port 0).
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: crate::serve::Limits,
    recorder: Recorder,
    live: LiveFeed,
    exports: ExportRunner,
    streams: crate::service::streams::deliver::StreamRunner,
    db: DatabaseConnection,
}

impl Application {
    pub async fn build(state: AppState, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {bind}: {e}"))?;
        let (recorder, live) = (state.recorder.clone(), state.live.clone());
        let (exports, db) = (state.exports.clone(), state.db.clone());
        let streams = state.streams.clone();
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
            streams,
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
        self.streams.stop().await;
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
