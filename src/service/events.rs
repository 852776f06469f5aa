//! Writing activity events. Every writer (seeding, ingest, the request recorder)
//! goes through [`insert_batch`], one multi-row statement per chunk.

use sea_orm::{ConnectionTrait, DbErr, Value};

/// One event as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRow {
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
    /// A JSON object of token counts; `tokens_total` is their sum.
    pub token_usage: String,
    pub tokens_total: i64,
    /// A JSON object.
    pub metadata: String,
}

const COLUMNS: [&str; 28] = [
    "id",
    "org_id",
    "ts",
    "trace_id",
    "user_id",
    "workspace_id",
    "app_id",
    "endpoint_id",
    "augmentation_id",
    "principal_type",
    "principal_id",
    "token_id",
    "token_type",
    "method",
    "path",
    "resource_type",
    "resource_id",
    "action",
    "status_code",
    "success",
    "error_code",
    "duration_ms",
    "execution_id",
    "stages_completed",
    "total_stages",
    "token_usage",
    "tokens_total",
    "metadata",
];

/// Rows per statement: 28 columns × 1,000 rows stays under SQLite's 32,766
/// bound parameters (and PostgreSQL's 65,535).
pub const ROWS_PER_STATEMENT: usize = 1_000;

impl EventRow {
    fn push_values(self, out: &mut Vec<Value>) {
        out.extend([
            self.id.into(),
            self.org_id.into(),
            self.ts.into(),
            self.trace_id.into(),
            self.user_id.into(),
            self.workspace_id.into(),
            self.app_id.into(),
            self.endpoint_id.into(),
            self.augmentation_id.into(),
            self.principal_type.into(),
            self.principal_id.into(),
            self.token_id.into(),
            self.token_type.into(),
            self.method.into(),
            self.path.into(),
            self.resource_type.into(),
            self.resource_id.into(),
            self.action.into(),
            self.status_code.into(),
            self.success.into(),
            self.error_code.into(),
            self.duration_ms.into(),
            self.execution_id.into(),
            self.stages_completed.into(),
            self.total_stages.into(),
            self.token_usage.into(),
            self.tokens_total.into(),
            self.metadata.into(),
        ]);
    }
}

impl EventRow {
    /// The row with every text field made storable on every backend (see
    /// [`crate::domain::text`]); for rows the gateway records itself.
    pub fn storable(mut self) -> Self {
        use crate::domain::text::storable;
        let clean = |v: &mut String| {
            if v.contains('\0') {
                *v = storable(v);
            }
        };
        for field in [
            &mut self.id,
            &mut self.org_id,
            &mut self.action,
            &mut self.token_usage,
            &mut self.metadata,
        ] {
            clean(field);
        }
        for field in [
            &mut self.trace_id,
            &mut self.user_id,
            &mut self.workspace_id,
            &mut self.app_id,
            &mut self.endpoint_id,
            &mut self.augmentation_id,
            &mut self.principal_type,
            &mut self.principal_id,
            &mut self.token_id,
            &mut self.token_type,
            &mut self.method,
            &mut self.path,
            &mut self.resource_type,
            &mut self.resource_id,
            &mut self.error_code,
            &mut self.execution_id,
        ]
        .into_iter()
        .flatten()
        {
            clean(field);
        }
        self
    }
}

fn insert_sql(rows: usize, skip_existing: bool) -> String {
    let one = format!("({})", vec!["?"; COLUMNS.len()].join(","));
    let mut sql = format!(
        "INSERT INTO activity_events ({}) VALUES ",
        COLUMNS.join(",")
    );
    sql.push_str(&vec![one; rows].join(","));
    if skip_existing {
        // Both backends know this form: an id the org already stored is not
        // stored twice (ids are unique per org, never across orgs).
        sql.push_str(" ON CONFLICT (org_id, id) DO NOTHING");
    }
    sql
}

/// Inserts rows in as few statements as the parameter limits allow. With
/// `skip_existing`, rows whose id is already stored are left out (idempotent
/// ingest). Returns how many rows were stored. Run it inside a transaction
/// when the batch must land whole.
pub async fn insert_batch(
    db: &impl ConnectionTrait,
    rows: impl IntoIterator<Item = EventRow>,
    skip_existing: bool,
) -> Result<u64, DbErr> {
    let mut stored = 0;
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_some() {
        super::live::start_event_write(db).await?;
    }
    while rows.peek().is_some() {
        let mut values = Vec::with_capacity(ROWS_PER_STATEMENT * COLUMNS.len());
        let mut count = 0;
        for row in rows.by_ref().take(ROWS_PER_STATEMENT) {
            row.push_values(&mut values);
            count += 1;
        }
        let stmt = super::statement(db, &insert_sql(count, skip_existing), values);
        stored += db.execute_raw(stmt).await?.rows_affected();
    }
    Ok(stored)
}
