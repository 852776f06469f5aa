//! One recorded API call. `seq` is the ingest order (the rollup watermark follows it); `id` is the public id.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// Unique within its org (not across orgs).
    pub id: String,
    pub org_id: String,
    pub ts: i64,
    pub trace_id: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub augmentation_id: Option<String>,
    pub principal_type: Option<String>,
    pub principal_id: Option<String>,
    pub token_id: Option<String>,
    pub token_type: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: String,
    pub status_code: i32,
    pub success: bool,
    pub error_code: Option<String>,
    pub duration_ms: i64,
    pub execution_id: Option<String>,
    pub stages_completed: Option<i32>,
    pub total_stages: Option<i32>,
    pub token_usage: String,
    pub tokens_total: i64,
    pub metadata: String,
    /// Its place in the org's verifiable log: 0, 1, 2, ... in commit order.
    /// `None` only between the migration that added it and the next start.
    pub log_index: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
