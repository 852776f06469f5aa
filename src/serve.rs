//! The HTTP/1.1 server loop. axum's own `serve` has no header read timeout
//! and no cap on connections; here a client gets `header_read_timeout` to
//! send its request's headers (slow clients cannot hold connections
//! forever), and at most `max_connections` are open at once (more are
//! closed as they arrive). Upgrades (WebSockets) are served. A request
//! hyper cannot parse gets its answer in the error envelope, like every
//! other error ([`Enveloped`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
        // Handlers that care who is on the other end (`/metrics`) find the
        // peer's address in the request's extensions, as axum's own
        // `ConnectInfo`.
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection = http
            .serve_connection(
                TokioIo::new(Enveloped::new(tcp)),
                TowerToHyperService::new(service),
            )
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                ended = connection.as_mut() => {
                    // A request hyper could not parse, or a peer gone mid-way:
                    // the operator sees why, the client saw the envelope.
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended by an error");
                    }
                }
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

/// A connection on which hyper's own answers to requests it cannot parse (a
/// malformed request line or header: 400; a head past its read buffer: 431;
/// a URI past its limit: 414) go out in the error envelope. hyper writes
/// those answers itself, head only, with no way to give them a body; they
/// are the only 4xx answers without a `content-type` (every answer of the
/// router carries one), which is how they are recognised as they are
/// written. The envelope replaces them whole.
pub struct Enveloped<T> {
    io: T,
    /// The envelope that replaced hyper's answer, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> Enveloped<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> Enveloped<T> {
    /// Writes what is left of the replacement; ready once all of it is out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The envelope for hyper's bodiless answer in `head`, if `head` is one.
fn envelope_for(head: &[u8]) -> Option<Vec<u8>> {
    use crate::domain::error::AppError;
    let error = match head.get(..13)? {
        b"HTTP/1.1 400 " => AppError::BadRequest,
        b"HTTP/1.1 414 " => AppError::UriTooLong,
        b"HTTP/1.1 431 " => AppError::HeadersTooLarge,
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    let bodiless = text.ends_with("\r\n\r\n") && text.contains("\r\ncontent-length: 0\r\n");
    if !bodiless || text.contains("\r\ncontent-type:") {
        return None;
    }
    let status = crate::http_error::status(&error);
    let body = crate::rest::error::envelope(&error).to_string();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    Some(answer)
}

impl<T: AsyncRead + Unpin> AsyncRead for Enveloped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Enveloped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(answer) = envelope_for(buf) {
            tracing::info!(
                status = %String::from_utf8_lossy(&buf[9..12]),
                "refused a request that could not be parsed"
            );
            self.replacement = Some((answer, 0));
            // hyper's bytes count as written: the envelope goes out instead.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    // One flat buffer per write, so that hyper's answer arrives whole in
    // `poll_write` (hyper flattens its writes when vectored ones are off).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_answers_are_replaced() {
        let hypers = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 23 Nov 2026 04:02:02 GMT\r\n\r\n";
        let answer = String::from_utf8(envelope_for(hypers).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "BAD_REQUEST");
        assert_eq!(body["status_code"], 400);
        let too_large = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(envelope_for(too_large).unwrap())
            .unwrap()
            .contains("\"HEADERS_TOO_LARGE\""));
        // The router's own answers carry a content type (or a body): untouched.
        for ours in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert!(envelope_for(ours).is_none());
        }
    }
}
