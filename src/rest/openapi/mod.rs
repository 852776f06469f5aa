//! The OpenAPI 3.1 document of the REST routes, composed from the operation
//! registry and the response types' own schemas. `/openapi.json` and
//! `activity-gateway openapi` print the same document.

use serde_json::json;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn, PathItemBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, Required, ResponseBuilder,
};

use super::activity::{ActivityList, ActivityOut, IngestOut, SummaryOut};
use super::artifacts::requests;
use crate::operations::{operations, Body, Method, ParamIn, ParamKind, ZIP_FILE};
use crate::views;

mod shapes;

pub use shapes::{date_or_datetime, storable_object, STORABLE_TEXT};
use shapes::{storable_json, ErrorEnvelope, LocItem, ValidationError, ValidationIssue};

/// The request bodies that ignore members they do not know: those members
/// may hold any storable JSON.
const OPEN_BODIES: [&str; 5] = [
    "SessionAnalyticsRequest",
    "SessionSearchRequest",
    "ProblemRequest",
    "ResolveRequest",
    "DocsRequest",
];

fn param_schema(kind: ParamKind) -> ObjectBuilder {
    match kind {
        ParamKind::Text => ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(STORABLE_TEXT)),
        ParamKind::DateTime => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        ParamKind::Int { min, max, default } => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min as f64))
            .maximum(max.map(|m| m as f64))
            .default(default.map(|d| json!(d))),
        // What a sealed cursor looks like (payload and tag, base64url); only
        // the ones the feed issued are accepted.
        ParamKind::Cursor => ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .pattern(Some("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")),
        ParamKind::Choice(values) => ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied())),
    }
}

fn success_response(schema: &str) -> utoipa::openapi::Response {
    if schema != ZIP_FILE {
        return json_response("Successful Response", schema);
    }
    let binary = ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/zip");
    ResponseBuilder::new()
        .description("The export's ZIP")
        .content(
            "application/zip",
            ContentBuilder::new().schema(Some(binary)).build(),
        )
        .build()
}

/// The download's answer while the export is not done: its state, and when to ask again.
fn export_waiting_response() -> utoipa::openapi::Response {
    let mut waiting = json_response(
        "The export is pending or running: its state; ask again after `Retry-After` seconds",
        "ExportState",
    );
    waiting.headers.insert(
        "Retry-After".to_owned(),
        utoipa::openapi::HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait before asking again"))
            .build(),
    );
    waiting
}

