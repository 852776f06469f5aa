//! The HTTP/1.1 server loop. axum's own `serve` has no header read timeout
//! and no cap on connections; here a client gets `header_read_timeout` to
//! send its request's headers (slow clients cannot hold connections
//! forever), and at most `max_connections` are open at once (more are
//! closed as they arrive). Upgrades (WebSockets) are served.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// How long shutdown waits for requests in flight to finish.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let open = Arc::new(Semaphore::new(max as usize));
    let (stopping, stop) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.max(Duration::from_millis(100)));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait, don't spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(place) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many open connections");
            drop(tcp);
            continue;
        };
        // Small responses go out at once instead of waiting on the peer's
        // delayed ACK (measured: 25 ms per page of 50 without this).
        let _ = tcp.set_nodelay(true);
        let connection = http
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()))
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(place);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every place back means every connection is done.
    let _ = tokio::time::timeout(DRAIN, open.acquire_many(max)).await;
    Ok(())
}
