//! Turns each served request into an activity event of the caller's org
//! (what `/me/activity` shows). Only authenticated requests are recorded: handlers put the
//! principal into the response's extensions, and this layer reads it there.

use std::time::Instant;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::RequestExt as _;
use serde::Serialize;

use crate::auth::Principal;
use crate::domain::error::code_for_status;
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;
use crate::service::events::EventRow;
use crate::state::AppState;

/// The response header that carries the request's trace id.
pub const TRACE_HEADER: &str = "x-trace-id";

/// The matched route and its path parameters. Published by a layer inside the
/// router that matched (a nested router's parameters are not visible outside).
#[derive(Debug, Clone, Default)]
pub struct RouteInfo {
    pub route: Option<String>,
    pub params: Vec<(String, String)>,
}

/// Puts the matched route and its parameters into the response for [`record_requests`].
pub async fn publish_route(mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let params = match req.extract_parts::<RawPathParams>().await {
        Ok(p) => p
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut response = next.run(req).await;
    response
        .extensions_mut()
        .insert(RouteInfo { route, params });
    response
}

/// What a GraphQL request did, for the action of its event.
#[derive(Debug, Clone, Copy)]
pub struct OperationAction(pub &'static str);

/// How a GraphQL request went, beyond its HTTP status (which is 200 for an
/// answer with errors): the code of its first error, whether nothing of it
/// succeeded, and how many errors it answered.
#[derive(Debug, Clone)]
pub struct GraphqlOutcome {
    pub first_error_code: Option<String>,
    pub failed: bool,
    pub errors: usize,
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), if valid.
pub fn trace_id_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace, span, flags] = parts[..] else {
        return None;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid =
        hex(version, 2) && version != "ff" && hex(trace, 32) && hex(span, 16) && hex(flags, 2);
    (valid && trace.bytes().any(|b| b != b'0') && span.bytes().any(|b| b != b'0'))
        .then(|| trace.to_owned())
}

fn action_of(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "read",
        Method::PUT | Method::PATCH => "update",
        Method::DELETE => "delete",
        _ => "create",
    }
}

/// A recorded call's `metadata`, its members in this order.
#[derive(Serialize)]
struct RecordedMetadata<'a> {
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<usize>,
}

pub async fn record_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let trace_id =
        trace_id_of(req.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let outer_route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect::<String>());

    let mut response = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_HEADER, value);
    }
    if !state.recorder.is_enabled() {
        return response;
    }
    // Taken out, not cloned: they were put there for this layer alone, and
    // nothing outside it reads them.
    let extensions = response.extensions_mut();
    let Some(principal) = extensions.remove::<Principal>() else {
        return response;
    };
    let outcome = extensions.remove::<GraphqlOutcome>();
    let RouteInfo { route, params } = extensions.remove::<RouteInfo>().unwrap_or(RouteInfo {
        route: outer_route,
        params: Vec::new(),
    });
    let action = extensions
        .get::<OperationAction>()
        .map(|a| a.0)
        .unwrap_or_else(|| action_of(&method));
    let status = response.status();
    let ok = status.as_u16() < 400 && !outcome.as_ref().is_some_and(|o| o.failed);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // Hierarchy ids go only on successful writes. A read must not change what
    // it read (a recorded page view would otherwise join the endpoint's own
    // feed and shift it under the reader); a failed request may name another
    // org's workspace, whose feed must not show it. Reads still name what they
    // read in `resource_type`/`resource_id`, and show in the caller's own feed.
    let attach_ids = ok && action != "read";
    let owned = |name: &str| if attach_ids { param(name) } else { None };
    let (resource_type, resource_id) = match params.iter().rev().find(|(k, _)| k.ends_with("_id")) {
        Some((k, v)) => (k.trim_end_matches("_id").to_owned(), Some(v.clone())),
        None if path == "/graphql" => ("graphql".to_owned(), None),
        None => ("route".to_owned(), None),
    };
    let metadata = RecordedMetadata {
        route: route.as_deref(),
        mcp_client: principal.mcp_client.as_deref(),
        user_agent: user_agent.as_deref(),
        errors: outcome.as_ref().map(|o| o.errors).filter(|n| *n > 0),
    };
    state.recorder.record(EventRow {
        id: new_id(IdKind::Activity),
        org_id: principal.org_id,
        ts: now_micros(),
        trace_id: Some(trace_id),
        user_id: principal.user_id,
        workspace_id: owned("workspace_id"),
        app_id: owned("app_id"),
        endpoint_id: owned("endpoint_id"),
        augmentation_id: owned("augmentation_id"),
        principal_type: Some(principal.principal_type.to_owned()),
        principal_id: Some(principal.principal_id),
        token_id: principal.token_id,
        token_type: Some(principal.token_type.to_owned()),
        method: Some(method.to_string()),
        path: Some(path),
        resource_type: Some(resource_type),
        resource_id,
        action: action.to_owned(),
        status_code: i32::from(status.as_u16()),
        success: ok,
        error_code: match outcome.and_then(|o| o.first_error_code) {
            Some(code) => Some(code),
            None => (!ok).then(|| code_for_status(status.as_u16()).to_owned()),
        },
        duration_ms: started.elapsed().as_millis() as i64,
        execution_id: None,
        stages_completed: None,
        total_stages: None,
        token_usage: "{}".to_owned(),
        tokens_total: 0,
        // Serialising a struct of texts and a number cannot fail.
        metadata: serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".to_owned()),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_headers_are_read_only_when_valid() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            trace_id_of(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "nonsense",
        ] {
            h.insert("traceparent", HeaderValue::from_static(bad));
            assert_eq!(trace_id_of(&h), None, "{bad}");
        }
    }
}
