//! The GraphQL schema. It knows nothing of the web framework: `http.rs` adapts it.

mod activity;
pub mod budget;
pub mod documents;
pub mod error;
mod guard;
pub mod http;
pub mod loaders;
pub mod log;
mod mutation;
mod nodes;
pub mod ordering;
mod plan;
mod query;
mod request;
mod sessions;
pub mod shape;
mod socket;
pub(crate) mod streams;
mod subscription;
mod viewer_tokens;

use async_graphql::Schema;
use sea_orm::DatabaseConnection;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use std::sync::Arc;

use crate::config::HttpArgs;
use crate::service::export::jobs::ExportRunner;
use crate::service::live::LiveFeed;
use crate::service::log::checkpoints::LogKeys;
use crate::service::secrets::CursorKeys;
use crate::service::streams::deliver::StreamRunner;
use crate::state::AppState;

pub type GatewaySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What the GraphQL handlers reach: the application's state and the schemas
/// built over it. Reads as the application's state where that is all a
/// handler needs.
#[derive(Clone)]
pub struct GraphqlState {
    pub app: AppState,
    pub schemas: Schemas,
}

impl std::ops::Deref for GraphqlState {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

impl GraphqlState {
    /// The application's state with the schemas built over it.
    pub fn new(app: &AppState) -> Self {
        Self {
            app: app.clone(),
            schemas: build_schemas(app),
        }
    }

    /// Runs one request for `principal`, with no transport: on the schema
    /// whose extensions make every document check (the one batches and
    /// subscriptions run on), with the data the transports give a request.
    /// The tests of resolver behaviour run here.
    pub async fn execute(
        &self,
        principal: &crate::auth::Principal,
        request: async_graphql::Request,
    ) -> async_graphql::Response {
        let request = request
            .data(principal.clone())
            .data(self.loaders_for(principal))
            .data(budget::SharedBudget::default());
        self.schemas.guarded.execute(request).await
    }

    /// What one request's resolvers share besides its principal: the
    /// loaders of its org, the same over HTTP and over a WebSocket.
    pub fn loaders_for(
        &self,
        principal: &crate::auth::Principal,
    ) -> std::sync::Arc<loaders::Loaders> {
        std::sync::Arc::new(loaders::Loaders::new(
            &self.db,
            &principal.org_id,
            &self.settings,
        ))
    }
}

/// `/graphql`: POST, GET, and the WebSocket upgrade, with the schemas built
/// once for this router.
pub fn router<S: Clone + Send + Sync + 'static>(state: &AppState) -> axum::Router<S> {
    axum::Router::new()
        .route(
            "/graphql",
            axum::routing::get(http::get_handler).post(http::post_handler),
        )
        .with_state(GraphqlState::new(state))
}

/// Complexity and directive limits: generous for every query in the README,
/// fatal for abuse. (Depth is `shape::MAX_DEPTH`, counted without
/// introspection, which has a rule of its own.)
pub const MAX_COMPLEXITY: usize = 10_000;
pub const MAX_DIRECTIVES: usize = 8;

/// The schema with its checks as extensions: async-graphql runs them for
/// every request, and the ordering of answers with them. What the transport
/// cannot prepare itself runs here: batches (whose operations share one
/// complexity budget) and subscriptions.
pub fn build_schema(
    db: DatabaseConnection,
    live: LiveFeed,
    settings: Arc<HttpArgs>,
) -> GatewaySchema {
    let exports = ExportRunner::start(db.clone(), settings.export_jobs());
    let streams = StreamRunner::start(db.clone(), live.clone(), settings.streams.settings());
    SchemaData::new(db, live, settings, exports, streams, Arc::default()).guarded()
}

/// What every request's resolvers read, the same in both schemas.
struct SchemaData {
    db: DatabaseConnection,
    cursors: CursorKeys,
    log_keys: LogKeys,
    live: LiveFeed,
    settings: Arc<HttpArgs>,
    exports: ExportRunner,
    streams: StreamRunner,
    kept: Arc<crate::service::summary::KeptCells>,
}

