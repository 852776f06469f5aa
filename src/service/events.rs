//! Writing activity events. Every writer (seeding, ingest, the request recorder)
//! goes through [`insert_batch`], one statement per chunk of rows (see
//! [`insert_statement`]).

use std::collections::{BTreeMap, HashSet};

use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

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

/// The stored columns, each with the type of its array (see
/// [`unnest_statement`]).
const COLUMNS: [(&str, ArrayType); 29] = [
    ("id", ArrayType::String),
    ("org_id", ArrayType::String),
    ("ts", ArrayType::BigInt),
    ("trace_id", ArrayType::String),
    ("user_id", ArrayType::String),
    ("workspace_id", ArrayType::String),
    ("app_id", ArrayType::String),
    ("endpoint_id", ArrayType::String),
    ("augmentation_id", ArrayType::String),
    ("principal_type", ArrayType::String),
    ("principal_id", ArrayType::String),
    ("token_id", ArrayType::String),
    ("token_type", ArrayType::String),
    ("method", ArrayType::String),
    ("path", ArrayType::String),
    ("resource_type", ArrayType::String),
    ("resource_id", ArrayType::String),
    ("action", ArrayType::String),
    ("status_code", ArrayType::Int),
    ("success", ArrayType::Bool),
    ("error_code", ArrayType::String),
    ("duration_ms", ArrayType::BigInt),
    ("execution_id", ArrayType::String),
    ("stages_completed", ArrayType::Int),
    ("total_stages", ArrayType::Int),
    ("token_usage", ArrayType::String),
    ("tokens_total", ArrayType::BigInt),
    ("metadata", ArrayType::String),
    ("log_index", ArrayType::BigInt),
];

/// Rows per statement: 29 columns × 1,000 rows stays under SQLite's 32,766
/// bound parameters (PostgreSQL's arrays have no such bound).
pub const ROWS_PER_STATEMENT: usize = 1_000;

/// A row [`insert_batch`] stores: owned, its texts move into the
/// statement; or borrowed, they are copied and the caller keeps its rows
/// (the recorder does, to retry a batch).
pub trait StoredRow: std::borrow::Borrow<EventRow> {
    fn push_values(self, log_index: i64, out: &mut Vec<Value>);
}

impl StoredRow for &EventRow {
    fn push_values(self, log_index: i64, out: &mut Vec<Value>) {
        self.clone().push_values(log_index, out)
    }
}

impl StoredRow for EventRow {
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

fn column_names() -> String {
    COLUMNS.map(|(name, _)| name).join(",")
}

/// The statement that stores `values` (`rows` rows of [`COLUMNS`], row after row).
fn insert_statement(
    db: &impl ConnectionTrait,
    values: Vec<Value>,
    rows: usize,
    skip_existing: bool,
) -> Statement {
    // Both backends know this form: an id the org already stored is not
    // stored twice (ids are unique per org, never across orgs).
    let on_conflict = if skip_existing {
        " ON CONFLICT (org_id, id) DO NOTHING RETURNING id"
    } else {
        ""
    };
    if db.get_database_backend() == DbBackend::Postgres {
        return unnest_statement(values, rows, on_conflict);
    }
    let one = format!("({})", vec!["?"; COLUMNS.len()].join(","));
    let sql = format!(
        "INSERT INTO activity_events ({}) VALUES {}{on_conflict}",
        column_names(),
        vec![one; rows].join(","),
    );
    super::statement(db, &sql, values)
}

/// PostgreSQL's form: one array per column, unnested. Its text is the same
/// for any number of rows, so a connection plans it once and keeps the
/// plan; a multi-row `VALUES` list is a new text for every batch size, and
/// planning 1,000 of its rows took 12 to 16 ms, against about 20 ms to
/// store them. The driver binds arrays without NULL elements, so each row
/// also carries a mask of its NULL columns (bit `i` for column `i`), and a
/// NULL's place in its column's array holds a placeholder of the column's
/// type.
fn unnest_statement(values: Vec<Value>, rows: usize, on_conflict: &str) -> Statement {
    let mut columns: Vec<Vec<Value>> = (0..COLUMNS.len())
        .map(|_| Vec::with_capacity(rows))
        .collect();
    let mut nulls = Vec::with_capacity(rows);
    let mut row_nulls = 0i64;
    for (i, value) in values.into_iter().enumerate() {
        let column = i % COLUMNS.len();
        if value.is_some() {
            columns[column].push(value);
        } else {
            row_nulls |= 1 << column;
            columns[column].push(value.dummy_value());
        }
        if column == COLUMNS.len() - 1 {
            nulls.push(Value::BigInt(Some(std::mem::take(&mut row_nulls))));
        }
    }
    let mut arrays: Vec<Value> = columns
        .into_iter()
        .zip(COLUMNS)
        .map(|(column, (_, array_type))| Value::Array(array_type, Some(Box::new(column))))
        .collect();
    arrays.push(Value::Array(ArrayType::BigInt, Some(Box::new(nulls))));
    Statement::from_sql_and_values(DbBackend::Postgres, unnest_sql(on_conflict), arrays)
}

/// PostgreSQL's name of the element type of a [`COLUMNS`] array.
fn sql_type(array_type: &ArrayType) -> &'static str {
    match array_type {
        ArrayType::BigInt => "int8",
        ArrayType::Int => "int4",
        ArrayType::Bool => "bool",
        _ => "text",
    }
}

