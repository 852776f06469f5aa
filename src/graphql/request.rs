//! Reading a GraphQL request from HTTP: a POST body or a GET's query
//! string, refused before anything runs when it is not a GraphQL request
//! (400, 415) or holds text no backend can store (422).

use async_graphql::{BatchRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::budget::MAX_BATCH_OPERATIONS;
use super::error::refusal;
use super::http::GRAPHQL_RESPONSE;
use crate::domain::error::{AppError, InvalidInput};

/// Whether a POST body is declared as JSON: `application/json` (or
/// `application/graphql-response+json`), in UTF-8 if a charset is named.
/// Anything else, a missing type included, is 415: a form or `text/plain`
/// body is what a browser sends cross-site without asking first.
pub(super) fn is_json_body(headers: &HeaderMap) -> bool {
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
pub(super) fn read_batch(body: &[u8]) -> Result<BatchRequest, Response> {
    let bad = |message: String| refusal(StatusCode::BAD_REQUEST, message);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            "The body is empty: send a JSON object with a `query` string".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "The body is not valid JSON: {}",
            crate::domain::error::first_line(&e.to_string())
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

/// The operation of a GET (`query`, `operationName`, and `variables` and
/// `extensions` as JSON text), or the answer that refuses it: 400 for
/// parameters that are missing or not JSON objects. (Whether the operation
/// is a mutation, which GET refuses, is known once a persisted query's text
/// is.)
pub(super) fn read_query_string(query: Option<&str>) -> Result<Request, Response> {
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
