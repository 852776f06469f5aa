//! `/graphql` over HTTP: POST (queries and mutations), GET (queries only),
//! and a GET that upgrades to a WebSocket (`graphql-transport-ws`) for
//! subscriptions.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::Data;
use async_graphql::{BatchRequest, BatchResponse, ErrorExtensionValues, Request, ServerError};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::budget::{SharedBudget, MAX_BATCH_OPERATIONS};
use crate::app::AppState;
use crate::auth;
use crate::error::{AppError, InvalidInput};
use crate::recording::{GraphqlOutcome, OperationAction};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

pub async fn post_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The credential first: without one, the answer is 401 whatever the body.
    let principal = match auth::resolve(&state.db, state.jwt_secret(), &headers).await {
        Ok(p) => p,
        Err(e) => return graphql_error_response(e),
    };
    let read = if is_json_body(&headers) {
        read_batch(&body)
    } else {
        Err(refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A GraphQL POST body is JSON: send it with `Content-Type: application/json`".into(),
        ))
    };
    let mut response = match read {
        Ok(BatchRequest::Single(mut request)) => {
            match state
                .schemas
                .documents
                .resolve_persisted(&principal.org_id, &mut request)
            {
                Ok(()) => {
                    let action = recorded_action(&state, &request);
                    execute(
                        &state,
                        &headers,
                        &principal,
                        BatchRequest::Single(request),
                        action,
                    )
                    .await
                }
                Err(error) => refused(&state, &headers, error),
            }
        }
        Ok(BatchRequest::Batch(requests)) => {
            // A batch is recorded with what its first request does.
            let action = requests
                .first()
                .map_or("read", |first| recorded_action(&state, first));
            let batch = BatchRequest::Batch(requests);
            execute(&state, &headers, &principal, batch, action).await
        }
        Err(refusal) => refusal,
    };
    // Recorded like every answer to an authenticated request.
    response.extensions_mut().insert(principal);
    response
}

/// Whether a POST body is declared as JSON: `application/json` (or
/// `application/graphql-response+json`), in UTF-8 if a charset is named.
/// Anything else, a missing type included, is 415: a form or `text/plain`
/// body is what a browser sends cross-site without asking first.
fn is_json_body(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    let json = essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case(GRAPHQL_RESPONSE);
    json && parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

/// The body's operations, or the answer that refuses them: an empty body,
/// malformed JSON or a body not shaped like GraphQL requests (400, with a
/// message that says what is wrong), more than [`MAX_BATCH_OPERATIONS`]
/// operations (400), text that no backend can store (422).
fn read_batch(body: &[u8]) -> Result<BatchRequest, Response> {
    let bad = |message: String| refusal(StatusCode::BAD_REQUEST, message);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            "The body is empty: send a JSON object with a `query` string".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "The body is not valid JSON: {}",
            crate::error::first_line(&e.to_string())
        ))
    })?;
    if let serde_json::Value::Array(requests) = &value {
        if requests.len() > MAX_BATCH_OPERATIONS {
            return Err(bad(format!(
                "A request holds at most {MAX_BATCH_OPERATIONS} operations; this one holds {}",
                requests.len()
            )));
        }
    }
    if let Some(problem) = shape_problem(&value) {
        return Err(bad(problem));
    }
    let batch: BatchRequest = serde_json::from_value(value)
        .map_err(|_| bad("The body is not a GraphQL request".into()))?;
    let unstorable: Vec<InvalidInput> = match &batch {
        BatchRequest::Single(r) => unstorable_text(r, &["body".into()]),
        BatchRequest::Batch(rs) => rs
            .iter()
            .enumerate()
            .flat_map(|(i, r)| unstorable_text(r, &["body".into(), i.into()]))
            .collect(),
    };
    if unstorable.is_empty() {
        Ok(batch)
    } else {
        Err(AppError::Invalid(unstorable).into_response())
    }
}

