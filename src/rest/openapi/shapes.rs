//! The shapes the OpenAPI document names besides the operations' own: the
//! error envelope, the 422 body, storable text and JSON, and dates.

use serde::Serialize;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::Ref;
use utoipa::ToSchema;

/// The error envelope every non-422 error answers with.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct ErrorEnvelope {
    /// `AUTHENTICATION_FAILED`, `FORBIDDEN`, `RESOURCE_NOT_FOUND`, `SERVICE_UNAVAILABLE`, `INTERNAL_SERVER_ERROR`, …
    error: String,
    message: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// Naive UTC, microseconds.
    timestamp: String,
    status_code: u16,
}

/// A place in the request: `"body"`, `"query"`, `"path"`, `"header"`, a field
/// name, or the index of an item in a list.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum LocItem {
    Name(String),
    Index(u64),
}

/// One invalid input, in FastAPI's `detail[]` shape.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct ValidationIssue {
    loc: Vec<LocItem>,
    msg: String,
    #[serde(rename = "type")]
    kind: String,
    /// The value as the client sent it: any JSON value.
    #[schema(schema_with = any_value)]
    input: serde_json::Value,
    /// The limits involved (`{"le": 200}`), when there are any.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    ctx: Option<serde_json::Value>,
}

/// A schema every JSON value satisfies.
pub(super) fn any_value() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .build()
}

/// FastAPI's 422 shape.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct ValidationError {
    detail: Vec<ValidationIssue>,
}

/// Text any backend can store: no NUL character (refused with 422
/// `string_unstorable` wherever it appears).
pub const STORABLE_TEXT: &str = "^[^\\u0000]*$";

/// Any JSON value with no NUL character in its strings or member names: what
/// a request body may hold anywhere (NUL is refused wherever it appears,
/// unknown members included). Recursive, as `#/components/schemas/StorableJson`.
pub(super) fn storable_json() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, SchemaType};
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(STORABLE_TEXT));
    let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::Number,
        Type::Boolean,
        Type::Null,
    ]));
    let array = ArrayBuilder::new().items(Ref::from_schema_name("StorableJson"));
    utoipa::openapi::schema::Schema::AnyOf(
        AnyOfBuilder::new()
            .item(text)
            .item(scalar)
            .item(array)
            .item(storable_object(Type::Object.into()))
            .build(),
    )
}

/// A JSON object of storable members (see [`storable_json`]), of `kind`.
pub fn storable_object(
    kind: utoipa::openapi::schema::SchemaType,
) -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(kind)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(STORABLE_TEXT))
                .build(),
        ))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(
            Ref::from_schema_name("StorableJson").into(),
        )))
        .build()
}

/// An ISO 8601 date (`2026-11-01`) or datetime, as the session routes take.
pub fn date_or_datetime() -> utoipa::openapi::schema::Schema {
    let format = |f: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    utoipa::openapi::schema::Schema::AnyOf(
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(format(KnownFormat::Date))
            .item(format(KnownFormat::DateTime))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}