impl SchemaData {
    fn new(
        db: DatabaseConnection,
        live: LiveFeed,
        settings: Arc<HttpArgs>,
        exports: ExportRunner,
        streams: StreamRunner,
        kept: Arc<crate::service::summary::KeptCells>,
    ) -> Self {
        Self {
            cursors: CursorKeys::new(db.clone(), settings.cursor_secret.clone()),
            log_keys: LogKeys::new(db.clone(), settings.log.settings()),
            db,
            live,
            settings,
            exports,
            streams,
            kept,
        }
    }

    fn builder(&self) -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
        Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot)
            .data(self.db.clone())
            .data(self.cursors.clone())
            .data(self.log_keys.clone())
            .data(self.live.clone())
            .data(self.settings.clone())
            .data(self.exports.clone())
            .data(self.streams.clone())
            .data(self.kept.clone())
            .limit_complexity(MAX_COMPLEXITY)
            .limit_directives(MAX_DIRECTIVES)
            .limit_recursive_depth(documents::RECURSION_DEPTH)
    }

    fn guarded(&self) -> GatewaySchema {
        self.builder()
            .extension(shape::DocumentShape)
            .extension(ordering::SelectionOrder)
            .extension(budget::BatchBudget {
                limit: MAX_COMPLEXITY,
            })
            .finish()
    }
}

/// The two faces of one schema. With any extension at all, async-graphql
/// wraps every field of every row in the extension chain, and a page of 50
/// events paid more for that than for its query (measured in BENCHMARKS.md:
/// +33% req/s without). So single operations over HTTP run on `plain`, which
/// has none, and the transport makes the same checks and orders the answer
/// itself ([`documents`], [`ordering::order_answer`]).
#[derive(Clone)]
pub struct Schemas {
    pub plain: GatewaySchema,
    pub guarded: GatewaySchema,
    /// The types, for the checks the transport makes.
    pub types: async_graphql::SchemaEnv,
    pub documents: Arc<documents::Documents>,
    /// The plain schema's cursor key, for planned reads.
    pub cursors: CursorKeys,
}

pub fn build_schemas(app: &AppState) -> Schemas {
    let data = SchemaData::new(
        app.db.clone(),
        app.live.clone(),
        app.settings.clone(),
        app.exports.clone(),
        app.streams.clone(),
        app.kept.clone(),
    );
    Schemas {
        plain: data.builder().finish(),
        guarded: data.guarded(),
        types: types(),
        documents: Arc::default(),
        cursors: data.cursors,
    }
}

/// The schema's types. async-graphql shows a static schema's registry to
/// its extensions only, so a throwaway schema of the same types with one
/// extension reads it while it prepares `{ __typename }`, which needs no
/// I/O: the first poll gets there.
fn types() -> async_graphql::SchemaEnv {
    use async_graphql::extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
    };
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Probe(Arc<Mutex<Option<async_graphql::SchemaEnv>>>);
    impl ExtensionFactory for Probe {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(self.clone())
        }
    }
    #[async_graphql::async_trait::async_trait]
    impl Extension for Probe {
        async fn prepare_request(
            &self,
            ctx: &ExtensionContext<'_>,
            request: async_graphql::Request,
            next: NextPrepareRequest<'_>,
        ) -> async_graphql::ServerResult<async_graphql::Request> {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(ctx.schema_env.clone());
            next.run(ctx, request).await
        }
    }

    let probe = Probe::default();
    let schema = Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot)
        .extension(probe.clone())
        .finish();
    let execution = schema.execute("{ __typename }");
    let mut execution = std::pin::pin!(execution);
    let _ = std::future::Future::poll(
        execution.as_mut(),
        &mut std::task::Context::from_waker(std::task::Waker::noop()),
    );
    let types = probe.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    types.expect("async-graphql prepares a request in its first poll")
}

/// The SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot)
        .finish()
        .sdl()
}
