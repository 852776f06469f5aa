//! `/graphql` over a WebSocket (`graphql-transport-ws`), for subscriptions:
//! async-graphql's protocol machine, held to the protocol's close codes, with
//! the credential checked at the start and again while the socket is open.

use super::error::ToGraphql;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::Data;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::graphql_error_response;
use super::GraphqlState;
use crate::auth;
use crate::domain::error::{AppError, InvalidInput};

/// How often an open WebSocket checks that its credential still holds: a
/// revoked key or an expired JWT ends it within this time (plus one lookup).
const CREDENTIAL_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// graphql-transport-ws's "Forbidden": a refused or no longer valid credential.
const CLOSE_FORBIDDEN: u16 = 4403;

/// A WebSocket for subscriptions. The credential comes in the upgrade's
/// headers or, as browsers cannot set headers on a WebSocket, in the
/// `connection_init` payload as header names and values
/// (`{"X-Api-Key": "..."}`); a bad one there closes the socket with 4403.
pub(super) async fn subscribe(state: GraphqlState, mut parts: Parts) -> Response {
    let protocol = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let protocol = match protocol {
        Some(protocol) => protocol,
        None => {
            let input = InvalidInput::new(
                &["header", "sec-websocket-protocol"],
                "value_error",
                "Use the graphql-transport-ws subprotocol",
                serde_json::Value::Null,
            );
            return AppError::invalid(input).into_response();
        }
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let from_headers = if auth::has_credential(&parts.headers) {
        match auth::resolve(&state.db, &state.keys, state.jwt_secret(), &parts.headers).await {
            Ok(principal) => Some((principal, parts.headers.clone())),
            Err(e) => return graphql_error_response(e),
        }
    } else {
        None
    };
    let recorded = from_headers.as_ref().map(|(p, _)| p.clone());
    // Where the browser opened the socket from: a credential sent in
    // `connection_init` is checked as coming from there, whatever its
    // payload says.
    let opened_from: HeaderMap = [header::ORIGIN, header::HOST]
        .into_iter()
        .filter_map(|name| parts.headers.get(&name).map(|v| (name, v.clone())))
        .collect();
    let mut response = upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_socket(state, socket, protocol, from_headers, opened_from))
        .into_response();
    if let Some(principal) = recorded {
        response.extensions_mut().insert(principal);
    }
    response
}

/// async-graphql's protocol machine over the socket, plus what it does not
/// do: graphql-transport-ws's own close codes ([`Session::admit`]), a
/// `connection_init` within [`INIT_TIMEOUT`] (else 4408), and the
/// credential checked again every [`CREDENTIAL_RECHECK`] (a refused or
/// lapsed one closes the socket with 4403).
async fn serve_socket(
    state: GraphqlState,
    socket: axum::extract::ws::WebSocket,
    protocol: WebSocketProtocols,
    from_headers: Option<(auth::Principal, HeaderMap)>,
    opened_from: HeaderMap,
) {
    use async_graphql::futures_util::{SinkExt as _, StreamExt as _};
    use axum::extract::ws::{CloseFrame, Message};

    // The headers that authenticated this socket, once known; `refused`
    // tells a failed `connection_init` from the protocol's own closes.
    let credential = std::sync::Arc::new(std::sync::Mutex::new(
        from_headers.as_ref().map(|(_, h)| h.clone()),
    ));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut sink, mut source) = socket.split();
    // Client messages reach async-graphql's machine only past the session's
    // checks (the legacy subscriptions-transport-ws passes unchecked).
    let (to_machine, machine_input) = tokio::sync::mpsc::unbounded_channel::<axum::body::Bytes>();
    let input = Box::pin(async_graphql::futures_util::stream::unfold(
        machine_input,
        |mut rx| async move { rx.recv().await.map(|message| (message, rx)) },
    ));
    let checked = protocol == WebSocketProtocols::GraphQLWS;
    let mut session = Session::default();
    let init = {
        let (state, credential, refused) = (state.clone(), credential.clone(), refused.clone());
        move |payload: serde_json::Value| async move {
            let (principal, headers) = match from_headers {
                Some(known) => known,
                None => {
                    let mut headers = headers_of(&payload);
                    for name in [header::ORIGIN, header::HOST] {
                        headers.remove(&name);
                        if let Some(value) = opened_from.get(&name) {
                            headers.insert(name, value.clone());
                        }
                    }
                    match auth::resolve(&state.db, &state.keys, state.jwt_secret(), &headers).await
                    {
                        Ok(principal) => (principal, headers),
                        Err(e) => {
                            refused.store(true, std::sync::atomic::Ordering::Relaxed);
                            return Err(e.to_graphql());
                        }
                    }
                }
            };
            if let Ok(mut known) = credential.lock() {
                *known = Some(headers);
            }
            let mut data = Data::default();
            data.insert(state.loaders_for(&principal));
            data.insert(principal);
            Ok(data)
        }
    };
    let mut messages =
        async_graphql::http::WebSocket::new(state.schemas.guarded.clone(), input, protocol)
            .on_connection_init(init);
    let mut recheck = tokio::time::interval(CREDENTIAL_RECHECK);
    recheck.tick().await;
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let outgoing = tokio::select! {
            incoming = source.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => axum::body::Bytes::from(text),
                    Some(Ok(Message::Binary(bytes))) if !checked => bytes,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = sink.send(close(CLOSE_BAD_MESSAGE, "Invalid message received: binary".into())).await;
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if checked {
                    if let Err((code, reason)) = session.admit(&text) {
                        let _ = sink.send(close(code, reason)).await;
                        break;
                    }
                }
                if to_machine.send(text).is_err() {
                    break;
                }
                continue;
            }
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => {
                    if !session.answered(&text) {
                        continue;
                    }
                    Message::Text(text.into())
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = if refused.load(std::sync::atomic::Ordering::Relaxed) {
                        CLOSE_FORBIDDEN
                    } else {
                        code
                    };
                    let _ = sink.send(close(code, reason)).await;
                    break;
                }
                None => break,
            },
            _ = &mut init_deadline, if checked && !session.initialised => {
                let reason = "Connection initialisation timeout".to_owned();
                let _ = sink.send(close(CLOSE_INIT_TIMEOUT, reason)).await;
                break;
            }
            _ = recheck.tick() => {
                let headers = credential.lock().ok().and_then(|h| h.clone());
                let Some(headers) = headers else { continue };
                match auth::resolve(&state.db, &state.keys, state.jwt_secret(), &headers).await {
                    Err(AppError::Unauthenticated) => {
                        let reason = "Forbidden: the credential is no longer valid".to_owned();
                        let _ = sink.send(close(CLOSE_FORBIDDEN, reason)).await;
                        break;
                    }
                    // A database outage is not the client's fault: check again later.
                    _ => continue,
                }
            }
        };
        if sink.send(outgoing).await.is_err() {
            break;
        }
    }
}

