//! The feed indexes of the columns an event may leave empty hold only the
//! events that have them. An API call the gateway records names no
//! workspace, app, endpoint, augmentation or user, and each of the seven
//! indexes led by those columns took an entry for it anyway: seven of the
//! twelve index writes of its insert. A feed's query (`column = value`, or
//! `IN`) implies `column IS NOT NULL`, which both backends take as leave to
//! read the partial index.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The indexes (after `ix_activity_events_`) and their columns, led by one
/// an event may leave empty.
const PARTIAL: [(&str, &str); 7] = [
    ("workspace_ts", "workspace_id, ts, id"),
    ("app_ts", "app_id, ts, id"),
    ("endpoint_ts", "endpoint_id, ts, id"),
    ("augmentation_ts", "augmentation_id, ts, id"),
    ("user_ts", "user_id, ts, id"),
    ("workspace_action_ts", "workspace_id, action, ts, id"),
    ("workspace_resource_ts", "workspace_id, resource_id, ts, id"),
];

fn leading(columns: &str) -> &str {
    columns.split(',').next().unwrap_or(columns)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (name, columns) in PARTIAL {
            // One call for both: as two calls, SQLite's create failed with
            // "already exists" right after the drop (each call may take
            // another of the pool's connections).
            db.execute_unprepared(&format!(
                "DROP INDEX IF EXISTS ix_activity_events_{name}; \
                 CREATE INDEX ix_activity_events_{name} ON activity_events ({columns}) \
                 WHERE {} IS NOT NULL",
                leading(columns)
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (name, columns) in PARTIAL {
            db.execute_unprepared(&format!(
                "DROP INDEX IF EXISTS ix_activity_events_{name}; \
                 CREATE INDEX ix_activity_events_{name} ON activity_events ({columns})"
            ))
            .await?;
        }
        Ok(())
    }
}