/// What is wrong with the shape of a POST body, if anything: one request
/// object, or an array of them.
fn shape_problem(body: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match body {
        Value::Object(request) => request_problem(request),
        Value::Array(requests) if requests.is_empty() => {
            Some("The array holds no operation".into())
        }
        Value::Array(requests) => requests.iter().enumerate().find_map(|(i, r)| match r {
            Value::Object(request) => {
                request_problem(request).map(|p| format!("Operation {i}: {p}"))
            }
            _ => Some(format!("Operation {i} is not a JSON object")),
        }),
        _ => Some(
            "The body must be a JSON object with a `query` string, or an array of such objects"
                .into(),
        ),
    }
}

/// What is wrong with one request object's members, if anything.
fn request_problem(request: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    use serde_json::Value;
    let persisted = request
        .get("extensions")
        .and_then(|e| e.get("persistedQuery"))
        .is_some();
    match request.get("query") {
        Some(Value::String(_)) => {}
        None if persisted => {}
        None => return Some("`query` is missing".into()),
        Some(_) => return Some("`query` must be a string".into()),
    }
    match request.get("operationName") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(_) => return Some("`operationName` must be a string or null".into()),
    }
    ["variables", "extensions"]
        .into_iter()
        .find(|member| {
            !matches!(
                request.get(*member),
                None | Some(Value::Null | Value::Object(_))
            )
        })
        .map(|member| format!("`{member}` must be an object or null"))
}

pub async fn get_handler(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return subscribe(state, parts).await;
    }
    let principal = match auth::resolve(&state.db, state.jwt_secret(), &parts.headers).await {
        Ok(p) => p,
        Err(e) => return graphql_error_response(e),
    };
    let mut response = match read_query_string(parts.uri.query()) {
        Ok(mut request) => {
            let persisted = state
                .schemas
                .documents
                .resolve_persisted(&principal.org_id, &mut request);
            match persisted {
                Err(error) => refused(&state, &parts.headers, error),
                // GET never changes state, whatever text a hash names.
                Ok(()) if mutation_action(&state, &request).is_some() => {
                    let mut response = AppError::MethodNotAllowed.into_response();
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                    response
                }
                Ok(()) => {
                    execute(
                        &state,
                        &parts.headers,
                        &principal,
                        BatchRequest::Single(request),
                        "read",
                    )
                    .await
                }
            }
        }
        Err(refusal) => refusal,
    };
    response.extensions_mut().insert(principal);
    response
}

/// The operation of a GET (`query`, `operationName`, and `variables` and
/// `extensions` as JSON text), or the answer that refuses it: 400 for
/// parameters that are missing or not JSON objects. (Whether the operation
/// is a mutation, which GET refuses, is known once a persisted query's text
/// is.)
fn read_query_string(query: Option<&str>) -> Result<Request, Response> {
    let bad = |message: String| refusal(StatusCode::BAD_REQUEST, message);
    let (mut document, mut operation_name, mut variables, mut extensions) =
        (None, None, None, None);
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "query" => document = Some(value.into_owned()),
            "operationName" => operation_name = Some(value.into_owned()),
            "variables" => variables = Some(value.into_owned()),
            "extensions" => extensions = Some(value.into_owned()),
            _ => {}
        }
    }
    let json_object = |member: &str, text: Option<String>| match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Null) => Ok(None),
            Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
            _ => Err(bad(format!("`{member}` must be a JSON object"))),
        },
    };
    // Without `query`, a persisted query's hash in `extensions` must name
    // the text.
    let has_text = document.is_some();
    if !has_text && extensions.is_none() {
        return Err(bad("`query` is missing".into()));
    }
    let mut request = Request::new(document.unwrap_or_default());
    if let Some(name) = operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    if let Some(value) = json_object("variables", variables)? {
        request = request.variables(async_graphql::Variables::from_json(value));
    }
    if let Some(serde_json::Value::Object(members)) = json_object("extensions", extensions)? {
        for (name, value) in members {
            let value = async_graphql::Value::from_json(value)
                .map_err(|_| bad("`extensions` must be a JSON object".into()))?;
            request.extensions.insert(name, value);
        }
    }
    if !has_text && !request.extensions.contains_key("persistedQuery") {
        return Err(bad("`query` is missing".into()));
    }
    let unstorable = unstorable_text(&request, &["query".into()]);
    if !unstorable.is_empty() {
        return Err(AppError::Invalid(unstorable).into_response());
    }
    Ok(request)
}

