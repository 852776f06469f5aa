//! Viewer tokens: short-lived, read-only keys a platform's backend makes for
//! one of its customers, to embed the activity viewer. They are rows of
//! `api_keys` (so they are resolved, cached, revoked and refused like keys,
//! on every replica), with two more columns: `expires_at` (microseconds;
//! NULL for a key that never expires) and `viewer` (JSON: the narrowing the
//! token's reads are confined to and the origins allowed to embed them;
//! NULL for an ordinary key). An export a viewer token asks for keeps the
//! token's confinement (`exports.confinement`, JSON; NULL for a whole org's
//! export) so that whichever replica runs it writes only those events.

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
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE exports DROP COLUMN confinement")
            .await?;
        db.execute_unprepared("ALTER TABLE api_keys DROP COLUMN viewer")
            .await?;
        db.execute_unprepared("ALTER TABLE api_keys DROP COLUMN expires_at")
            .await?;
        Ok(())
    }
}
