//! GraphQL object types. They wrap service results; entities never derive
//! GraphQL traits, so the API does not change when a table does.

use async_graphql::{Context, Object, ID};
use sea_orm::DatabaseConnection;

use crate::auth::Principal;
use crate::error::{GqlResult, IntoGql};
use crate::service::directory;

pub struct Org(pub entity::org::Model);

#[Object]
impl Org {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
}

pub struct User(pub entity::user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `admin`, `member` or `viewer`.
    async fn role(&self) -> &str {
        &self.0.role
    }
}

/// The caller: who it is, what it may do, and where.
pub struct Viewer(pub Principal);

#[Object]
impl Viewer {
    /// The user id, or the key id for a key that belongs to no user.
    async fn principal_id(&self) -> ID {
        ID(self.0.principal_id.clone())
    }
    /// `user`, `api_key` or `mcp_agent`.
    async fn principal_type(&self) -> &str {
        self.0.principal_type
    }
    /// `api_key` or `jwt`.
    async fn token_type(&self) -> &str {
        self.0.token_type
    }
    async fn permissions(&self) -> Vec<&'static str> {
        self.0.permission_names()
    }
    async fn org(&self, ctx: &Context<'_>) -> GqlResult<Org> {
        let db = ctx.data::<DatabaseConnection>()?;
        directory::org_of(db, &self.0.org_id, &self.0.org_id).await.map(Org).gql()
    }
    async fn user(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        let Some(user_id) = &self.0.user_id else { return Ok(None) };
        let db = ctx.data::<DatabaseConnection>()?;
        directory::user_in_org(db, &self.0.org_id, user_id).await.map(|u| Some(User(u))).gql()
    }
}
