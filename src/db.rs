//! Connecting to the database and bringing its schema up to date.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::DbBackend;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// SQLite's page cache per connection, in KiB.
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;

/// Opens a pool. SQLite runs in WAL mode (readers never wait for the writer) with
/// `synchronous=FULL`, so a committed batch survives a crash of the machine, not
/// just of the process; a writer waits for the lock instead of failing.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                // 64 MiB of page cache per connection: index maintenance on bulk
                // writes and range scans on feeds both stay in memory.
                .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
        });
    let backend = if url.starts_with("sqlite:") {
        DbBackend::Sqlite
    } else {
        DbBackend::Postgres
    };
    options
        .max_connections(pool_size(backend))
        .min_connections(1);
    Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))
}

/// Connections in the pool: SQLite has one writer anyway; PostgreSQL serves
/// concurrent readers.
pub fn pool_size(backend: DbBackend) -> u32 {
    match backend {
        DbBackend::Sqlite => 8,
        _ => 16,
    }
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// How many migrations are not applied yet.
pub async fn pending_migrations(db: &DatabaseConnection) -> anyhow::Result<usize> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}