fn json_response(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for op in operations() {
        let mut operation = OperationBuilder::new()
            .operation_id(Some(op.operation_id))
            .summary(Some(op.summary))
            .description(Some(format!("Requires `{}`.", op.permission.as_str())))
            .tag(op.tag)
            .response("200", success_response(op.response));
        if op.response == ZIP_FILE {
            operation = operation.response("202", export_waiting_response());
        }
        operation = operation
            .response("401", json_response("No valid credential", "ErrorEnvelope"))
            .response(
                "403",
                json_response(
                    "A permission is missing (`details.required_permission`), or a viewer token is used outside its operations or from an origin it does not allow",
                    "ErrorEnvelope",
                ),
            )
            .response(
                "404",
                json_response("Unknown id, or an id of another org", "ErrorEnvelope"),
            )
            .response("422", json_response("Validation Error", "ValidationError"))
            .response(
                "408",
                json_response("The request took longer than its timeout", "ErrorEnvelope"),
            )
            .response(
                "414",
                json_response("The path and query are over 8 KiB", "ErrorEnvelope"),
            )
            .response(
                "429",
                json_response(
                    "Too many requests in flight for the credential, or (exports) too many exports queued for the org (`Retry-After`)",
                    "ErrorEnvelope",
                ),
            )
            .response(
                "431",
                json_response("The headers are over 32 KiB", "ErrorEnvelope"),
            )
            .response("500", json_response("Internal error", "ErrorEnvelope"))
            .response(
                "503",
                json_response("The database is unreachable", "ErrorEnvelope"),
            );
        let body = match op.body {
            Body::None => None,
            Body::ArrayOf { schema, max } => {
                let array = utoipa::openapi::schema::ArrayBuilder::new()
                    .items(Ref::from_schema_name(schema))
                    .max_items(Some(max));
                Some((ContentBuilder::new().schema(Some(array)).build(), true))
            }
            Body::Object { schema, required } => Some((
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
                required,
            )),
        };
        if let Some((content, required)) = body {
            operation = operation.response(
                "413",
                json_response(
                    "The body is over the configured limit (32 MiB by default)",
                    "ErrorEnvelope",
                ),
            );
            operation = operation.request_body(Some(
                utoipa::openapi::request_body::RequestBodyBuilder::new()
                    .required(Some(if required {
                        Required::True
                    } else {
                        Required::False
                    }))
                    .content("application/json", content)
                    .build(),
            ));
        }
        for p in &op.params {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(p.name)
                    .parameter_in(if p.location == ParamIn::Path {
                        ParameterIn::Path
                    } else {
                        ParameterIn::Query
                    })
                    .required(if p.required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .description(Some(p.description))
                    .schema(Some(param_schema(p.kind))),
            );
        }
        let method = if op.method == Method::Get {
            HttpMethod::Get
        } else {
            HttpMethod::Post
        };
        paths = paths.path(
            op.path,
            PathItemBuilder::new()
                .operation(method, operation.build())
                .build(),
        );
    }
    let mut components = ComponentsBuilder::new()
        .schema("StorableJson", storable_json())
        .schema_from::<ActivityOut>()
        .schema_from::<ActivityList>()
        .schema_from::<SummaryOut>()
        .schema_from::<IngestOut>()
        .schema_from::<crate::rest::log::CheckpointOut>()
        .schema_from::<crate::rest::log::InclusionProofOut>()
        .schema_from::<crate::rest::log::ConsistencyProofOut>()
        .schema_from::<super::schemas::IngestEvent>()
        .schema_from::<crate::rest::viewer_tokens::ViewerTokenRequest>()
        .schema_from::<crate::rest::viewer_tokens::ViewerTokenFilter>()
        .schema_from::<crate::rest::viewer_tokens::ViewerTokenOut>()
        .schema_from::<requests::RoleName>()
        .schema_from::<requests::SortOrder>()
        .schema_from::<requests::SessionAnalyticsRequest>()
        .schema_from::<requests::SessionSearchRequest>()
        .schema_from::<requests::ProblemRequest>()
        .schema_from::<requests::ResolveRequest>()
        .schema_from::<requests::DocsRequest>()
        .schema_from::<views::SessionAnalyticsOut>()
        .schema_from::<views::ProfileSummaryItem>()
        .schema_from::<views::ActivityResources>()
        .schema_from::<views::ResourceOption>()
        .schema_from::<views::AnalyticsFacets>()
        .schema_from::<views::FacetItem>()
        .schema_from::<views::SessionSearchOut>()
        .schema_from::<views::SessionListItem>()
        .schema_from::<views::ProblemCreatedOut>()
        .schema_from::<views::ResolveOut>()
        .schema_from::<views::RefreshOut>()
        .schema_from::<views::ExportOut>()
        .schema_from::<views::ExportState>()
        .schema_from::<crate::docs::Docs>()
        .schema_from::<crate::docs::DocsEntry>()
        .schema_from::<crate::docs::DocsField>()
        .schema_from::<crate::docs::OperationInfo>()
        .schema_from::<crate::docs::PageMetadata>()
        .schema_from::<ErrorEnvelope>()
        .schema_from::<LocItem>()
        .schema_from::<ValidationIssue>()
        .schema_from::<ValidationError>()
        .security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        )
        .security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        )
        .build();
    // An event's free-form members hold storable JSON only.
    if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(event))) =
        components.schemas.get_mut("IngestEvent")
    {
        use utoipa::openapi::schema::SchemaType;
        let nullable = || SchemaType::from_iter([Type::Object, Type::Null]);
        event
            .properties
            .insert("metadata".into(), storable_object(nullable()).into());
        if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(usage))) =
            event.properties.get_mut("token_usage")
        {
            usage.property_names = storable_object(nullable()).property_names;
        }
    }
    for name in OPEN_BODIES {
        if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(body))) =
            components.schemas.get_mut(name)
        {
            let open = storable_object(Type::Object.into());
            body.property_names = open.property_names;
            body.additional_properties = open.additional_properties;
        }
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("activity-gateway")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("REST compatibility routes over an org's activity data. GraphQL is at /graphql."))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .security(Some([SecurityRequirement::new("api_key", Vec::<String>::new()), SecurityRequirement::new("bearer", Vec::<String>::new())]))
        .build()
}

/// The document as served and printed.
pub fn json() -> String {
    document()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
}
