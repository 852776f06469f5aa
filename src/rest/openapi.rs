//! The OpenAPI 3.1 document of the REST routes, composed from the operation
//! registry and the response types' own schemas. `/openapi.json` and
//! `activity-gateway openapi` print the same document.

use serde::Serialize;
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
use utoipa::ToSchema;

use super::activity::{ActivityList, ActivityOut, IngestOut, SummaryOut};
use super::artifacts;
use super::operations::{operations, Body, Method, ParamIn, ParamKind, ZIP_FILE};

/// The error envelope every non-422 error answers with.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ErrorEnvelope {
    /// `AUTHENTICATION_FAILED`, `FORBIDDEN`, `RESOURCE_NOT_FOUND`, `SERVICE_UNAVAILABLE`, `INTERNAL_SERVER_ERROR`, …
    error: String,
    message: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// Naive UTC, microseconds.
    timestamp: String,
    status_code: u16,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ValidationIssue {
    #[schema(value_type = Vec<Object>)]
    loc: Vec<serde_json::Value>,
    msg: String,
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = Object)]
    input: serde_json::Value,
    #[schema(value_type = Object)]
    ctx: serde_json::Value,
}

/// FastAPI's 422 shape.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ValidationError {
    detail: Vec<ValidationIssue>,
}

fn param_schema(kind: ParamKind) -> ObjectBuilder {
    match kind {
        ParamKind::Text => ObjectBuilder::new().schema_type(Type::String),
        ParamKind::DateTime => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        ParamKind::Int { min, max, default } => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min as f64))
            .maximum(max.map(|m| m as f64))
            .default(default.map(|d| json!(d))),
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
            .response("200", success_response(op.response))
            .response("401", json_response("No valid credential", "ErrorEnvelope"))
            .response(
                "403",
                json_response(
                    "A permission is missing (`details.required_permission`)",
                    "ErrorEnvelope",
                ),
            )
            .response(
                "404",
                json_response("Unknown id, or an id of another org", "ErrorEnvelope"),
            )
            .response("422", json_response("Validation Error", "ValidationError"))
            .response("500", json_response("Internal error", "ErrorEnvelope"));
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
    let components = ComponentsBuilder::new()
        .schema_from::<ActivityOut>()
        .schema_from::<ActivityList>()
        .schema_from::<SummaryOut>()
        .schema_from::<IngestOut>()
        .schema_from::<crate::service::ingest::IngestEvent>()
        .schema_from::<artifacts::SessionAnalyticsRequest>()
        .schema_from::<artifacts::SessionSearchRequest>()
        .schema_from::<artifacts::ProblemRequest>()
        .schema_from::<artifacts::ResolveRequest>()
        .schema_from::<artifacts::DocsRequest>()
        .schema_from::<artifacts::SessionAnalyticsOut>()
        .schema_from::<artifacts::ProfileSummaryItem>()
        .schema_from::<artifacts::ActivityResources>()
        .schema_from::<artifacts::ResourceOption>()
        .schema_from::<artifacts::AnalyticsFacets>()
        .schema_from::<artifacts::FacetItem>()
        .schema_from::<artifacts::SessionSearchOut>()
        .schema_from::<artifacts::SessionListItem>()
        .schema_from::<artifacts::ProblemCreatedOut>()
        .schema_from::<artifacts::ResolveOut>()
        .schema_from::<artifacts::RefreshOut>()
        .schema_from::<artifacts::ExportOut>()
        .schema_from::<crate::docs::Docs>()
        .schema_from::<crate::docs::DocsEntry>()
        .schema_from::<crate::docs::DocsField>()
        .schema_from::<crate::docs::OperationInfo>()
        .schema_from::<crate::docs::PageMetadata>()
        .schema_from::<ErrorEnvelope>()
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
