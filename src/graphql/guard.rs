//! The GraphQL half of authorization: every field that reads or changes data
//! carries a [`Gate`] naming its entry in the operation registry, and the
//! registry says what it needs. The permission is written once, there.

use super::error::ToGraphql;
use async_graphql::{Context, Guard};

use super::error::{GqlResult, IntoGql};
use crate::auth::Principal;
use crate::domain::error::AppError;
use crate::operations::{graphql_access, Access, VIEWER_TOKEN_FIELDS};

/// Lets a field resolve only for a caller holding what the registry
/// declares for it (`Gate("Org.users")`).
pub struct Gate(pub &'static str);

impl Guard for Gate {
    async fn check(&self, ctx: &Context<'_>) -> GqlResult<()> {
        let access = graphql_access(self.0);
        if ctx
            .data_opt::<Principal>()
            .is_some_and(|p| p.viewer_token.is_some())
            && !VIEWER_TOKEN_FIELDS.contains(&self.0)
        {
            let required = match access {
                Some(Access::Needs(permission)) => permission,
                _ => crate::domain::permission::Permission::ActivityRead,
            };
            return Err(AppError::Forbidden {
                required_permission: required.as_str(),
            })
            .gql();
        }
        match access {
            Some(Access::Needs(permission)) => ctx.data::<Principal>()?.require(permission).gql(),
            // `node` checks the permission of the id's kind once it knows it.
            Some(Access::Open | Access::ByIdKind) => Ok(()),
            None => Err(AppError::internal_msg(format!(
                "the GraphQL field {} is not in the operation registry",
                self.0
            ))
            .to_graphql()),
        }
    }
}
