//! The credential epoch: one counter that every change able to refuse or
//! narrow an API key moves (revoked, deleted, its secret, role, permissions,
//! org or user changed), by trigger, so that a change made with plain SQL
//! counts as much as one made through the gateway. Gateways keep resolved
//! keys in memory and forget them all when they see the epoch move; they
//! read it at most every 250 ms. Creating a key or recording its use
//! (`last_used_at`) does not move it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns whose change can refuse or narrow a key.
const GUARDED: &str = "revoked_at, secret_hash, role, permissions, org_id, user_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS credential_epoch (\
               id INTEGER NOT NULL PRIMARY KEY, \
               epoch BIGINT NOT NULL)",
        )
        .await?;
        db.execute_unprepared("INSERT INTO credential_epoch (id, epoch) VALUES (1, 0)")
            .await?;
        let bump = "UPDATE credential_epoch SET epoch = epoch + 1 WHERE id = 1";
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE OR REPLACE FUNCTION bump_credential_epoch() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN {bump}; RETURN NULL; END $$"
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER api_keys_credential_epoch \
                     AFTER UPDATE OF {GUARDED} OR DELETE OR TRUNCATE ON api_keys \
                     FOR EACH STATEMENT EXECUTE FUNCTION bump_credential_epoch()"
                ))
                .await?;
            }
            _ => {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER api_keys_credential_epoch_update \
                     AFTER UPDATE OF {GUARDED} ON api_keys BEGIN {bump}; END"
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER api_keys_credential_epoch_delete \
                     AFTER DELETE ON api_keys BEGIN {bump}; END"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "DROP TRIGGER IF EXISTS api_keys_credential_epoch ON api_keys",
                )
                .await?;
                db.execute_unprepared("DROP FUNCTION IF EXISTS bump_credential_epoch()")
                    .await?;
            }
            _ => {
                for trigger in ["update", "delete"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS api_keys_credential_epoch_{trigger}"
                    ))
                    .await?;
                }
            }
        }
        db.execute_unprepared("DROP TABLE IF EXISTS credential_epoch")
            .await?;
        Ok(())
    }
}