/// How long a socket may stay open without `connection_init`.
pub const INIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// graphql-transport-ws's close codes that async-graphql leaves to us.
const CLOSE_BAD_MESSAGE: u16 = 4400;
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_INIT_TIMEOUT: u16 = 4408;
const CLOSE_DUPLICATE_ID: u16 = 4409;
const CLOSE_TOO_MANY_INITS: u16 = 4429;

/// What a graphql-transport-ws socket has said so far, to hold its client to
/// the protocol.
#[derive(Default)]
struct Session {
    initialised: bool,
    acknowledged: bool,
    /// The ids of the client's running subscriptions.
    running: std::collections::HashSet<String>,
    /// Subscriptions the client completed: async-graphql answers each with a
    /// `complete` of its own, which the protocol does not have and which a
    /// client could take for the end of a new subscription under that id.
    completed_by_client: std::collections::HashSet<String>,
}

impl Session {
    /// Checks one client message: `Err((code, reason))` closes the socket.
    fn admit(&mut self, text: &[u8]) -> Result<(), (u16, String)> {
        use serde_json::Value;
        let invalid = |why: &str| {
            (
                CLOSE_BAD_MESSAGE,
                format!("Invalid message received: {why}"),
            )
        };
        let message: serde_json::Map<String, Value> =
            serde_json::from_slice(text).map_err(|_| invalid("not a JSON object"))?;
        let payload_is = |ok: fn(&Value) -> bool| message.get("payload").is_none_or(ok);
        let id = || match message.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err(invalid("`id` must be a non-empty string")),
        };
        match message.get("type").and_then(Value::as_str) {
            Some("connection_init") => {
                if self.initialised {
                    return Err((
                        CLOSE_TOO_MANY_INITS,
                        "Too many initialisation requests".into(),
                    ));
                }
                if !payload_is(|p| p.is_object() || p.is_null()) {
                    return Err(invalid("`payload` must be an object"));
                }
                self.initialised = true;
            }
            Some("ping" | "pong") => {
                if !payload_is(|p| p.is_object() || p.is_null()) {
                    return Err(invalid("`payload` must be an object"));
                }
            }
            Some("subscribe") => {
                let id = id()?;
                let query = message.get("payload").and_then(|p| p.get("query"));
                if !query.is_some_and(Value::is_string) {
                    return Err(invalid("`payload.query` must be a string"));
                }
                if !self.acknowledged {
                    return Err((CLOSE_UNAUTHORIZED, "Unauthorized".into()));
                }
                if !self.running.insert(id.clone()) {
                    return Err((
                        CLOSE_DUPLICATE_ID,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
            }
            Some("complete") => {
                let id = id()?;
                if self.running.remove(&id) {
                    self.completed_by_client.insert(id);
                }
            }
            Some(other) => return Err(invalid(&format!("unknown type `{other}`"))),
            None => return Err(invalid("`type` is missing")),
        }
        Ok(())
    }

    /// Notes what the server said: the acknowledgement, and the ends of
    /// subscriptions (whose ids may then be used again). False for a message
    /// that is not sent on: the echo of a client's own `complete`.
    fn answered(&mut self, text: &str) -> bool {
        #[derive(serde::Deserialize)]
        struct Said<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            id: Option<String>,
        }
        let Ok(said) = serde_json::from_str::<Said>(text) else {
            return true;
        };
        match (said.kind, said.id) {
            ("connection_ack", _) => self.acknowledged = true,
            ("complete", Some(id)) if self.completed_by_client.remove(&id) => return false,
            ("complete" | "error", Some(id)) => {
                self.running.remove(&id);
            }
            _ => {}
        }
        true
    }
}

/// A `connection_init` payload read as request headers: every string value
/// under its key, so the credential rules are those of HTTP.
fn headers_of(payload: &serde_json::Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in payload.as_object().into_iter().flatten() {
        let (Ok(name), Some(Ok(value))) = (
            header::HeaderName::try_from(name.as_str()),
            value.as_str().map(HeaderValue::from_str),
        ) else {
            continue;
        };
        headers.insert(name, value);
    }
    headers
}
