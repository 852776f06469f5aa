//! DataLoaders for every relation field: one query per entity type per
//! request, whatever the number of rows asking. Each is bound to the caller's
//! org, so a relation can never reach into another tenant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DatabaseConnection;

use crate::config::HttpArgs;

macro_rules! loader {
    ($name:ident, $module:ident, $by_ids:ident) => {
        pub struct $name {
            db: DatabaseConnection,
            org_id: String,
        }

        impl Loader<String> for $name {
            type Value = entity::$module::Model;
            type Error = Arc<sea_orm::DbErr>;

            async fn load(
                &self,
                keys: &[String],
            ) -> Result<HashMap<String, Self::Value>, Self::Error> {
                let rows = crate::service::directory::$by_ids(&self.db, &self.org_id, keys)
                    .await
                    .map_err(Arc::new)?;
                Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
            }
        }
    };
}

loader!(UserLoader, user, users_by_ids);
loader!(WorkspaceLoader, workspace, workspaces_by_ids);
loader!(AppLoader, app, apps_by_ids);
loader!(EndpointLoader, endpoint, endpoints_by_ids);
loader!(AugmentationLoader, augmentation, augmentations_by_ids);
loader!(ActivityLoader, activity_event, activities_by_ids);

/// Sessions with their profile's names, as the history shows them.
pub struct SessionLoader {
    db: DatabaseConnection,
    org_id: String,
    settings: Arc<HttpArgs>,
}

impl Loader<String> for SessionLoader {
    type Value = crate::service::sessions::SessionItem;
    type Error = Arc<crate::domain::error::AppError>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = crate::service::sessions::by_ids(
            &self.db,
            &self.org_id,
            keys,
            self.settings.activeness(),
        )
        .await
        .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

/// A loader that keeps what it loaded for the rest of its request, so that
/// [`Loaders::prefetch`] can hand rows their relations at once.
pub type Cached<T> = DataLoader<T, HashMapCache>;

/// The loaders of one request.
pub struct Loaders {
    pub users: Cached<UserLoader>,
    pub workspaces: Cached<WorkspaceLoader>,
    pub apps: Cached<AppLoader>,
    pub endpoints: Cached<EndpointLoader>,
    pub augmentations: Cached<AugmentationLoader>,
    pub activities: Cached<ActivityLoader>,
    pub sessions: Cached<SessionLoader>,
}

/// The relations of events that a page's selection asks for.
#[derive(Clone, Copy, Default)]
pub struct Relations {
    pub users: bool,
    pub workspaces: bool,
    pub apps: bool,
    pub endpoints: bool,
    pub augmentations: bool,
}

/// How long a loader waits for more keys before it queries. A page of 200
/// rows asks for its relations within one poll of the resolvers, but that poll
/// can take more than async-graphql's default 1 ms on a loaded machine, and a
/// split batch is an extra query; the wait is paid only by queries that select
/// relations.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

fn loader<T: Loader<String>>(inner: T, window: Duration) -> Cached<T> {
    // The batch runs in a task of its own; it stays in the request's span, so
    // its query is traced as part of the request.
    let spawn = |batch| tokio::spawn(tracing::Instrument::in_current_span(batch));
    DataLoader::with_cache(inner, spawn, HashMapCache::default())
        .delay(window)
        .max_batch_size(1_000)
}

/// Loads `keys` (the absent ones skipped) in one query and keeps them in
/// `loader`'s cache.
async fn prime<'a, T>(
    loader: &Cached<T>,
    wanted: bool,
    keys: impl Iterator<Item = &'a Option<String>>,
) -> Result<(), T::Error>
where
    T: Loader<String>,
{
    if !wanted {
        return Ok(());
    }
    let keys: std::collections::BTreeSet<&String> = keys.flatten().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = keys.into_iter().cloned().collect();
    let found = loader.loader().load(&keys).await?;
    loader.feed_many(found).await;
    Ok(())
}

impl Loaders {
    /// The relations `wanted` of a page of `events`, loaded now, one query
    /// per kind, side by side: the rows then find them without waiting out
    /// the batching window, which only a relation selected in a way this
    /// did not foresee still pays.
    pub async fn prefetch(
        &self,
        wanted: Relations,
        events: &[entity::activity_event::Model],
    ) -> Result<(), Arc<sea_orm::DbErr>> {
        tokio::try_join!(
            prime(&self.users, wanted.users, events.iter().map(|e| &e.user_id)),
            prime(
                &self.workspaces,
                wanted.workspaces,
                events.iter().map(|e| &e.workspace_id)
            ),
            prime(&self.apps, wanted.apps, events.iter().map(|e| &e.app_id)),
            prime(
                &self.endpoints,
                wanted.endpoints,
                events.iter().map(|e| &e.endpoint_id)
            ),
            prime(
                &self.augmentations,
                wanted.augmentations,
                events.iter().map(|e| &e.augmentation_id)
            ),
        )?;
        Ok(())
    }

    pub fn new(db: &DatabaseConnection, org_id: &str, settings: &Arc<HttpArgs>) -> Self {
        Self::with_window(db, org_id, settings, BATCH_WINDOW)
    }

    /// Loaders that gather keys for `window` before they query (tests give a
    /// busy machine a wider one; requests use [`BATCH_WINDOW`]).
    pub fn with_window(
        db: &DatabaseConnection,
        org_id: &str,
        settings: &Arc<HttpArgs>,
        window: Duration,
    ) -> Self {
        let org = org_id.to_owned();
        Self {
            activities: loader(
                ActivityLoader {
                    db: db.clone(),
                    org_id: org.clone(),
                },
                window,
            ),
            sessions: loader(
                SessionLoader {
                    db: db.clone(),
                    org_id: org.clone(),
                    settings: settings.clone(),
                },
                window,
            ),
            users: loader(
                UserLoader {
                    db: db.clone(),
                    org_id: org.clone(),
                },
                window,
            ),
            workspaces: loader(
                WorkspaceLoader {
                    db: db.clone(),
                    org_id: org.clone(),
                },
                window,
            ),
            apps: loader(
                AppLoader {
                    db: db.clone(),
                    org_id: org.clone(),
                },
                window,
            ),
            endpoints: loader(
                EndpointLoader {
                    db: db.clone(),
                    org_id: org.clone(),
                },
                window,
            ),
            augmentations: loader(
                AugmentationLoader {
                    db: db.clone(),
                    org_id: org,
                },
                window,
            ),
        }
    }
}
