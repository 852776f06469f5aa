//! Connecting to the database and bringing its schema up to date.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::DbBackend;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// SQLite's page cache per connection, in KiB.
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;
/// How much of the SQLite file reads map instead of copying.
pub const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// Opens a pool of the backend's default size ([`pool_size`]).
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    connect_sized(url, 0).await
}

/// Opens a pool of at most `max_connections` (0: the backend's default).
/// SQLite runs in WAL mode (readers never wait for the writer) with
/// `synchronous=FULL`, so a committed batch survives a crash of the machine, not
/// just of the process; a writer waits for the lock instead of failing.
pub async fn connect_sized(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        // A ping before each acquire was a round trip per statement. sqlx
        // already tests a connection when it is released and closes a broken
        // one; a connection that sat idle (the server may have restarted
        // meanwhile) is still tested before use.
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                // 64 MiB of page cache per connection: index maintenance on bulk
                // writes and range scans on feeds both stay in memory.
                .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
                // Reads map the file (up to 1 GiB) instead of copying pages
                // into each connection's private cache: a request that lands
                // on a connection another tenant's scans just used does not
                // start cold (measured: a tenant's page of 50 during another
                // tenant's flood went from 2.1x to 1.5-1.85x its calm latency).
                .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
        })
        .map_sqlx_postgres_opts(|o| {
            // One request, one core: a parallel plan would let one tenant's
            // scan take the cores that admission keeps for the others
            // (measured: from 2.0x to 1.35-1.5x, as for SQLite above).
            o.options([("max_parallel_workers_per_gather", "0")])
        });
    let backend = if url.starts_with("sqlite:") {
        DbBackend::Sqlite
    } else {
        DbBackend::Postgres
    };
    let max_connections = match max_connections {
        0 => pool_size(backend),
        n => n,
    };
    options
        .max_connections(max_connections)
        .min_connections(1)
        // Every acquisition says how long it took, as a trace-level event
        // that telemetry's pool counter reads (`/metrics`); the ones over
        // sqlx's slow threshold (2 s) stay warnings in the log.
        .map_sqlx_sqlite_pool_opts(|o| o.acquire_time_level(log::LevelFilter::Trace))
        .map_sqlx_postgres_pool_opts(|o| o.acquire_time_level(log::LevelFilter::Trace));
    if backend == DbBackend::Postgres {
        // One direct connection first: a refused or unknown server fails at
        // once with its cause, where the pool would wait out its timeout and
        // say only that it timed out.
        reach_postgres(url).await?;
    }
    Database::connect(options).await.map_err(|e| match backend {
        DbBackend::Sqlite => {
            anyhow::anyhow!("cannot open the SQLite database {}: {e}", sqlite_path(url))
        }
        _ => anyhow::anyhow!("cannot open the database: {}", without_line(&e.to_string())),
    })
}

/// The file of a `sqlite://FILE?...` URL, as the error names it.
fn sqlite_path(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or(rest)
}

/// PostgreSQL's messages end in the server's own source line ("at line 948"),
/// which reads like a place in the user's input: it goes.
fn without_line(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) if message[at + 9..].trim().bytes().all(|b| b.is_ascii_digit()) => {
            message[..at].to_owned()
        }
        _ => message.to_owned(),
    }
}

async fn reach_postgres(url: &str) -> anyhow::Result<()> {
    use sea_orm::sqlx::postgres::PgConnectOptions;
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| anyhow::anyhow!("the database URL is not a valid PostgreSQL URL: {e}"))?;
    // Host and port only: the URL may hold a password.
    let server = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cannot connect to PostgreSQL at {server}: {}",
            without_line(&e.to_string())
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot connect to PostgreSQL at {server}: no answer within 5 s"
        )),
    }
}

/// Connections in the pool by default: SQLite has one writer anyway;
/// PostgreSQL serves concurrent readers.
pub fn pool_size(backend: DbBackend) -> u32 {
    match backend {
        DbBackend::Sqlite => 8,
        _ => 16,
    }
}

/// The most connections the pool may open.
pub fn pool_max(db: &DatabaseConnection) -> u32 {
    match db.get_database_backend() {
        DbBackend::Sqlite => db
            .get_sqlite_connection_pool()
            .options()
            .get_max_connections(),
        _ => db
            .get_postgres_connection_pool()
            .options()
            .get_max_connections(),
    }
}

/// The pool's open connections and, of them, the idle ones.
pub fn pool_usage(db: &DatabaseConnection) -> (usize, usize) {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
        _ => {
            let pool = db.get_postgres_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
    }
}

/// Applies pending migrations, then gives events stored before the
/// verifiable log their log indexes and leaves (in `seq` order).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    crate::service::log::index_unindexed(db)
        .await
        .map_err(|e| anyhow::anyhow!("indexing the verifiable log failed: {e}"))?;
    Ok(())
}

/// How many migrations are not applied yet.
pub async fn pending_migrations(db: &DatabaseConnection) -> anyhow::Result<usize> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_servers_own_source_line_is_cut_from_its_messages() {
        assert_eq!(
            super::without_line("relation \"x\" does not exist at line 948"),
            "relation \"x\" does not exist"
        );
        assert_eq!(super::without_line("at line one"), "at line one");
        assert_eq!(
            super::sqlite_path("sqlite:///tmp/a.db?mode=rwc"),
            "/tmp/a.db"
        );
        assert_eq!(super::sqlite_path("sqlite://a.db"), "a.db");
    }
}
