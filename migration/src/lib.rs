//! The schema of activity-gateway, as ordered migrations. The same definitions
//! produce the DDL for SQLite and for PostgreSQL through SeaQuery.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_tables;
mod m20261123_000001_org_scoped_event_ids;
mod m20261124_000001_export_jobs_and_retention;
mod m20261203_000001_verifiable_log;
mod m20261203_000002_credential_epoch;
mod m20261204_000001_log_streams;
mod m20261207_000001_viewer_tokens;
mod m20261207_000002_partial_event_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_tables::Migration),
            Box::new(m20261123_000001_org_scoped_event_ids::Migration),
            Box::new(m20261124_000001_export_jobs_and_retention::Migration),
            Box::new(m20261203_000001_verifiable_log::Migration),
            Box::new(m20261203_000002_credential_epoch::Migration),
            Box::new(m20261204_000001_log_streams::Migration),
            Box::new(m20261207_000001_viewer_tokens::Migration),
            Box::new(m20261207_000002_partial_event_indexes::Migration),
        ]
    }
}
