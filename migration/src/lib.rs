//! The schema of activity-gateway, as ordered migrations. The same definitions
//! produce the DDL for SQLite and for PostgreSQL through SeaQuery.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261122_000001_create_tables::Migration)]
    }
}
