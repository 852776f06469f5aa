//! The GraphQL schema. It knows nothing of the web framework: `http.rs` adapts it.

mod activity;
pub mod budget;
mod guard;
pub mod http;
pub mod loaders;
mod mutation;
pub mod ordering;
mod query;
mod sessions;
pub mod shape;
mod subscription;
mod types;

use async_graphql::Schema;
use sea_orm::DatabaseConnection;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use std::sync::Arc;

use crate::config::HttpArgs;
use crate::service::live::LiveFeed;
use crate::service::secrets::CursorKeys;

pub type GatewaySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Complexity and directive limits: generous for every query in the README,
/// fatal for abuse. (Depth is `shape::MAX_DEPTH`, counted without
/// introspection, which has a rule of its own.)
pub const MAX_COMPLEXITY: usize = 10_000;
pub const MAX_DIRECTIVES: usize = 8;

pub fn build_schema(
    db: DatabaseConnection,
    live: LiveFeed,
    settings: Arc<HttpArgs>,
) -> GatewaySchema {
    let cursors = CursorKeys::new(db.clone(), settings.cursor_secret.clone());
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(db)
        .data(cursors)
        .data(live)
        .data(settings)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_directives(MAX_DIRECTIVES)
        .extension(shape::DocumentShape)
        .extension(ordering::SelectionOrder)
        .extension(budget::BatchBudget {
            limit: MAX_COMPLEXITY,
        })
        .finish()
}

/// The SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}
