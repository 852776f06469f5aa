//! `/graphql` over HTTP: POST (queries and mutations), GET (queries only),
//! and a GET that upgrades to a WebSocket (`graphql-transport-ws`) for
//! subscriptions.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
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
    let mut response = match read_batch(&body) {
        Ok(batch) => {
            // Parsed here only for the recorded action; nothing else needs it.
            let action = if state.recorder.is_enabled() {
                batch_action(&batch)
            } else {
                "read"
            };
            execute(&state, &headers, &principal, batch, action).await
        }
        Err(refusal) => refusal,
    };
    // Recorded like every answer to an authenticated request.
    response.extensions_mut().insert(principal);
    response
}

/// The body's operations, or the answer that refuses them: malformed JSON
/// (422), more than [`MAX_BATCH_OPERATIONS`] operations (400), text that no
/// backend can store (422).
fn read_batch(body: &[u8]) -> Result<BatchRequest, Response> {
    let batch: BatchRequest = serde_json::from_slice(body).map_err(|e| {
        let input = InvalidInput::new(
            &["body"],
            "json_invalid",
            "JSON decode error",
            serde_json::json!({}),
        )
        .with_ctx(serde_json::json!({ "error": e.to_string() }));
        AppError::invalid(input).into_response()
    })?;
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > MAX_BATCH_OPERATIONS {
            return Err(bad_request(format!(
                "A request holds at most {MAX_BATCH_OPERATIONS} operations; this one holds {}",
                requests.len()
            )));
        }
    }
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
        Ok(request) => {
            execute(
                &state,
                &parts.headers,
                &principal,
                BatchRequest::Single(request),
                "read",
            )
            .await
        }
        Err(refusal) => refusal,
    };
    response.extensions_mut().insert(principal);
    response
}

/// The operation of a GET, or the answer that refuses it; a mutation is 405,
/// as GET must never change state.
fn read_query_string(query: Option<&str>) -> Result<Request, Response> {
    let request =
        async_graphql::http::parse_query_string(query.unwrap_or_default()).map_err(|e| {
            let input = InvalidInput::new(
                &["query"],
                "query_invalid",
                e.to_string(),
                serde_json::Value::Null,
            );
            AppError::invalid(input).into_response()
        })?;
    let unstorable = unstorable_text(&request, &["query".into()]);
    if !unstorable.is_empty() {
        return Err(AppError::Invalid(unstorable).into_response());
    }
    if mutation_action(&request).is_some() {
        let mut response = AppError::MethodNotAllowed.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(response);
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
/// do: the credential is checked again every [`CREDENTIAL_RECHECK`], and a
/// refused or lapsed one closes the socket with 4403.
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
    let (mut sink, source) = socket.split();
    let input = source
        .take_while(|message| std::future::ready(message.is_ok()))
        .filter_map(|message| {
            std::future::ready(match message {
                Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
                Ok(Message::Binary(bytes)) => Some(bytes),
                _ => None,
            })
        });
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
    let mut messages = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(init);
    let mut recheck = tokio::time::interval(CREDENTIAL_RECHECK);
    recheck.tick().await;
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let outgoing = tokio::select! {
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => Message::Text(text.into()),
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
    let mut response = state
        .schema
        .execute_batch(
            batch
                .data(principal.clone())
                .data(loaders)
                .data(SharedBudget::default()),
        )
        .await;
    match &mut response {
        BatchResponse::Single(r) => with_codes(&mut r.errors),
        BatchResponse::Batch(rs) => rs.iter_mut().for_each(|r| with_codes(&mut r.errors)),
    }
    let outcome = outcome_of(&response);
    let body = serde_json::to_vec(&response).unwrap_or_default();
    let mut answer = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type(headers))],
        body,
    )
        .into_response();
    answer.extensions_mut().insert(OperationAction(action));
    answer.extensions_mut().insert(outcome);
    answer
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
/// a mutation what its first root field does (a batch: its first request).
fn batch_action(batch: &BatchRequest) -> &'static str {
    let first = match batch {
        BatchRequest::Single(r) => Some(r),
        BatchRequest::Batch(rs) => rs.first(),
    };
    first.and_then(mutation_action).unwrap_or("read")
}

/// `Some(action)` when the operation the request selects is a mutation.
/// Unparseable queries are left for the executor to refuse.
fn mutation_action(request: &Request) -> Option<&'static str> {
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    let (_, op) = doc.operations.iter().find(|(name, op)| {
        op.node.ty == OperationType::Mutation
            && match (&request.operation_name, name) {
                (Some(wanted), Some(name)) => wanted == name.as_str(),
                _ => true,
            }
    })?;
    let field = op
        .node
        .selection_set
        .node
        .items
        .iter()
        .find_map(|s| match &s.node {
            async_graphql::parser::types::Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        });
    Some(match field.as_deref() {
        Some("ingestActivity" | "createProblem") => "create",
        Some("resolveProblem") => "update",
        _ => "execute",
    })
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

/// A request the transport refuses before execution: 400 with a GraphQL
/// error, as the GraphQL over HTTP spec answers a request it cannot run.
fn bad_request(message: String) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": message,
            "extensions": { "code": "BAD_USER_INPUT", "status_code": 400, "details": {} }
        }]
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// A request that never reached the schema (no valid credential): HTTP status
/// from the error, body in GraphQL's shape so GraphQL clients can show it.
fn graphql_error_response(error: AppError) -> Response {
    let status = error.status();
    let body = serde_json::json!({
        "data": null,
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
