//! Workspaces, apps, endpoints and augmentations: the levels below the org.

use async_graphql::{Context, Object, ID};

use crate::domain::feed::Scope;
use crate::graphql::activity::{
    activity_connection, activity_summary, ActivityConnection, ActivityFilterInput, ActivitySummary,
};
use crate::graphql::error::GqlResult;
use crate::graphql::guard::Gate;
use crate::service::directory;

use super::{children, page_cost, Children, SUMMARY_COST};

pub struct Workspace(pub entity::workspace::Model);

#[Object]
impl Workspace {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    #[graphql(
        guard = "Gate(\"Workspace.apps\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn apps(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<App>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("apps|{id}"),
            first,
            after,
            async |db, org, after, n| directory::apps_of_workspace(db, org, &id, after, n).await,
            |m| m.id.clone(),
            App,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Workspace.augmentations\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn augmentations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<Augmentation>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("augmentations|{id}"),
            first,
            after,
            async |db, org, after, n| {
                directory::augmentations_of_workspace(db, org, &id, after, n).await
            },
            |m| m.id.clone(),
            Augmentation,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Workspace.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(
            ctx,
            Scope::Workspace(self.0.id.clone()),
            first,
            after,
            filter,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Workspace.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Workspace(self.0.id.clone()), hours, filter).await
    }
}

pub struct App(pub entity::app::Model);

#[Object]
impl App {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn workspace_id(&self) -> ID {
        ID(self.0.workspace_id.clone())
    }
    #[graphql(
        guard = "Gate(\"App.endpoints\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn endpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Children<Endpoint>> {
        let id = self.0.id.clone();
        children(
            ctx,
            format!("endpoints|{id}"),
            first,
            after,
            async |db, org, after, n| directory::endpoints_of_app(db, org, &id, after, n).await,
            |m| m.id.clone(),
            Endpoint,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"App.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(ctx, Scope::App(self.0.id.clone()), first, after, filter).await
    }
    #[graphql(
        guard = "Gate(\"App.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::App(self.0.id.clone()), hours, filter).await
    }
}

pub struct Endpoint(pub entity::endpoint::Model);

#[Object]
impl Endpoint {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn method(&self) -> &str {
        &self.0.method
    }
    async fn path(&self) -> &str {
        &self.0.path
    }
    async fn app_id(&self) -> ID {
        ID(self.0.app_id.clone())
    }
    #[graphql(
        guard = "Gate(\"Endpoint.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(
            ctx,
            Scope::Endpoint(self.0.id.clone()),
            first,
            after,
            filter,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Endpoint.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Endpoint(self.0.id.clone()), hours, filter).await
    }
}

pub struct Augmentation(pub entity::augmentation::Model);

#[Object]
impl Augmentation {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn total_stages(&self) -> i32 {
        self.0.total_stages
    }
    #[graphql(
        guard = "Gate(\"Augmentation.activity\")",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivityConnection> {
        activity_connection(
            ctx,
            Scope::Augmentation(self.0.id.clone()),
            first,
            after,
            filter,
        )
        .await
    }
    #[graphql(
        guard = "Gate(\"Augmentation.activitySummary\")",
        complexity = "SUMMARY_COST + child_complexity"
    )]
    async fn activity_summary(
        &self,
        ctx: &Context<'_>,
        hours: Option<i32>,
        filter: Option<ActivityFilterInput>,
    ) -> GqlResult<ActivitySummary> {
        activity_summary(ctx, Scope::Augmentation(self.0.id.clone()), hours, filter).await
    }
}
