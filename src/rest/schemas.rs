//! The schema REST documents for an ingested event. The service reads
//! events as `service::ingest::IngestEvent`; this twin carries the rules of
//! each field for `/openapi.json`, so the service knows nothing of OpenAPI.
//! A test below holds the two to the same fields.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// One event as a client sends it: the reference's activity fields (and
/// `endpoint_id`). Only `action` is required; the rest have sensible defaults.
/// Rules between fields: `workspace_id`, `app_id`, `endpoint_id`,
/// `augmentation_id` and `user_id` name entities of the org that agree with
/// each other; `stages_completed` is at most `total_stages`; the
/// `token_usage` values add up to at most 1,000,000,000.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct IngestEvent {
    #[schema(max_length = 64, pattern = "^act_[^\\u0000]+$")]
    pub id: Option<String>,
    /// ISO 8601; naive means UTC; default now. From 1970 to a year ahead.
    #[schema(format = DateTime, max_length = 64)]
    pub timestamp: Option<String>,
    #[schema(max_length = 128, pattern = "^[^\\u0000]*$")]
    pub trace_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub user_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub workspace_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub app_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub endpoint_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub augmentation_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub principal_type: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub principal_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub token_id: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub token_type: Option<String>,
    #[schema(max_length = 16, pattern = "^[^\\u0000]*$")]
    pub method: Option<String>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000]*$")]
    pub path: Option<String>,
    #[schema(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub resource_type: Option<String>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000]*$")]
    pub resource_id: Option<String>,
    /// Required: 1 to 64 characters, not all blank.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    pub action: Option<String>,
    /// Default 200.
    #[schema(minimum = 100, maximum = 599)]
    pub status_code: Option<i64>,
    /// Default: `status_code < 400`.
    pub success: Option<bool>,
    #[schema(max_length = 128, pattern = "^[^\\u0000]*$")]
    pub error_code: Option<String>,
    /// Default 0; at most a day.
    #[schema(minimum = 0, maximum = 86_400_000)]
    pub duration_ms: Option<i64>,
    #[schema(max_length = 128, pattern = "^[^\\u0000]*$")]
    pub execution_id: Option<String>,
    #[schema(minimum = 0, maximum = 1000)]
    pub stages_completed: Option<i64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub total_stages: Option<i64>,
    /// Token counts by kind: integers from 0 to 1,000,000,000, adding up to
    /// at most 1,000,000,000.
    #[schema(schema_with = token_usage_schema)]
    pub token_usage: Option<BTreeMap<String, Value>>,
    /// Any JSON object (no NUL in its strings or member names).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// `token_usage`'s schema: counts from 0 to `MAX_TOKENS` by kind.
fn token_usage_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    let count = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(crate::service::ingest::MAX_TOKENS));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::RefOr(count.build().into())))
        .build()
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    /// serde names every field it accepts when it refuses an unknown one.
    fn fields_the_service_reads() -> Vec<String> {
        let refused = serde_json::from_str::<crate::service::ingest::IngestEvent>(r#"{"?": 1}"#)
            .unwrap_err()
            .to_string();
        let expected = refused.split("expected one of ").nth(1).unwrap();
        let list = expected.split(" at line").next().unwrap();
        let mut fields: Vec<String> = list
            .split(", ")
            .map(|f| f.trim_matches('`').to_owned())
            .collect();
        fields.sort();
        fields
    }

    #[test]
    fn the_documented_schema_names_exactly_the_fields_the_service_reads() {
        let schema = serde_json::to_value(super::IngestEvent::schema()).unwrap();
        let mut documented: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        documented.sort();
        assert_eq!(documented.len(), 26);
        assert_eq!(documented, fields_the_service_reads());
    }
}
