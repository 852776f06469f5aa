//! The org's activity as a clean, denormalized ZIP: one CSV per record kind
//! (events, sessions, profiles, problems) with names beside ids, and a
//! `manifest.json` with each file's row count and SHA-256.
//!
//! Memory stays flat whatever the size: rows are read in keyset pages inside
//! one snapshot and handed through a small bounded channel to a blocking
//! thread that streams CSV into the ZIP on disk, hashing as it writes. The ZIP
//! is written under a temporary name and renamed when complete, so a failed or
//! abandoned export never leaves a file that looks finished.

pub mod jobs;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IsolationLevel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::sessions::{self, Activeness, SessionFilter};
use crate::domain::error::{AppError, AppResult};
use crate::domain::time::{format_micros, now_micros};

/// SQLite's page cache during an export, in KiB.
const EXPORT_CACHE_KIB: u32 = 8 * 1024;
/// Rows read per query.
const PAGE: u64 = 2_000;
/// Pages waiting for the writer: what bounds the memory of an export.
const PAGES_IN_FLIGHT: usize = 2;

pub const EVENT_COLUMNS: [&str; 38] = [
    "id",
    "timestamp",
    "org_id",
    "org_name",
    "workspace_id",
    "workspace_name",
    "app_id",
    "app_name",
    "endpoint_id",
    "endpoint_name",
    "augmentation_id",
    "augmentation_name",
    "user_id",
    "user_name",
    "user_email",
    "department_id",
    "department_name",
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
    "trace_id",
    "execution_id",
    "stages_completed",
    "total_stages",
    "tokens_total",
    "token_usage",
    "metadata",
    "seq",
];
pub const SESSION_COLUMNS: [&str; 18] = [
    "id",
    "org_id",
    "org_name",
    "user_id",
    "user_name",
    "user_email",
    "department_id",
    "department_name",
    "role",
    "kind",
    "emulated_by",
    "emulated_by_name",
    "started_at",
    "ended_at",
    "last_seen_at",
    "duration_seconds",
    "ip",
    "user_agent",
];
pub const PROFILE_COLUMNS: [&str; 14] = [
    "user_id",
    "org_id",
    "org_name",
    "name",
    "email",
    "department_id",
    "department_name",
    "role",
    "sessions",
    "logins",
    "emulations",
    "total_session_seconds",
    "last_active",
    "active",
];
pub const PROBLEM_COLUMNS: [&str; 15] = [
    "id",
    "org_id",
    "org_name",
    "type",
    "message",
    "activity_id",
    "session_id",
    "created_by",
    "created_by_name",
    "resolved",
    "resolved_at",
    "resolved_by",
    "resolved_by_name",
    "created_at",
    "updated_at",
];

#[derive(Debug, Clone, Serialize)]
pub struct ManifestFile {
    pub name: String,
    pub row_count: u64,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub org_id: String,
    pub org_name: String,
    pub created_at: String,
    pub files: Vec<ManifestFile>,
    /// The data rows of all the CSV files together.
    pub row_count: u64,
    /// How cells a spreadsheet would run as a formula were written.
    pub formula_cells: &'static str,
}

/// What the manifest says of [`neutralised`] cells.
pub const FORMULA_CELLS: &str = "A cell that begins with =, +, -, @, a tab or a carriage return is written with a leading ' (OWASP's advice against CSV injection), so spreadsheets show it as text";

