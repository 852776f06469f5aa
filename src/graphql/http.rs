//! `/graphql` over HTTP: POST (queries and mutations), GET (queries only),
//! and a GET that upgrades to a WebSocket (`socket.rs`) for subscriptions.

use crate::telemetry::OperationLabel;
use async_graphql::{BatchRequest, BatchResponse, Request, ServerError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::budget::SharedBudget;
use super::error::{graphql_error_response, refusal, with_codes};
use super::request::{is_json_body, read_batch, read_query_string};
use super::GraphqlState;
use crate::auth;
use crate::domain::error::AppError;
use crate::recording::{GraphqlOutcome, OperationAction};

pub(super) const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

pub use super::socket::INIT_TIMEOUT;

pub async fn post_handler(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The credential first: without one, the answer is 401 whatever the body.
    let principal = match auth::resolve(&state.db, &state.keys, state.jwt_secret(), &headers).await
    {
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

pub async fn get_handler(
    State(state): State<GraphqlState>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return super::socket::subscribe(state, parts).await;
    }
    let principal =
        match auth::resolve(&state.db, &state.keys, state.jwt_secret(), &parts.headers).await {
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
                    let mut response = graphql_error_response(AppError::MethodNotAllowed);
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

/// Runs the operations for `principal`. The caller puts the principal into
/// the answer for the recorder, whatever this answers.
async fn execute(
    state: &GraphqlState,
    headers: &HeaderMap,
    principal: &auth::Principal,
    batch: BatchRequest,
    action: &'static str,
) -> Response {
    let _place = match state.admission.admit(principal).await {
        Ok(place) => place,
        Err(e) => return graphql_error_response(e),
    };
    let ran = match batch {
        BatchRequest::Single(request) => run_single(state, principal, request).await,
        batch => Ran {
            response: Answered::Executed(
                state
                    .schemas
                    .guarded
                    .execute_batch(
                        batch
                            .data(principal.clone())
                            .data(state.loaders_for(principal))
                            .data(SharedBudget::default()),
                    )
                    .await,
            ),
            // Batches answer 200 whatever each operation did.
            refused_before_execution: false,
            operation: OperationLabel::of("batch"),
        },
    };
    answer(state, headers, ran, action)
}

/// What running a request gave.
struct Ran {
    response: Answered,
    /// Refused before execution began (parse, validation, limits): a
    /// "request error" in GraphQL over HTTP's terms.
    refused_before_execution: bool,
    /// What ran, for `/metrics`.
    operation: OperationLabel,
}

/// An answer as the executor gave it, or as a plan wrote it (data only,
/// no error: a plan that meets an error leaves the answer to the executor).
enum Answered {
    Executed(BatchResponse),
    Planned(Vec<u8>),
}

/// One operation: answered by its document's plan when it has one that
/// covers the request ([`super::plan`]), else on the plain schema, its
/// document prepared here ([`super::documents`]) and its answer put in
/// selection order here.
async fn run_single(state: &GraphqlState, principal: &auth::Principal, request: Request) -> Ran {
    let schemas = &state.schemas;
    let document = match schemas.documents.prepare(&schemas.types, &request) {
        Ok(document) => document,
        Err(error) => return refused_with(async_graphql::Response::from_errors(vec![error])),
    };
    let operation_name = request.operation_name.clone();
    if let Some(plan) = state
        .settings
        .planned_reads
        .then(|| document.plan(operation_name.as_deref()))
        .flatten()
    {
        let context = super::plan::Context {
            db: &state.db,
            summaries: state.summaries(),
            principal,
            cursors: &schemas.cursors,
        };
        if let Some(bytes) = plan.execute(&context, &request.variables).await {
            state.telemetry.graphql_planned();
            return Ran {
                response: Answered::Planned(bytes),
                refused_before_execution: false,
                operation: plan.label.clone(),
            };
        }
    }
    let mut request = request
        .data(principal.clone())
        .data(state.loaders_for(principal));
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
    document.executed();
    super::ordering::order_answer(&mut response.data, &document, operation_name.as_deref());
    let operation = super::ordering::operation(&document, operation_name.as_deref())
        .map(|ran| {
            let (kind, field) = super::ordering::label(ran);
            OperationLabel {
                kind,
                field,
                name: super::ordering::operation_name(&document, operation_name.as_deref()),
            }
        })
        .unwrap_or_else(|| OperationLabel::of("none"));
    Ran {
        response: Answered::Executed(BatchResponse::Single(response)),
        refused_before_execution: false,
        operation,
    }
}

/// A single operation refused before execution.
fn refused_with(response: async_graphql::Response) -> Ran {
    Ran {
        response: Answered::Executed(BatchResponse::Single(response)),
        refused_before_execution: true,
        operation: OperationLabel::of("none"),
    }
}

/// A request refused before it ran (a persisted query that cannot be used),
/// answered as GraphQL over HTTP answers request errors.
fn refused(state: &GraphqlState, headers: &HeaderMap, error: ServerError) -> Response {
    let ran = refused_with(async_graphql::Response::from_errors(vec![error]));
    answer(state, headers, ran, "read")
}

/// The HTTP answer to what ran, with what the recorder and `/metrics` need.
fn answer(state: &GraphqlState, headers: &HeaderMap, ran: Ran, action: &'static str) -> Response {
    let mut answer = match ran.response {
        Answered::Planned(bytes) => {
            state.telemetry.graphql_operation(&ran.operation, "ok");
            let mut answer = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type(headers))],
                bytes,
            )
                .into_response();
            answer.extensions_mut().insert(GraphqlOutcome {
                first_error_code: None,
                failed: false,
                errors: 0,
            });
            answer
        }
        Answered::Executed(mut response) => {
            match &mut response {
                BatchResponse::Single(r) => with_codes(&mut r.errors),
                BatchResponse::Batch(rs) => rs.iter_mut().for_each(|r| with_codes(&mut r.errors)),
            }
            count_operations(state, &response, &ran.operation);
            let mut answer = body(headers, &response, ran.refused_before_execution);
            answer.extensions_mut().insert(outcome_of(&response));
            answer
        }
    };
    answer.extensions_mut().insert(OperationAction(action));
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

/// Counts each operation of the answer for `/metrics`: by type, first
/// root field and name (`none` when it never ran; a batch's operations
/// count as `batch`) and whether it answered data without errors (`ok`),
/// data and errors (`partial`) or errors alone (`error`).
fn count_operations(state: &GraphqlState, response: &BatchResponse, operation: &OperationLabel) {
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
        state.telemetry.graphql_operation(operation, outcome(r));
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
fn recorded_action(state: &GraphqlState, request: &Request) -> &'static str {
    if !state.recorder.is_enabled() {
        return "read";
    }
    mutation_action(state, request).unwrap_or("read")
}

/// `Some(action)` when the operation the request selects is a mutation.
/// Unparseable queries are left for the executor to refuse.
fn mutation_action(state: &GraphqlState, request: &Request) -> Option<&'static str> {
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