fn unnest_sql(on_conflict: &str) -> String {
    let selected: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| format!("CASE WHEN r.nulls & {} = 0 THEN r.{name} END", 1i64 << i))
        .collect();
    let arrays: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, array_type))| format!("${}::{}[]", i + 1, sql_type(array_type)))
        .collect();
    format!(
        "INSERT INTO activity_events ({names}) SELECT {selected} FROM unnest({arrays}, ${mask}::int8[]) \
         AS r({names}, nulls){on_conflict}",
        names = column_names(),
        selected = selected.join(", "),
        arrays = arrays.join(", "),
        mask = COLUMNS.len() + 1,
    )
}

/// Stores rows in as few statements as the parameter limits allow, each
/// org's appended to its verifiable log (see [`super::log`]): the org's log
/// is locked until the transaction ends, its new events numbered after the
/// ones it holds, their leaves added to its tree. With `skip_existing`, rows
/// whose id the org already stored are left out (idempotent ingest) and get
/// no leaf. Returns how many rows were stored. Run it inside a transaction:
/// the rows, their indexes and the tree land together or not at all.
pub async fn insert_batch<R: StoredRow>(
    db: &impl ConnectionTrait,
    rows: impl IntoIterator<Item = R>,
    skip_existing: bool,
) -> Result<u64, DbErr> {
    let mut by_org: BTreeMap<String, Vec<R>> = BTreeMap::new();
    for row in rows {
        by_org
            .entry(row.borrow().org_id.clone())
            .or_default()
            .push(row);
    }
    if by_org.is_empty() {
        return Ok(0);
    }
    // Leaves before any lock is taken: hashing holds up no other writer.
    let leaves: Vec<Vec<tlog_tiles::Hash>> = by_org
        .values()
        .map(|rows| {
            rows.iter()
                .map(|row| super::log::leaf::leaf_hash(row.borrow()))
                .collect()
        })
        .collect();
    super::live::start_event_write(db).await?;
    // Every org's log is locked before any row is written, in one order
    // (the map's), so two writers of the same orgs cannot deadlock.
    let mut sizes = Vec::with_capacity(by_org.len());
    for org in by_org.keys() {
        sizes.push(super::log::lock(db, org).await?);
    }
    let mut stored = 0;
    for (((org, rows), leaves), size) in by_org.into_iter().zip(leaves).zip(sizes) {
        let count = rows.len();
        if !skip_existing {
            // Every row is new, so the tree grows by all of them, and it
            // grows first: the rows' index entries then stand uncommitted
            // only for the insert and the commit, and a reader of the org's
            // newest events steps over each of them until then.
            super::log::extend(db, &org, size, leaves).await?;
            insert_numbered(db, rows, size, false).await?;
            stored += count as u64;
            continue;
        }
        // A row the org already held is not stored (ON CONFLICT), and the
        // ones after it move down.
        let ids: Vec<String> = rows.iter().map(|r| r.borrow().id.clone()).collect();
        let kept = insert_numbered(db, rows, size, true).await?;
        if kept.len() == count {
            stored += count as u64;
            super::log::extend(db, &org, size, leaves).await?;
            continue;
        }
        // Some were repeats: the stored ones close up, in order, so the log
        // stays dense. Each moves down to a free place (rare: a retry).
        let mut next = size as i64;
        let mut kept_leaves = Vec::with_capacity(kept.len());
        let mut seen = HashSet::new();
        for ((id, leaf), tentative) in ids.iter().zip(leaves).zip(size as i64..) {
            if !kept.contains(id) || !seen.insert(id.as_str()) {
                continue;
            }
            if tentative != next {
                db.execute_raw(super::statement(
                    db,
                    "UPDATE activity_events SET log_index = ? WHERE org_id = ? AND id = ?",
                    vec![next.into(), org.as_str().into(), id.as_str().into()],
                ))
                .await?;
            }
            kept_leaves.push(leaf);
            next += 1;
        }
        stored += kept_leaves.len() as u64;
        super::log::extend(db, &org, size, kept_leaves).await?;
    }
    Ok(stored)
}

/// Inserts one org's rows, numbered in order from its log's `size`, in as
/// few statements as the parameter limits allow. With `skip_existing`,
/// returns the ids stored (an id the org held already is not); without,
/// nothing.
async fn insert_numbered<R: StoredRow>(
    db: &impl ConnectionTrait,
    rows: Vec<R>,
    size: u64,
    skip_existing: bool,
) -> Result<HashSet<String>, DbErr> {
    let mut kept = HashSet::new();
    let mut numbered = rows.into_iter().zip(size as i64..).peekable();
    while numbered.peek().is_some() {
        let mut values = Vec::with_capacity(ROWS_PER_STATEMENT * COLUMNS.len());
        let mut n = 0;
        for (row, index) in numbered.by_ref().take(ROWS_PER_STATEMENT) {
            row.push_values(index, &mut values);
            n += 1;
        }
        let stmt = insert_statement(db, values, n, skip_existing);
        if skip_existing {
            for row in db.query_all_raw(stmt).await? {
                kept.insert(row.try_get_by_index::<String>(0)?);
            }
        } else {
            db.execute_raw(stmt).await?;
        }
    }
    Ok(kept)
}
