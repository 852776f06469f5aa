//! The GraphQL schema. It knows nothing of the web framework: `http.rs` adapts it.

mod activity;
pub mod http;
pub mod loaders;
mod mutation;
mod query;
mod types;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;

pub use mutation::MutationRoot;
pub use query::QueryRoot;

pub type GatewaySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Depth and complexity limits: generous for every query in the README, fatal
/// for abusive nesting.
pub const MAX_DEPTH: usize = 12;
pub const MAX_COMPLEXITY: usize = 10_000;
pub const MAX_DIRECTIVES: usize = 8;

pub fn build_schema(db: DatabaseConnection) -> GatewaySchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(db)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_directives(MAX_DIRECTIVES)
        .finish()
}

/// The SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .finish()
        .sdl()
}
