//! `/graphql` over HTTP: POST (queries and mutations), GET (queries only),
//! and a GET that upgrades to a WebSocket (`graphql-transport-ws`) for
//! subscriptions.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::parser::types::OperationType;
use async_graphql::Data;
use async_graphql::{BatchRequest, BatchResponse, ErrorExtensionValues, Request, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::auth;
use crate::error::{AppError, InvalidInput};
use crate::recording::OperationAction;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

pub async fn post_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            let input = InvalidInput::new(
                &["body"],
                "json_invalid",
                "JSON decode error",
                serde_json::json!({}),
            )
            .with_ctx(serde_json::json!({ "error": e.to_string() }));
            return AppError::invalid(input).into_response();
        }
    };
    // Parsed here only for the recorded action; nothing else needs it.
    let action = if state.recorder.is_enabled() {
        batch_action(&batch)
    } else {
        "read"
    };
    execute(&state, &headers, batch, action).await
}

pub async fn get_handler(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return subscribe(state, parts).await;
    }
    let (headers, query) = (parts.headers, parts.uri.query());
    let request = match async_graphql::http::parse_query_string(query.unwrap_or_default()) {
        Ok(request) => request,
        Err(e) => {
            let input = InvalidInput::new(
                &["query"],
                "query_invalid",
                e.to_string(),
                serde_json::Value::Null,
            );
            return AppError::invalid(input).into_response();
        }
    };
    // GET must never change state.
    if mutation_action(&request).is_some() {
        let mut response = AppError::MethodNotAllowed.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &headers, BatchRequest::Single(request), "read").await
}

/// A WebSocket for subscriptions. The credential comes in the upgrade's
/// headers or, as browsers cannot set headers on a WebSocket, in the
/// `connection_init` payload as header names and values
/// (`{"X-Api-Key": "..."}`); a bad one there ends the connection (close
/// code 1002, the error's message as the reason).
async fn subscribe(state: AppState, mut parts: Parts) -> Response {
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(_) => {
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
            Ok(principal) => Some(principal),
            Err(e) => return graphql_error_response(e),
        }
    } else {
        None
    };
    let recorded = from_headers.clone();
    let mut response = upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let schema = state.schema.clone();
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let principal = match from_headers {
                        Some(principal) => principal,
                        None => auth::resolve(&state.db, state.jwt_secret(), &headers_of(&payload))
                            .await
                            .map_err(|e| e.to_graphql())?,
                    };
                    let mut data = Data::default();
                    data.insert(std::sync::Arc::new(super::loaders::Loaders::new(
                        &state.db,
                        &principal.org_id,
                        &state.settings,
                    )));
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
                .await
        })
        .into_response();
    if let Some(principal) = recorded {
        response.extensions_mut().insert(principal);
    }
    response
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

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    batch: BatchRequest,
    action: &'static str,
) -> Response {
    let principal = match auth::resolve(&state.db, state.jwt_secret(), headers).await {
        Ok(p) => p,
        Err(e) => return graphql_error_response(e),
    };
    let loaders = std::sync::Arc::new(super::loaders::Loaders::new(
        &state.db,
        &principal.org_id,
        &state.settings,
    ));
    let mut response = state
        .schema
        .execute_batch(batch.data(principal.clone()).data(loaders))
        .await;
    match &mut response {
        BatchResponse::Single(r) => with_codes(&mut r.errors),
        BatchResponse::Batch(rs) => rs.iter_mut().for_each(|r| with_codes(&mut r.errors)),
    }
    let body = serde_json::to_vec(&response).unwrap_or_default();
    let mut answer = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type(headers))],
        body,
    )
        .into_response();
    answer.extensions_mut().insert(principal);
    answer.extensions_mut().insert(OperationAction(action));
    answer
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
    (status, axum::Json(body)).into_response()
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
