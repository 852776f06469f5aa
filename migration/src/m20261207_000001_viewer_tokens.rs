//! Viewer tokens: short-lived, read-only keys a platform's backend makes for
//! one of its customers, to embed the activity viewer. They are rows of
//! `api_keys` (so they are resolved, cached, revoked and refused like keys,
//! on every replica), with two more columns: `expires_at` (microseconds;
//! NULL for a key that never expires) and `viewer` (JSON: the narrowing the
//! token's reads are confined to and the origins allowed to embed them;
//! NULL for an ordinary key). An export a viewer token asks for keeps the
//! token's confinement (`exports.confinement`, JSON; NULL for a whole org's
//! export) so that whichever replica runs it writes only those events.
//! `viewer_origins` lists each token's allowed origins, by origin, so that a
//! CORS preflight (which carries no credential) is answered only for an
//! origin some live token allows, with one indexed lookup.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE api_keys ADD COLUMN expires_at BIGINT NULL")
            .await?;
        db.execute_unprepared("ALTER TABLE api_keys ADD COLUMN viewer TEXT NULL")
            .await?;
        db.execute_unprepared("ALTER TABLE exports ADD COLUMN confinement TEXT NULL")
            .await?;
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS viewer_origins (\
               origin TEXT NOT NULL, \
               token_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE, \
               expires_at BIGINT NOT NULL, \
               PRIMARY KEY (origin, token_id))",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP TABLE IF EXISTS viewer_origins")
            .await?;
        db.execute_unprepared("ALTER TABLE exports DROP COLUMN confinement")
            .await?;
        db.execute_unprepared("ALTER TABLE api_keys DROP COLUMN viewer")
            .await?;
        db.execute_unprepared("ALTER TABLE api_keys DROP COLUMN expires_at")
            .await?;
        Ok(())
    }
}
