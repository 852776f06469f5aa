use async_graphql::{Context, Object, ID};
use sea_orm::DatabaseConnection;

use super::types::{Node, Org, Viewer};
use crate::auth::Principal;
use crate::error::{GqlResult, IntoGql};
use crate::service::directory;

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The caller and its org.
    async fn viewer(&self, ctx: &Context<'_>) -> GqlResult<Viewer> {
        Ok(Viewer(ctx.data::<Principal>()?.clone()))
    }

    /// An org by id: only the caller's own; any other answers RESOURCE_NOT_FOUND.
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
    async fn activity_docs(
        &self,
        ctx: &Context<'_>,
        entity_id: Option<String>,
    ) -> GqlResult<crate::docs::Docs> {
        let principal = ctx.data::<Principal>()?;
        principal
            .require(crate::domain::permission::Permission::DocsRead)
            .gql()?;
        crate::docs::compose(entity_id.as_deref()).gql()
    }

    /// Any node of the caller's org by id; another org's ids answer RESOURCE_NOT_FOUND.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Node>> {
        let principal = ctx.data::<Principal>()?;
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