/// How often an open WebSocket checks that its credential still holds: a
/// revoked key or an expired JWT ends it within this time (plus one lookup).
const CREDENTIAL_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// graphql-transport-ws's "Forbidden": a refused or no longer valid credential.
const CLOSE_FORBIDDEN: u16 = 4403;

/// A WebSocket for subscriptions. The credential comes in the upgrade's
/// headers or, as browsers cannot set headers on a WebSocket, in the
/// `connection_init` payload as header names and values
/// (`{"X-Api-Key": "..."}`); a bad one there closes the socket with 4403.
async fn subscribe(state: AppState, mut parts: Parts) -> Response {
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
        match auth::resolve(&state.db, state.jwt_secret(), &parts.headers).await {
            Ok(principal) => Some((principal, parts.headers.clone())),
            Err(e) => return graphql_error_response(e),
        }
    } else {
        None
    };
    let recorded = from_headers.as_ref().map(|(p, _)| p.clone());
    let mut response = upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_socket(state, socket, protocol, from_headers))
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
    state: AppState,
    socket: axum::extract::ws::WebSocket,
    protocol: WebSocketProtocols,
    from_headers: Option<(auth::Principal, HeaderMap)>,
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
                    let headers = headers_of(&payload);
                    match auth::resolve(&state.db, state.jwt_secret(), &headers).await {
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
            data.insert(std::sync::Arc::new(super::loaders::Loaders::new(
                &state.db,
                &principal.org_id,
                &state.settings,
            )));
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
                match auth::resolve(&state.db, state.jwt_secret(), &headers).await {
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

/// Text in a GraphQL request that a backend could not store: a NUL in the
/// document (raw, or as the escape `\u0000` / `\u{0}` of a string literal)
/// or in the variables. Refused before execution, like NUL anywhere else.
fn unstorable_text(request: &Request, at: &[serde_json::Value]) -> Vec<InvalidInput> {
    use crate::domain::text::{unstorable_at, unstorable_in_json};
    let mut loc = at.to_vec();
    let query = &request.query;
    let escapes_nul = query.match_indices("\\u").any(|(i, _)| {
        let rest = &query[i + 2..];
        rest.starts_with("0000")
            || rest
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .is_some_and(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b == b'0'))
    });
    let mut problems = Vec::new();
    if query.contains('\0') || escapes_nul {
        loc.push("query".into());
        problems.push(unstorable_at(loc.clone(), serde_json::Value::Null));
        loc.pop();
    }
    if let Ok(variables) = serde_json::to_value(&request.variables) {
        loc.push("variables".into());
        problems.extend(unstorable_in_json(&variables, &loc));
    }
    problems
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

/// Runs the operations for `principal`. The caller puts the principal into
/// the answer for the recorder, whatever this answers.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    principal: &auth::Principal,
    batch: BatchRequest,
    action: &'static str,
) -> Response {
    let _place = match state.admission.admit(principal).await {
        Ok(place) => place,
        Err(e) => return graphql_error_response(e),
    };
    let loaders = std::sync::Arc::new(super::loaders::Loaders::new(
        &state.db,
        &principal.org_id,
        &state.settings,
    ));
    let ran = match batch {
        BatchRequest::Single(request) => {
            run_single(state, request.data(principal.clone()).data(loaders)).await
        }
        batch => Ran {
            response: state
                .schemas
                .guarded
                .execute_batch(
                    batch
                        .data(principal.clone())
                        .data(loaders)
                        .data(SharedBudget::default()),
                )
                .await,
            // Batches answer 200 whatever each operation did.
            refused_before_execution: false,
            operation: ("batch", "batch".to_owned()),
        },
    };
    answer(state, headers, ran, action)
}

/// What running a request gave.
struct Ran {
    response: BatchResponse,
    /// Refused before execution began (parse, validation, limits): a
    /// "request error" in GraphQL over HTTP's terms.
    refused_before_execution: bool,
    /// The type and first root field of what ran, for `/metrics`.
    operation: (&'static str, String),
}

/// One operation on the plain schema: its document prepared here
/// ([`super::documents`]), its answer put in selection order here.
async fn run_single(state: &AppState, mut request: Request) -> Ran {
    let schemas = &state.schemas;
    let document = match schemas.documents.prepare(&schemas.types, &request) {
        Ok(document) => document,
        Err(error) => return refused_with(async_graphql::Response::from_errors(vec![error])),
    };
    let operation_name = request.operation_name.clone();
    request.set_parsed_query(async_graphql::parser::types::ExecutableDocument::clone(
        &document,
    ));
    let mut response = schemas.plain.execute(request).await;
    // async-graphql refuses before execution (validation, variables, an
    // unknown operation) with no data and errors that name no field; every
    // error of execution names its field's path.
    let began = !matches!(response.data, async_graphql::Value::Null)
        || response.errors.iter().any(|e| !e.path.is_empty());
    if !began {
        return refused_with(response);
    }
    super::ordering::order_answer(&mut response.data, &document, operation_name.as_deref());
    let operation = super::ordering::operation(&document, operation_name.as_deref())
        .map(super::ordering::label)
        .unwrap_or(("none", "none".to_owned()));
    Ran {
        response: BatchResponse::Single(response),
        refused_before_execution: false,
        operation,
    }
}

/// A single operation refused before execution.
fn refused_with(response: async_graphql::Response) -> Ran {
    Ran {
        response: BatchResponse::Single(response),
        refused_before_execution: true,
        operation: ("none", "none".to_owned()),
    }
}

/// A request refused before it ran (a persisted query that cannot be used),
/// answered as GraphQL over HTTP answers request errors.
fn refused(state: &AppState, headers: &HeaderMap, error: ServerError) -> Response {
    let ran = refused_with(async_graphql::Response::from_errors(vec![error]));
    answer(state, headers, ran, "read")
}

/// The HTTP answer to what ran, with what the recorder and `/metrics` need.
fn answer(state: &AppState, headers: &HeaderMap, ran: Ran, action: &'static str) -> Response {
    let mut response = ran.response;
    match &mut response {
        BatchResponse::Single(r) => with_codes(&mut r.errors),
        BatchResponse::Batch(rs) => rs.iter_mut().for_each(|r| with_codes(&mut r.errors)),
    }
    count_operations(state, &response, &ran.operation);
    let mut answer = body(headers, &response, ran.refused_before_execution);
    answer.extensions_mut().insert(OperationAction(action));
    answer.extensions_mut().insert(outcome_of(&response));
    answer
}

/// The body, serialised once. A request error has no `data` entry, and
/// under graphql-response+json it is a 400.
fn body(headers: &HeaderMap, response: &BatchResponse, request_error: bool) -> Response {
    #[derive(serde::Serialize)]
    struct Refused<'a> {
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
        errors: &'a [ServerError],
    }
    let media = content_type(headers);
    let (status, bytes) = match response {
        BatchResponse::Single(r) if request_error => (
            if media == GRAPHQL_RESPONSE {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            },
            serde_json::to_vec(&Refused {
                extensions: &r.extensions,
                errors: &r.errors,
            }),
        ),
        response => (StatusCode::OK, serde_json::to_vec(response)),
    };
    (
        status,
        [(header::CONTENT_TYPE, media)],
        bytes.unwrap_or_default(),
    )
        .into_response()
}

/// Counts each operation of the answer for `/metrics`: by type and first
/// root field (`none` when it never ran; a batch's operations count as
/// `batch`) and whether it answered data without errors (`ok`), data and
/// errors (`partial`) or errors alone (`error`).
fn count_operations(
    state: &AppState,
    response: &BatchResponse,
    operation: &(&'static str, String),
) {
    let outcome = |r: &async_graphql::Response| {
        let data = !matches!(r.data, async_graphql::Value::Null);
        match (data, r.errors.is_empty()) {
            (true, true) => "ok",
            (true, false) => "partial",
            (false, _) => "error",
        }
    };
    let responses = match response {
        BatchResponse::Single(r) => std::slice::from_ref(r),
        BatchResponse::Batch(rs) => rs.as_slice(),
    };
    for r in responses {
        state
            .telemetry
            .graphql_operation(operation.0, &operation.1, outcome(r));
    }
}

/// How the request went, for its record: it failed when no operation of it
/// produced data (parse, validation, limits, permission, not found...).
fn outcome_of(response: &BatchResponse) -> GraphqlOutcome {
    let responses: Vec<&async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter().collect(),
    };
    let errors: Vec<&ServerError> = responses.iter().flat_map(|r| &r.errors).collect();
    let first_error_code =
        errors
            .first()
            .and_then(|e| match e.extensions.as_ref()?.get("code")? {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            });
    GraphqlOutcome {
        first_error_code,
        failed: !errors.is_empty()
            && responses.iter().all(|r| {
                matches!(r.data, async_graphql::Value::Null)
                    || matches!(&r.data, async_graphql::Value::Object(fields) if fields.values().all(|v| matches!(v, async_graphql::Value::Null)))
            }),
        errors: errors.len(),
    }
}

/// The action a GraphQL request is recorded with: `read` for queries, and for
/// a mutation what its first root field does. Looked at only when requests
/// are recorded.
fn recorded_action(state: &AppState, request: &Request) -> &'static str {
    if !state.recorder.is_enabled() {
        return "read";
    }
    mutation_action(state, request).unwrap_or("read")
}

