//! Exports become jobs that any replica may run and any replica may serve:
//! their state, progress and lease live on the `exports` row, and on
//! PostgreSQL the finished ZIP lives in `export_chunks` (on SQLite, one
//! process, it stays a file of the export directory). Orgs get a retention
//! period, and the point before which their events were purged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One column per statement: SQLite alters one at a time. Rows of earlier
/// versions were finished exports, so they read as `done` and never expire.
const EXPORT_COLUMNS: [&str; 9] = [
    "status VARCHAR(16) NOT NULL DEFAULT 'done'",
    "claimed_by VARCHAR(128) NULL",
    "rows_expected BIGINT NOT NULL DEFAULT 0",
    "rows_written BIGINT NOT NULL DEFAULT 0",
    "attempt INTEGER NOT NULL DEFAULT 0",
    "heartbeat_at BIGINT NULL",
    "finished_at BIGINT NULL",
    "expires_at BIGINT NULL",
    "error_id VARCHAR(64) NULL",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for column in EXPORT_COLUMNS {
            db.execute_unprepared(&format!("ALTER TABLE exports ADD COLUMN {column}"))
                .await?;
        }
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_exports_status ON exports (status, created_at)",
        )
        .await?;
        let blob = match db.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        db.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS export_chunks (\
               export_id VARCHAR(64) NOT NULL REFERENCES exports (id) ON DELETE CASCADE, \
               seq INTEGER NOT NULL, \
               data {blob} NOT NULL, \
               PRIMARY KEY (export_id, seq))"
        ))
        .await?;
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS org_retention (\
               org_id VARCHAR(64) NOT NULL PRIMARY KEY REFERENCES orgs (id), \
               days INTEGER NULL, \
               purged_before BIGINT NOT NULL DEFAULT 0, \
               updated_at BIGINT NOT NULL)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP TABLE IF EXISTS org_retention")
            .await?;
        db.execute_unprepared("DROP TABLE IF EXISTS export_chunks")
            .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ix_exports_status")
            .await?;
        for column in EXPORT_COLUMNS {
            let name = column.split(' ').next().unwrap_or(column);
            db.execute_unprepared(&format!("ALTER TABLE exports DROP COLUMN {name}"))
                .await?;
        }
        Ok(())
    }
}
