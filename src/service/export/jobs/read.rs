//! What the API reads of jobs: counts by state, and a download.

use super::super::org_dir;
use crate::domain::error::{AppError, AppResult};
use crate::domain::grant::{cap, Grant};
use crate::domain::time::now_micros;
use crate::service::statement;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
};
use std::path::{Path, PathBuf};

use super::*;

/// How many jobs are in each state (every state, 0 when none).
pub async fn by_status(db: &DatabaseConnection) -> AppResult<Vec<(JobStatus, i64)>> {
    let rows = db
        .query_all_raw(statement(
            db,
            "SELECT status, COUNT(*) FROM exports GROUP BY status",
            vec![],
        ))
        .await?;
    let mut counts = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
    ]
    .map(|status| (status, 0));
    for row in rows {
        let (status, count): (String, i64) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == status) {
            slot.1 = count;
        }
    }
    Ok(counts.to_vec())
}

/// What the download route serves.
pub enum Download {
    /// Not done yet: the job's state.
    Waiting(entity::export::Model),
    /// Failed: the id of the log line that says why.
    Failed(entity::export::Model),
    /// A file of the export directory (SQLite).
    File(entity::export::Model, PathBuf),
    /// Chunks of `export_chunks` (PostgreSQL).
    Chunks(entity::export::Model),
}

/// An export of the caller's org, unexpired; another org's answers like an
/// unknown one, and so does, to a viewer token, any export it did not ask for.
pub async fn find(
    db: &DatabaseConnection,
    principal: Grant<'_, cap::ActivityExport>,
    export_dir: &Path,
    id: &str,
) -> AppResult<Download> {
    let not_found = || AppError::not_found("export", id);
    let mut query = entity::export::Entity::find_by_id(id.to_owned())
        .filter(entity::export::Column::OrgId.eq(principal.org_id.as_str()));
    if principal.viewer_token.is_some() {
        query = query
            .filter(entity::export::Column::CreatedBy.eq(principal.principal_id.as_str()))
            .filter(entity::export::Column::Confinement.is_not_null());
    }
    let export = query
        .one(db)
        .await?
        .filter(|e| e.expires_at.is_none_or(|at| at >= now_micros()))
        .ok_or_else(not_found)?;
    Ok(match JobStatus::of(&export) {
        JobStatus::Pending | JobStatus::Running => Download::Waiting(export),
        JobStatus::Failed => Download::Failed(export),
        JobStatus::Done => {
            let file = zip_path(
                &org_dir(export_dir, &export.org_id),
                &export.id,
                export.attempt,
            );
            if file.is_file() {
                Download::File(export, file)
            } else if db.get_database_backend() == DbBackend::Postgres {
                Download::Chunks(export)
            } else {
                return Err(not_found());
            }
        }
    })
}

/// The ZIP's chunks in order, one query each: memory stays at one chunk
/// whatever the size.
pub fn chunks(
    db: DatabaseConnection,
    export_id: String,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    futures_util::stream::try_unfold(0i32, move |seq| {
        let (db, export_id) = (db.clone(), export_id.clone());
        async move {
            let row = db
                .query_one_raw(statement(
                    &db,
                    "SELECT data FROM export_chunks WHERE export_id = ? AND seq = ?",
                    vec![export_id.into(), seq.into()],
                ))
                .await
                .map_err(std::io::Error::other)?;
            match row {
                Some(row) => {
                    let data: Vec<u8> = row.try_get_by_index(0).map_err(std::io::Error::other)?;
                    Ok(Some((data, seq + 1)))
                }
                None => Ok(None),
            }
        }
    })
}
