//! Writing activity events. Every writer (seeding, ingest, the request recorder)
//! goes through [`insert_batch`], one multi-row statement per chunk.

use std::collections::BTreeMap;

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

const COLUMNS: [&str; 29] = [
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
    "log_index",
];

/// Rows per statement: 29 columns × 1,000 rows stays under SQLite's 32,766
/// bound parameters (and PostgreSQL's 65,535).
pub const ROWS_PER_STATEMENT: usize = 1_000;

impl EventRow {
    fn push_values(self, log_index: i64, out: &mut Vec<Value>) {
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
            log_index.into(),
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

fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; COLUMNS.len()].join(","));
    let mut sql = format!(
        "INSERT INTO activity_events ({}) VALUES ",
        COLUMNS.join(",")
    );
    sql.push_str(&vec![one; rows].join(","));
    sql
}

/// Stores rows in as few statements as the parameter limits allow, each
/// org's appended to its verifiable log (see [`super::log`]): the org's log
/// is locked until the transaction ends, its new events numbered after the
/// ones it holds, their leaves added to its tree. With `skip_existing`, rows
/// whose id the org already stored are left out (idempotent ingest) and get
/// no leaf. Returns how many rows were stored. Run it inside a transaction:
/// the rows, their indexes and the tree land together or not at all.
pub async fn insert_batch(
    db: &impl ConnectionTrait,
    rows: impl IntoIterator<Item = EventRow>,
    skip_existing: bool,
) -> Result<u64, DbErr> {
    let mut by_org: BTreeMap<String, Vec<EventRow>> = BTreeMap::new();
    for row in rows {
        by_org.entry(row.org_id.clone()).or_default().push(row);
    }
    if by_org.is_empty() {
        return Ok(0);
    }
    super::live::start_event_write(db).await?;
    // Every org's log is locked before any row is written, in one order
    // (the map's), so two writers of the same orgs cannot deadlock.
    let mut sizes = Vec::with_capacity(by_org.len());
    for org in by_org.keys() {
        sizes.push(super::log::lock(db, org).await?);
    }
    let mut stored = 0;
    for ((org, rows), size) in by_org.into_iter().zip(sizes) {
        let numbered = super::log::append(db, &org, size, rows, skip_existing).await?;
        let mut numbered = numbered.into_iter().peekable();
        while numbered.peek().is_some() {
            let mut values = Vec::with_capacity(ROWS_PER_STATEMENT * COLUMNS.len());
            let mut count = 0;
            for (index, row) in numbered.by_ref().take(ROWS_PER_STATEMENT) {
                row.push_values(index, &mut values);
                count += 1;
            }
            let stmt = super::statement(db, &insert_sql(count), values);
            stored += db.execute_raw(stmt).await?.rows_affected();
        }
    }
    Ok(stored)
}