/// A cell as a spreadsheet may safely open it: text that it would read as a
/// formula gets a leading `'` (OWASP). Exported numbers never start so.
fn neutralised(cell: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match cell.first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => {
            let mut safe = Vec::with_capacity(cell.len() + 1);
            safe.push(b'\'');
            safe.extend_from_slice(cell);
            std::borrow::Cow::Owned(safe)
        }
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// What the writer thread is handed.
enum Part {
    File(&'static str, &'static [&'static str]),
    Rows(Vec<Vec<String>>),
}

/// Rows written so far and the rows the export will hold.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Writes the export of `org_id` to `out`. `progress` hears of every page.
pub async fn write_zip(
    db: &DatabaseConnection,
    org_id: &str,
    out: &Path,
    idle: Activeness,
    progress: Progress<'_>,
) -> AppResult<Manifest> {
    // One snapshot for all four files.
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    let txn = if sqlite {
        db.begin().await?
    } else {
        db.begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?
    };
    if sqlite {
        // One pass over the table reads each page once: a small page cache
        // keeps the export's memory flat. The connection's own is restored
        // after; an export cancelled midway (a request timeout) leaves that
        // pooled connection with the small cache, slower but still correct.
        // Nor are its pages mapped: the pool's shared mmap would count the
        // whole file read so far in the export's resident memory.
        txn.execute_unprepared(&format!("PRAGMA cache_size = -{EXPORT_CACHE_KIB}"))
            .await?;
        txn.execute_unprepared("PRAGMA mmap_size = 0").await?;
    }
    let names = names(&txn, org_id).await?;
    let partial = out.with_extension("zip.partial");
    let (sender, receiver) = mpsc::channel::<Part>(PAGES_IN_FLIGHT);
    let writer = {
        let (partial, org_id, org_name) = (partial.clone(), org_id.to_owned(), names.org.clone());
        tokio::task::spawn_blocking(move || write_parts(&partial, receiver, org_id, org_name))
    };
    let read = read_all(&txn, org_id, &names, idle, &sender, progress).await;
    drop(sender);
    let written = writer.await.map_err(AppError::internal)?;
    let result = match (read, written) {
        (Ok(()), Ok(manifest)) => std::fs::rename(&partial, out)
            .map(|_| manifest)
            .map_err(|e| {
                AppError::internal_msg(format!(
                    "cannot rename {} to {}: {e}",
                    partial.display(),
                    out.display()
                ))
            }),
        // The writer's own failure (a file it cannot create or write) is the
        // cause when both fail: the reader only saw the writer go away.
        (_, Err(e)) => Err(AppError::internal(e)),
        (Err(e), _) => Err(e),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    if sqlite {
        txn.execute_unprepared(&format!(
            "PRAGMA cache_size = -{}",
            crate::db::SQLITE_CACHE_KIB
        ))
        .await?;
        txn.execute_unprepared(&format!(
            "PRAGMA mmap_size = {}",
            crate::db::SQLITE_MMAP_BYTES
        ))
        .await?;
    }
    txn.commit().await?;
    result
}

/// Deflate at its fastest level: it still shrinks CSV several times, and at
/// the default level compression would take most of an export's time.
///
/// Every entry is dated at the export's time (UTC; the ZIP format keeps no
/// zone and counts seconds in twos), not at the format's 1980 default.
fn zip_options(large: bool, at: zip::DateTime) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(large)
        .last_modified_time(at)
}

/// `micros` as a ZIP entry's date (the 1980 default if it cannot be one).
fn zip_time(micros: i64) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    chrono::DateTime::from_timestamp_micros(micros)
        .and_then(|t| {
            zip::DateTime::from_date_and_time(
                u16::try_from(t.year()).ok()?,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

/// Records as CSV bytes (RFC 4180 quoting: commas, quotes and newlines
/// survive), every cell [`neutralised`].
fn csv_bytes<R: AsRef<[u8]>>(
    records: impl IntoIterator<Item = impl IntoIterator<Item = R>>,
) -> anyhow::Result<Vec<u8>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    for record in records {
        csv.write_record(
            record
                .into_iter()
                .map(|cell| neutralised(cell.as_ref()).into_owned()),
        )?;
    }
    csv.into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))
}

/// The CSV file being encoded: counted and hashed as it is encoded.
struct OpenFile {
    name: &'static str,
    hasher: Sha256,
    bytes: u64,
    rows: u64,
}

impl OpenFile {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            hasher: Sha256::new(),
            bytes: 0,
            rows: 0,
        }
    }

    fn add(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }

    fn close(self) -> ManifestFile {
        ManifestFile {
            name: self.name.to_owned(),
            row_count: self.rows,
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        }
    }
}

/// What the encoder hands the compressor.
enum Encoded {
    File(&'static str),
    Bytes(Vec<u8>),
    Closed(ManifestFile),
}

/// The export's two blocking stages, each on a thread of its own so that
/// they use two cores: CSV encoding and SHA-256 here, deflate and the file
/// in [`compress`]. A small bounded channel between them keeps memory flat.
fn write_parts(
    path: &Path,
    mut parts: mpsc::Receiver<Part>,
    org_id: String,
    org_name: String,
) -> anyhow::Result<Manifest> {
    let file =
        File::create(path).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    let (encoded, for_compressor) = std::sync::mpsc::sync_channel::<Encoded>(PAGES_IN_FLIGHT);
    let compressor = std::thread::Builder::new()
        .name("export-deflate".into())
        .spawn(move || compress(file, for_compressor, org_id, org_name))?;
    let encoding = (|| -> anyhow::Result<()> {
        let gone = |_| anyhow::anyhow!("the export compressor stopped");
        let mut current: Option<OpenFile> = None;
        while let Some(part) = parts.blocking_recv() {
            match part {
                Part::File(name, header) => {
                    if let Some(done) = current.take() {
                        encoded.send(Encoded::Closed(done.close())).map_err(gone)?;
                    }
                    encoded.send(Encoded::File(name)).map_err(gone)?;
                    let mut file = OpenFile::new(name);
                    let bytes = csv_bytes([header])?;
                    file.add(&bytes);
                    encoded.send(Encoded::Bytes(bytes)).map_err(gone)?;
                    current = Some(file);
                }
                Part::Rows(rows) => {
                    let file = current
                        .as_mut()
                        .ok_or_else(|| anyhow::anyhow!("rows before a file"))?;
                    file.rows += rows.len() as u64;
                    let bytes = csv_bytes(&rows)?;
                    file.add(&bytes);
                    encoded.send(Encoded::Bytes(bytes)).map_err(gone)?;
                }
            }
        }
        if let Some(done) = current.take() {
            encoded.send(Encoded::Closed(done.close())).map_err(gone)?;
        }
        Ok(())
    })();
    drop(encoded);
    let compressed = compressor
        .join()
        .map_err(|_| anyhow::anyhow!("the export compressor panicked"))?;
    // The compressor's own failure (a file it cannot write) is the cause
    // when both fail: the encoder only saw it go away.
    let manifest = compressed?;
    encoding?;
    Ok(manifest)
}

/// The ZIP: entries in the order they arrive, the manifest last.
fn compress(
    file: File,
    encoded: std::sync::mpsc::Receiver<Encoded>,
    org_id: String,
    org_name: String,
) -> anyhow::Result<Manifest> {
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    let created_at = now_micros();
    let dated = zip_time(created_at);
    let mut files = Vec::new();
    for part in encoded {
        match part {
            Encoded::File(name) => {
                zip.start_file(name, zip_options(name == "events.csv", dated))?
            }
            Encoded::Bytes(bytes) => zip.write_all(&bytes)?,
            Encoded::Closed(file) => files.push(file),
        }
    }
    let manifest = Manifest {
        org_id,
        org_name,
        created_at: format_micros(created_at),
        row_count: files.iter().map(|f| f.row_count).sum(),
        files,
        formula_cells: FORMULA_CELLS,
    };
    zip.start_file("manifest.json", zip_options(false, dated))?;
    serde_json::to_writer_pretty(&mut zip, &manifest)?;
    zip.write_all(b"\n")?;
    let file = zip.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(manifest)
}

/// Names beside ids: the org's directory, small next to its events.
struct Names {
    org: String,
    by_id: HashMap<String, String>,
    emails: HashMap<String, String>,
    departments_of: HashMap<String, String>,
}

impl Names {
    fn of(&self, id: &Option<String>) -> String {
        id.as_ref()
            .and_then(|id| self.by_id.get(id))
            .cloned()
            .unwrap_or_default()
    }
}

async fn names(db: &impl ConnectionTrait, org_id: &str) -> AppResult<Names> {
    let org = entity::org::Entity::find_by_id(org_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("org", org_id))?;
    let mut by_id = HashMap::new();
    macro_rules! load {
        ($module:ident) => {
            for m in entity::$module::Entity::find()
                .filter(entity::$module::Column::OrgId.eq(org_id))
                .all(db)
                .await?
            {
                by_id.insert(m.id, m.name);
            }
        };
    }
    load!(workspace);
    load!(app);
    load!(endpoint);
    load!(augmentation);
    load!(department);
    let (mut emails, mut departments_of) = (HashMap::new(), HashMap::new());
    for u in entity::user::Entity::find()
        .filter(entity::user::Column::OrgId.eq(org_id))
        .all(db)
        .await?
    {
        if let Some(d) = u.department_id {
            departments_of.insert(u.id.clone(), d);
        }
        emails.insert(u.id.clone(), u.email);
        by_id.insert(u.id, u.name);
    }
    Ok(Names {
        org: org.name,
        by_id,
        emails,
        departments_of,
    })
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn time(v: Option<i64>) -> String {
    v.map(format_micros).unwrap_or_default()
}

/// Reads every record of the org and hands it to the writer, page by page.
async fn read_all(
    txn: &impl ConnectionTrait,
    org_id: &str,
    names: &Names,
    idle: Activeness,
    out: &mpsc::Sender<Part>,
    progress: Progress<'_>,
) -> AppResult<()> {
    let send = |part: Part| async move {
        out.send(part)
            .await
            .map_err(|_| AppError::internal_msg("the export writer stopped".to_owned()))
    };

    let events_total = entity::activity_event::Entity::find()
        .filter(entity::activity_event::Column::OrgId.eq(org_id))
        .count(txn)
        .await?;
    let sessions_total = entity::session::Entity::find()
        .filter(entity::session::Column::OrgId.eq(org_id))
        .count(txn)
        .await?;
    let problems_total = entity::problem::Entity::find()
        .filter(entity::problem::Column::OrgId.eq(org_id))
        .count(txn)
        .await?;
    let all_time = SessionFilter::default();
    let profiles = sessions::analytics(txn, org_id, &all_time, idle)
        .await?
        .profiles;
    let total = events_total + sessions_total + problems_total + profiles.len() as u64;
    let mut done = 0;
    progress(done, total);

    use entity::activity_event::Column as E;
    send(Part::File("events.csv", &EVENT_COLUMNS)).await?;
    let mut after: Option<(i64, String)> = None;
    loop {
        let mut query = entity::activity_event::Entity::find().filter(E::OrgId.eq(org_id));
        if let Some((ts, id)) = &after {
            let key = Expr::tuple([Expr::col(E::Ts).into(), Expr::col(E::Id).into()]);
            query = query.filter(key.gt(Expr::tuple([
                Expr::val(*ts).into(),
                Expr::val(id.as_str()).into(),
            ])));
        }
        let page = query
            .order_by_asc(E::Ts)
            .order_by_asc(E::Id)
            .limit(PAGE)
            .all(txn)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.ts, last.id.clone()));
        let rows: Vec<Vec<String>> = page
            .into_iter()
            .map(|e| {
                let department = e
                    .user_id
                    .as_ref()
                    .and_then(|u| names.departments_of.get(u))
                    .cloned();
                vec![
                    e.id,
                    format_micros(e.ts),
                    e.org_id,
                    names.org.clone(),
                    opt(&e.workspace_id),
                    names.of(&e.workspace_id),
                    opt(&e.app_id),
                    names.of(&e.app_id),
                    opt(&e.endpoint_id),
                    names.of(&e.endpoint_id),
                    opt(&e.augmentation_id),
                    names.of(&e.augmentation_id),
                    opt(&e.user_id),
                    names.of(&e.user_id),
                    e.user_id
                        .as_ref()
                        .and_then(|u| names.emails.get(u))
                        .cloned()
                        .unwrap_or_default(),
                    opt(&department),
                    names.of(&department),
                    opt(&e.principal_type),
                    opt(&e.principal_id),
                    opt(&e.token_id),
                    opt(&e.token_type),
                    opt(&e.method),
                    opt(&e.path),
                    opt(&e.resource_type),
                    opt(&e.resource_id),
                    e.action,
                    e.status_code.to_string(),
                    e.success.to_string(),
                    opt(&e.error_code),
                    e.duration_ms.to_string(),
                    opt(&e.trace_id),
                    opt(&e.execution_id),
                    opt(&e.stages_completed),
                    opt(&e.total_stages),
                    e.tokens_total.to_string(),
                    e.token_usage,
                    e.metadata,
                    e.seq.to_string(),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
        progress(done, total);
    }

    send(Part::File("sessions.csv", &SESSION_COLUMNS)).await?;
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = sessions::in_start_order(
            txn,
            org_id,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            PAGE,
            idle,
        )
        .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.started_at, last.id.clone()));
        let rows: Vec<Vec<String>> = page
            .into_iter()
            .map(|s| {
                let seconds = (s.duration_micros() / 1_000_000).to_string();
                vec![
                    s.id,
                    org_id.to_owned(),
                    names.org.clone(),
                    s.user_id,
                    s.user_name,
                    s.user_email,
                    opt(&s.department_id),
                    opt(&s.department_name),
                    s.role,
                    s.kind,
                    opt(&s.emulated_by),
                    opt(&s.emulated_by_name),
                    format_micros(s.started_at),
                    time(s.ended_at),
                    format_micros(s.last_seen_at),
                    seconds,
                    opt(&s.ip),
                    opt(&s.user_agent),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
        progress(done, total);
    }

    send(Part::File("profiles.csv", &PROFILE_COLUMNS)).await?;
    for chunk in profiles.chunks(PAGE as usize) {
        let rows: Vec<Vec<String>> = chunk
            .iter()
            .map(|p| {
                vec![
                    p.user_id.clone(),
                    org_id.to_owned(),
                    names.org.clone(),
                    p.name.clone(),
                    p.email.clone(),
                    opt(&p.department_id),
                    opt(&p.department_name),
                    p.role.clone(),
                    p.counts.sessions.to_string(),
                    p.counts.logins.to_string(),
                    p.counts.emulations.to_string(),
                    (p.total_session_micros / 1_000_000).to_string(),
                    format_micros(p.last_active),
                    p.active.to_string(),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
    }

    send(Part::File("problems.csv", &PROBLEM_COLUMNS)).await?;
    let mut cursor = None;
    loop {
        let (page, has_more) =
            super::problems::page(txn, org_id, None, PAGE, cursor.as_ref()).await?;
        cursor = page.last().map(|p| crate::domain::feed::Cursor {
            ts: p.created_at,
            id: p.id.clone(),
        });
        let rows: Vec<Vec<String>> = page
            .into_iter()
            .map(|p| {
                vec![
                    p.id,
                    p.org_id,
                    names.org.clone(),
                    p.kind,
                    p.message,
                    opt(&p.activity_id),
                    opt(&p.session_id),
                    opt(&p.created_by),
                    names.of(&p.created_by),
                    p.resolved.to_string(),
                    time(p.resolved_at),
                    opt(&p.resolved_by),
                    names.of(&p.resolved_by),
                    format_micros(p.created_at),
                    format_micros(p.updated_at),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
        if !has_more {
            break;
        }
    }
    progress(done, total);
    Ok(())
}

/// Where an org's exports live.
fn org_dir(export_dir: &Path, org_id: &str) -> PathBuf {
    export_dir.join(org_id)
}

#[cfg(test)]
mod formula_tests {
    use super::neutralised;

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_leading_quote() {
        for (cell, safe) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutralised(cell.as_bytes()).as_ref(), safe.as_bytes());
        }
    }
}
