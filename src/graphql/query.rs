use async_graphql::{Context, Object, ID};
use sea_orm::DatabaseConnection;

use super::error::{GqlResult, IntoGql};
use super::nodes::{Node, Org, Viewer};
use crate::auth::Principal;
use crate::domain::ids::IdKind;
use crate::operations::node_permission;
use crate::service::directory;

use super::guard::Gate;

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The caller and its org.
    #[graphql(guard = "Gate(\"viewer\")")]
    async fn viewer(&self, ctx: &Context<'_>) -> GqlResult<Viewer> {
        Ok(Viewer(ctx.data::<Principal>()?.clone()))
    }

    /// An org by id: only the caller's own; any other answers RESOURCE_NOT_FOUND.
    #[graphql(guard = "Gate(\"org\")")]
    async fn org(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Org> {
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        directory::org_of(db, &principal.org_id, &id)
            .await
            .map(Org)
            .gql()
    }

    /// The composed documentation of the activity analytics; `entityId`
    /// narrows it to one entry or resource. Needs `docs:read`.
    #[graphql(guard = "Gate(\"activityDocs\")")]
    async fn activity_docs(&self, entity_id: Option<String>) -> GqlResult<crate::docs::Docs> {
        crate::docs::compose(entity_id.as_deref()).gql()
    }

    /// Any node of the caller's org by id; another org's ids answer
    /// RESOURCE_NOT_FOUND. Needs the permission of the kind of id: `session:read`
    /// for a session, `activity:export` for an export, `activity:read` for the rest.
    #[graphql(guard = "Gate(\"node\")")]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Node>> {
        let principal = ctx.data::<Principal>()?;
        if let Some(kind) = IdKind::of(&id) {
            principal.require(node_permission(kind)).gql()?;
        }
        let db = ctx.data::<DatabaseConnection>()?;
        let activeness = ctx
            .data::<std::sync::Arc<crate::config::HttpArgs>>()?
            .activeness();
        directory::node(db, &principal.org_id, &id, activeness)
            .await
            .map(|n| Some(Node::from(n)))
            .gql()
    }
}
