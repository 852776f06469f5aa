//! Orgs, users and the rest of the hierarchy, always looked up inside one org: an
//! id of another org is indistinguishable from an id that does not exist.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entity::{org, user};

use crate::domain::claims::Claims;
use crate::domain::error::{AppError, AppResult};
use crate::domain::permission::parse_permissions;
use crate::domain::principal::{grants, Principal};

/// The org, when it is the caller's own; 404 otherwise, whether it exists or not.
#[tracing::instrument(skip(db))]
pub async fn org_of(
    db: &DatabaseConnection,
    principal_org: &str,
    org_id: &str,
) -> AppResult<org::Model> {
    if principal_org != org_id {
        return Err(AppError::not_found("org", org_id));
    }
    org::Entity::find_by_id(org_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("org", org_id))
}

#[tracing::instrument(skip(db))]
pub async fn user_in_org(
    db: &DatabaseConnection,
    org_id: &str,
    user_id: &str,
) -> AppResult<user::Model> {
    user::Entity::find_by_id(user_id.to_owned())
        .filter(user::Column::OrgId.eq(org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("user", user_id))
}

/// A JWT names its user and org; both must exist and belong together.
pub async fn principal_for_jwt(db: &DatabaseConnection, claims: Claims) -> AppResult<Principal> {
    let user = user::Entity::find_by_id(claims.sub.clone())
        .filter(user::Column::OrgId.eq(claims.org.as_str()))
        .one(db)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let explicit =
        parse_permissions(&claims.permission_text()).map_err(|_| AppError::Unauthenticated)?;
    let permissions = grants(claims.role.as_deref(), &explicit);
    Ok(Principal {
        org_id: user.org_id,
        principal_type: "user",
        principal_id: user.id.clone(),
        user_id: Some(user.id),
        token_id: claims.jti,
        token_type: "jwt",
        permissions,
        mcp_client: None,
        viewer_token: None,
    })
}

/// Looks an entity up by id inside one org (and optionally inside a parent);
/// anything else is the 404 of an unknown id.
macro_rules! owned_lookup {
    ($fn:ident, $module:ident, $resource:literal $(, $parent_col:ident)?) => {
        #[tracing::instrument(skip(db))]
        pub async fn $fn(
            db: &DatabaseConnection,
            org_id: &str,
            id: &str,
            $(#[allow(non_snake_case)] $parent_col: Option<&str>,)?
        ) -> AppResult<entity::$module::Model> {
            #[allow(unused_mut)]
            let mut query = entity::$module::Entity::find_by_id(id.to_owned()).filter(entity::$module::Column::OrgId.eq(org_id));
            $(if let Some(parent) = $parent_col {
                query = query.filter(entity::$module::Column::$parent_col.eq(parent));
            })?
            query.one(db).await?.ok_or_else(|| AppError::not_found($resource, id))
        }
    };
}

owned_lookup!(workspace_in_org, workspace, "workspace");
owned_lookup!(app_in_org, app, "app", WorkspaceId);
owned_lookup!(endpoint_in_org, endpoint, "endpoint", AppId);
owned_lookup!(
    augmentation_in_org,
    augmentation,
    "augmentation",
    WorkspaceId
);

/// Children of a parent, in id order, keyset-paginated: `(rows, has_more)`.
macro_rules! children_page {
    ($fn:ident, $module:ident, $parent_col:ident) => {
        #[tracing::instrument(skip(db))]
        pub async fn $fn(
            db: &DatabaseConnection,
            org_id: &str,
            parent_id: &str,
            after: Option<&str>,
            limit: u64,
        ) -> AppResult<(Vec<entity::$module::Model>, bool)> {
            use sea_orm::{QueryOrder as _, QuerySelect as _};
            let mut query = entity::$module::Entity::find()
                .filter(entity::$module::Column::OrgId.eq(org_id))
                .filter(entity::$module::Column::$parent_col.eq(parent_id));
            if let Some(after) = after {
                query = query.filter(entity::$module::Column::Id.gt(after));
            }
            let mut rows = query
                .order_by_asc(entity::$module::Column::Id)
                .limit(limit + 1)
                .all(db)
                .await?;
            let has_more = rows.len() as u64 > limit;
            rows.truncate(limit as usize);
            Ok((rows, has_more))
        }
    };
}

children_page!(workspaces_of_org, workspace, OrgId);
children_page!(users_of_org, user, OrgId);
children_page!(apps_of_workspace, app, WorkspaceId);
children_page!(augmentations_of_workspace, augmentation, WorkspaceId);
children_page!(endpoints_of_app, endpoint, AppId);

/// Any node of the caller's org by its prefixed id; 404 for anything else.
/// `activeness` tells whether a session is active, for session ids.
pub async fn node(
    db: &DatabaseConnection,
    org_id: &str,
    id: &str,
    activeness: super::sessions::Activeness,
) -> AppResult<Node> {
    use crate::domain::ids::IdKind;
    let not_found = || AppError::not_found("node", id);
    Ok(match IdKind::of(id).ok_or_else(not_found)? {
        IdKind::Org => Node::Org(org_of(db, org_id, id).await?),
        IdKind::Workspace => Node::Workspace(workspace_in_org(db, org_id, id).await?),
        IdKind::App => Node::App(app_in_org(db, org_id, id, None).await?),
        IdKind::Endpoint => Node::Endpoint(endpoint_in_org(db, org_id, id, None).await?),
        IdKind::Augmentation => {
            Node::Augmentation(augmentation_in_org(db, org_id, id, None).await?)
        }
        IdKind::User => Node::User(user_in_org(db, org_id, id).await?),
        IdKind::Activity => Node::Activity(
            entity::activity_event::Entity::find()
                .filter(entity::activity_event::Column::Id.eq(id))
                .filter(entity::activity_event::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(not_found)?,
        ),
        IdKind::Department => Node::Department(
            entity::department::Entity::find_by_id(id.to_owned())
                .filter(entity::department::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(not_found)?,
        ),
        IdKind::Export => Node::Export(
            entity::export::Entity::find_by_id(id.to_owned())
                .filter(entity::export::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                // An expired export is gone, even before the sweep deletes it.
                .filter(|e| {
                    e.expires_at
                        .is_none_or(|at| at >= crate::domain::time::now_micros())
                })
                .ok_or_else(not_found)?,
        ),
        IdKind::Session => Node::Session(
            super::sessions::by_ids(db, org_id, &[id.to_owned()], activeness)
                .await?
                .pop()
                .ok_or_else(not_found)?,
        ),
        IdKind::Problem => Node::Problem(super::problems::get(db, org_id, id).await.map_err(
            |e| match e {
                AppError::NotFound { .. } => not_found(),
                other => other,
            },
        )?),
        // API keys are credentials, not data, and log streams are listed
        // by `Org.logStreams` to admins: neither is a node.
        IdKind::Key | IdKind::LogStream => return Err(not_found()),
    })
}

pub enum Node {
    Org(org::Model),
    Workspace(entity::workspace::Model),
    App(entity::app::Model),
    Endpoint(entity::endpoint::Model),
    Augmentation(entity::augmentation::Model),
    User(user::Model),
    Activity(entity::activity_event::Model),
    Problem(entity::problem::Model),
    Session(super::sessions::SessionItem),
    Department(entity::department::Model),
    Export(entity::export::Model),
}

/// Declares `$name(db, org, ids)`: the rows of `$module` with those ids in
/// `org`, in one query (what the GraphQL relation loaders batch into).
macro_rules! rows_by_ids {
    ($($name:ident: $module:ident),* $(,)?) => {$(
        pub async fn $name(
            db: &DatabaseConnection,
            org: &str,
            ids: &[String],
        ) -> Result<Vec<entity::$module::Model>, sea_orm::DbErr> {
            entity::$module::Entity::find()
                .filter(entity::$module::Column::OrgId.eq(org))
                .filter(entity::$module::Column::Id.is_in(ids.iter().cloned()))
                .all(db)
                .await
        }
    )*};
}

rows_by_ids!(
    users_by_ids: user,
    workspaces_by_ids: workspace,
    apps_by_ids: app,
    endpoints_by_ids: endpoint,
    augmentations_by_ids: augmentation,
    activities_by_ids: activity_event,
);

/// How many orgs the database holds.
pub async fn org_count(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait as _;
    org::Entity::find().count(db).await
}

/// Whether the org `org` exists.
pub async fn org_exists(db: &DatabaseConnection, org: &str) -> Result<bool, sea_orm::DbErr> {
    Ok(org::Entity::find_by_id(org).one(db).await?.is_some())
}
