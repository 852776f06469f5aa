//! The only code that queries the database. GraphQL resolvers and REST handlers
//! both call these functions, so the two transports can never disagree.

pub mod activity;
pub mod directory;
pub mod events;
pub mod export;
pub mod ingest;
pub mod keys;
pub mod live;
pub mod log;
pub mod problems;
pub mod recorder;
pub mod retention;
pub mod rollups;
pub mod scope;
pub mod secrets;
pub mod sessions;
pub mod streams;
pub mod summary;
pub mod viewer_tokens;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::domain::error::AppError;

/// Binds values into a statement written with `?` placeholders, for either backend.
/// Raw SQL is kept for the few statements SeaQuery cannot say as plainly.
pub(crate) fn statement(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Waits for a PostgreSQL transaction-level advisory lock, held until the
/// transaction ends: how work that must not run twice at once, in any
/// process, takes turns. SQLite needs none: one process, one writer.
pub(crate) async fn advisory_xact_lock(
    txn: &impl ConnectionTrait,
    key: i64,
) -> Result<(), sea_orm::DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({key})"))
            .await?;
    }
    Ok(())
}

/// [`advisory_xact_lock`] without waiting: `false` when another
/// transaction holds it (always `true` on SQLite).
pub(crate) async fn try_advisory_xact_lock(
    txn: &impl ConnectionTrait,
    key: i64,
) -> Result<bool, sea_orm::DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let row = txn
        .query_one_raw(statement(
            txn,
            &format!("SELECT pg_try_advisory_xact_lock({key})"),
            vec![],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false))
}

/// Runs `work` to its end on a task of its own. A request future can be
/// dropped at any await (the client went away, the timeout fired); work that
/// holds a transaction must not be, or its pooled connection could go back
/// to the pool inside that transaction (and, for event writers, holding
/// their advisory lock). Every transaction opened for a request runs here.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::domain::error::AppResult<T>> + Send + 'static,
) -> crate::domain::error::AppResult<T> {
    tokio::spawn(work)
        .await
        .map_err(crate::domain::error::AppError::internal)?
}

/// A lock of an in-process cache. A poisoned one still guards consistent
/// data: every holder leaves what it guards whole.
pub(crate) fn unpoisoned<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether the database answers at all.
pub async fn ping(db: &DatabaseConnection) -> bool {
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), db.ping()).await,
        Ok(Ok(()))
    )
}

/// A database failure: unreachable is the client's 503, anything else a bug.
impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match &e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::warn!(error = %e, "database connection failed");
                Self::Unavailable
            }
            _ => Self::internal(e),
        }
    }
}