/// `Some(action)` when the operation the request selects is a mutation.
/// Unparseable queries are left for the executor to refuse.
fn mutation_action(state: &AppState, request: &Request) -> Option<&'static str> {
    let document = state.schemas.documents.parse(&request.query).ok()?;
    let operation = super::ordering::operation(&document, request.operation_name.as_deref())?;
    // What a mutation does, by its first root field.
    match super::ordering::label(operation) {
        ("mutation", field) => Some(match field.as_str() {
            "ingestActivity" | "createProblem" => "create",
            "resolveProblem" => "update",
            _ => "execute",
        }),
        _ => None,
    }
}

/// Parse, validation and limit errors come from async-graphql without our
/// extensions: they are the client's input, so they get `BAD_USER_INPUT`.
fn with_codes(errors: &mut [ServerError]) {
    for error in errors {
        let ext = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
            ext.set("status_code", 400);
            ext.set("details", async_graphql::Value::Object(Default::default()));
        }
    }
}

/// A request the transport refuses before execution (400, 415): a GraphQL
/// error with no `data` entry, as GraphQL over HTTP answers a request it
/// cannot run.
fn refusal(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": message,
            "extensions": { "code": "BAD_USER_INPUT", "status_code": status.as_u16(), "details": {} }
        }]
    });
    (status, axum::Json(body)).into_response()
}

/// A request that never reached the schema (no valid credential): HTTP status
/// from the error, body in GraphQL's shape so GraphQL clients can show it.
fn graphql_error_response(error: AppError) -> Response {
    let status = error.status();
    let body = serde_json::json!({
        "errors": [{
            "message": error.to_string(),
            "extensions": { "code": error.code(), "status_code": status.as_u16(), "details": error.details() }
        }]
    });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn content_type(headers: &HeaderMap) -> &'static str {
    let accepts = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accepts.contains(GRAPHQL_RESPONSE) {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    }
}
