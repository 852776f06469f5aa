//! From what a route or field names to a checked [`Scope`].

use sea_orm::DatabaseConnection;

use super::directory;
use crate::domain::error::AppResult;
use crate::domain::feed::Scope;
use crate::domain::principal::Principal;

/// What a request names, before anything is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Org,
    Workspace {
        workspace: String,
    },
    User {
        user: String,
    },
    App {
        workspace: String,
        app: String,
    },
    Endpoint {
        workspace: String,
        app: String,
        endpoint: String,
    },
    Augmentation {
        workspace: String,
        augmentation: String,
    },
    Action {
        workspace: String,
        action: String,
    },
    Resource {
        workspace: String,
        resource_id: String,
    },
    /// The caller: its user, or the key itself when it has none.
    Me,
}

/// The scope a target stands for; pure, so cursors can be checked before any lookup.
pub fn scope_of(principal: &Principal, target: &Target) -> Scope {
    match target.clone() {
        Target::Org => Scope::Org,
        Target::Workspace { workspace } => Scope::Workspace(workspace),
        Target::User { user } => Scope::User(user),
        Target::App { app, .. } => Scope::App(app),
        Target::Endpoint { endpoint, .. } => Scope::Endpoint(endpoint),
        Target::Augmentation { augmentation, .. } => Scope::Augmentation(augmentation),
        Target::Action { workspace, action } => Scope::WorkspaceAction {
            workspace_id: workspace,
            action,
        },
        Target::Resource {
            workspace,
            resource_id,
        } => Scope::WorkspaceResource {
            workspace_id: workspace,
            resource_id,
        },
        Target::Me => match &principal.user_id {
            Some(user) => Scope::User(user.clone()),
            None => Scope::Principal(principal.principal_id.clone()),
        },
    }
}

/// 404 unless every entity the target names exists in the caller's org, each
/// inside the parent the path puts it in.
pub async fn check_exists(
    db: &DatabaseConnection,
    principal: &Principal,
    target: &Target,
) -> AppResult<()> {
    let org = principal.org_id.as_str();
    match target {
        Target::Org | Target::Me => {}
        Target::User { user } => {
            directory::user_in_org(db, org, user).await?;
        }
        Target::Workspace { workspace }
        | Target::Action { workspace, .. }
        | Target::Resource { workspace, .. } => {
            directory::workspace_in_org(db, org, workspace).await?;
        }
        Target::App { workspace, app } => {
            directory::workspace_in_org(db, org, workspace).await?;
            directory::app_in_org(db, org, app, Some(workspace)).await?;
        }
        Target::Endpoint {
            workspace,
            app,
            endpoint,
        } => {
            directory::workspace_in_org(db, org, workspace).await?;
            directory::app_in_org(db, org, app, Some(workspace)).await?;
            directory::endpoint_in_org(db, org, endpoint, Some(app)).await?;
        }
        Target::Augmentation {
            workspace,
            augmentation,
        } => {
            directory::workspace_in_org(db, org, workspace).await?;
            directory::augmentation_in_org(db, org, augmentation, Some(workspace)).await?;
        }
    }
    Ok(())
}
