//! An activity id is unique within its org, not across orgs: ingest
//! idempotency is per org, so one org can neither learn of nor suppress
//! another org's event by sending the same id. Also a table for the
//! server's own secrets (the key that seals cursors).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNIQUE_PER_ORG: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_activity_events_org_id ON activity_events (org_id, id)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE activity_events DROP CONSTRAINT IF EXISTS activity_events_id_key",
                )
                .await?;
                db.execute_unprepared(UNIQUE_PER_ORG).await?;
            }
            _ => rebuild_sqlite_events_without_global_unique_id(db).await?,
        }
        m.create_table(
            Table::create()
                .table(Alias::new("server_secrets"))
                .if_not_exists()
                .col(
                    ColumnDef::new(Alias::new("name"))
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Alias::new("value")).text().not_null())
                .col(
                    ColumnDef::new(Alias::new("created_at"))
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(Alias::new("server_secrets"))
                .if_exists()
                .to_owned(),
        )
        .await?;
        // Ids were unique per org; they may no longer be unique globally.
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ux_activity_events_org_id")
            .await?;
        Ok(())
    }
}

/// SQLite cannot drop a column's UNIQUE constraint: the table is rebuilt
/// with the same columns (its own DDL, minus that constraint), the rows and
/// `seq` values copied, and its indexes created again.
async fn rebuild_sqlite_events_without_global_unique_id(
    db: &SchemaManagerConnection<'_>,
) -> Result<(), DbErr> {
    let ddl = |kind: &str| {
        Statement::from_string(
            DbBackend::Sqlite,
            format!(
                "SELECT sql FROM sqlite_master WHERE type = '{kind}' AND tbl_name = 'activity_events' AND sql IS NOT NULL"
            ),
        )
    };
    let table_sql: String = db
        .query_one_raw(ddl("table"))
        .await?
        .ok_or_else(|| DbErr::Migration("activity_events is missing".into()))?
        .try_get("", "sql")?;
    let unique_id = "\"id\" varchar(64) NOT NULL UNIQUE";
    if !table_sql.contains(unique_id) {
        return Err(DbErr::Migration(format!(
            "activity_events has an unexpected definition: {table_sql}"
        )));
    }
    let index_sql: Vec<String> = db
        .query_all_raw(ddl("index"))
        .await?
        .iter()
        .map(|row| row.try_get("", "sql"))
        .collect::<Result<_, _>>()?;
    let rebuilt = table_sql.replacen(unique_id, "\"id\" varchar(64) NOT NULL", 1);
    // One script, so that every step runs on one connection, in order. The
    // old table's indexes go with it and are made again by their names.
    let mut script = vec![
        "ALTER TABLE activity_events RENAME TO activity_events_before".to_owned(),
        rebuilt,
        "INSERT INTO activity_events SELECT * FROM activity_events_before".to_owned(),
        "DROP TABLE activity_events_before".to_owned(),
    ];
    script.extend(index_sql);
    script.push(UNIQUE_PER_ORG.to_owned());
    db.execute_unprepared(&script.join(";\n")).await?;
    Ok(())
}
