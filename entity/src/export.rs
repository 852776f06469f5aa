//! An export job and, once done, its ZIP (in `export_chunks` on PostgreSQL,
//! a file of the export directory on SQLite).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub file_name: String,
    /// The data rows of all its CSV files; 0 until done.
    pub row_count: i64,
    pub byte_size: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    pub rows_expected: i64,
    pub rows_written: i64,
    /// The runner that claimed it last: `pid N` and a random tag.
    pub claimed_by: Option<String>,
    /// Claims so far: the lease a runner holds is its attempt number.
    pub attempt: i32,
    /// When the runner last said it is alive.
    pub heartbeat_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// `None` for exports made before exports expired.
    pub expires_at: Option<i64>,
    /// The id of the log line that says why it failed.
    pub error_id: Option<String>,
    /// A viewer token's confinement (JSON): only those events are exported.
    pub confinement: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
