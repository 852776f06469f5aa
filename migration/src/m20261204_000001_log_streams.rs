//! Log streams: an org's events delivered to a destination of its own, in
//! log order, from a cursor (`next_index`, the first log index not yet
//! acknowledged) that moves only after the destination acknowledged.
//!
//! A stream is delivered by one process at a time: the one holding its
//! lease (`lease_until` in the future), taken with `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL. Every claim moves `lease_token` on, and every write of a
//! deliverer is conditioned on its token, so a deliverer that lost its lease
//! cannot move the cursor of its successor. The destination's secret is
//! stored sealed (`secret_sealed`) with a key kept outside the database.
//! `checkpoint_size` is the tree size of the last signed checkpoint of the
//! org's log the stream delivered.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS log_streams (\
               id TEXT NOT NULL PRIMARY KEY, \
               org_id TEXT NOT NULL REFERENCES orgs (id), \
               name TEXT NOT NULL, \
               format TEXT NOT NULL, \
               filter TEXT NOT NULL, \
               destination TEXT NOT NULL, \
               secret_sealed TEXT NOT NULL, \
               status TEXT NOT NULL, \
               next_index BIGINT NOT NULL, \
               checkpoint_size BIGINT NOT NULL DEFAULT 0, \
               delivered_total BIGINT NOT NULL DEFAULT 0, \
               purged_total BIGINT NOT NULL DEFAULT 0, \
               last_delivered_at BIGINT NULL, \
               last_error TEXT NULL, \
               failing_since BIGINT NULL, \
               alerted BOOLEAN NOT NULL DEFAULT FALSE, \
               lease_owner TEXT NULL, \
               lease_token BIGINT NOT NULL DEFAULT 0, \
               lease_until BIGINT NOT NULL DEFAULT 0, \
               created_at BIGINT NOT NULL, \
               updated_at BIGINT NOT NULL, \
               UNIQUE (org_id, name))",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_log_streams_claim ON log_streams (status, lease_until)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS log_streams")
            .await?;
        Ok(())
    }
}
