//! The verifiable log: every event gets a dense per-org log index, and each
//! org's Merkle tree (RFC 9162) is kept as C2SP tlog tiles of height 8, so a
//! proof at any size reads a handful of rows. Signed checkpoints of the tree
//! are kept, all of them. Events stored before this migration get their
//! indexes and leaves from the gateway when it next starts (in `seq` order):
//! a leaf is a SHA-256 of canonical JSON, which SQL cannot compute.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let blob = match db.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        db.execute_unprepared("ALTER TABLE activity_events ADD COLUMN log_index BIGINT NULL")
            .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX IF NOT EXISTS ux_activity_events_log_index \
             ON activity_events (org_id, log_index)",
        )
        .await?;
        // One row per org: its tree's size. Writers lock it (an upsert) to
        // number their events, so one org's writers take turns while other
        // orgs' commit in parallel.
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS org_logs (\
               org_id VARCHAR(64) NOT NULL PRIMARY KEY, \
               tree_size BIGINT NOT NULL DEFAULT 0)",
        )
        .await?;
        // Tile (level, idx) holds `width` hashes of the tree's nodes at
        // height 8 * level, numbered from idx * 256 (c2sp.org/tlog-tiles).
        db.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS log_tiles (\
               org_id VARCHAR(64) NOT NULL, \
               level SMALLINT NOT NULL, \
               idx BIGINT NOT NULL, \
               width INTEGER NOT NULL, \
               hashes {blob} NOT NULL, \
               PRIMARY KEY (org_id, level, idx))"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS log_checkpoints (\
               org_id VARCHAR(64) NOT NULL, \
               tree_size BIGINT NOT NULL, \
               root_hash {blob} NOT NULL, \
               note TEXT NOT NULL, \
               created_at BIGINT NOT NULL, \
               PRIMARY KEY (org_id, tree_size))"
        ))
        .await?;
        // The events stored until now get their indexes at the gateway's
        // next start, once: later events without one were not stored
        // through the log, and verifying must find them, not absorb them.
        db.execute_unprepared(
            "INSERT INTO server_secrets (name, value, created_at) \
             SELECT 'log_backfill_through', CAST(COALESCE(MAX(seq), 0) AS TEXT), 0 FROM activity_events",
        )
        .await?;
        // The log indexes whose events retention purged: their leaves stay
        // in the tiles, and verifying knows they were purged, not deleted.
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS log_purges (\
               org_id VARCHAR(64) NOT NULL, \
               first_index BIGINT NOT NULL, \
               last_index BIGINT NOT NULL, \
               before_ts BIGINT NOT NULL, \
               PRIMARY KEY (org_id, first_index))",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for table in ["log_purges", "log_checkpoints", "log_tiles", "org_logs"] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        db.execute_unprepared("DELETE FROM server_secrets WHERE name = 'log_backfill_through'")
            .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS ux_activity_events_log_index")
            .await?;
        db.execute_unprepared("ALTER TABLE activity_events DROP COLUMN log_index")
            .await?;
        Ok(())
    }
}
