//! DataLoaders for every relation field: one query per entity type per
//! request, whatever the number of rows asking. Each is bound to the caller's
//! org, so a relation can never reach into another tenant.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

macro_rules! loader {
    ($name:ident, $module:ident) => {
        pub struct $name {
            db: DatabaseConnection,
            org_id: String,
        }

        impl Loader<String> for $name {
            type Value = entity::$module::Model;
            type Error = Arc<sea_orm::DbErr>;

            async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
                let rows = entity::$module::Entity::find()
                    .filter(entity::$module::Column::OrgId.eq(self.org_id.as_str()))
                    .filter(entity::$module::Column::Id.is_in(keys.iter().cloned()))
                    .all(&self.db)
                    .await
                    .map_err(Arc::new)?;
                Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
            }
        }
    };
}

loader!(UserLoader, user);
loader!(WorkspaceLoader, workspace);
loader!(AppLoader, app);
loader!(EndpointLoader, endpoint);
loader!(AugmentationLoader, augmentation);

/// The loaders of one request.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub workspaces: DataLoader<WorkspaceLoader>,
    pub apps: DataLoader<AppLoader>,
    pub endpoints: DataLoader<EndpointLoader>,
    pub augmentations: DataLoader<AugmentationLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection, org_id: &str) -> Self {
        let spawn = |f| tokio::spawn(f);
        let org = org_id.to_owned();
        Self {
            users: DataLoader::new(UserLoader { db: db.clone(), org_id: org.clone() }, spawn),
            workspaces: DataLoader::new(WorkspaceLoader { db: db.clone(), org_id: org.clone() }, spawn),
            apps: DataLoader::new(AppLoader { db: db.clone(), org_id: org.clone() }, spawn),
            endpoints: DataLoader::new(EndpointLoader { db: db.clone(), org_id: org.clone() }, spawn),
            augmentations: DataLoader::new(AugmentationLoader { db: db.clone(), org_id: org }, spawn),
        }
    }
}
