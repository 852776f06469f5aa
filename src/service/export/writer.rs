//! The ZIP on disk: CSV encoding and hashing on one thread, deflate on another.

use super::super::sessions::Activeness;
use crate::domain::error::{AppError, AppResult};
use crate::domain::time::{format_micros, now_micros};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel, TransactionTrait,
};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use tokio::sync::mpsc;

use super::*;

/// What the writer thread is handed.
pub(super) enum Part {
    /// A CSV file and its header row.
    File(&'static str, &'static [&'static str]),
    Rows(Vec<Vec<String>>),
    /// A file of the verifiable log, written as given (not CSV).
    LogFile(&'static str),
    /// Bytes of the current log file, and how many lines they hold.
    Lines(Vec<u8>, u64),
}

/// Rows written so far and the rows the export will hold.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Writes the export of `org_id` to `out`: the whole org's, or, `confined`
/// (a viewer token's), only the events it confines to, with no sessions,
/// profiles, problems or log. `progress` hears of every page.
pub async fn write_zip(
    db: &DatabaseConnection,
    log_key: &crate::service::log::checkpoints::LogKey,
    org_id: &str,
    confined: Option<&crate::domain::feed::ActivityFilter>,
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
    let read = read_all(
        &txn, log_key, org_id, confined, &names, idle, &sender, progress,
    )
    .await;
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
pub(super) fn zip_options(large: bool, at: zip::DateTime) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(large)
        .last_modified_time(at)
}

/// `micros` as a ZIP entry's date (the 1980 default if it cannot be one).
pub(super) fn zip_time(micros: i64) -> zip::DateTime {
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
pub(super) fn csv_bytes<R: AsRef<[u8]>>(
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
pub(super) struct OpenFile {
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
pub(super) enum Encoded {
    File(&'static str),
    Bytes(Vec<u8>),
    Closed(ManifestFile),
}

/// The export's two blocking stages, each on a thread of its own so that
/// they use two cores: CSV encoding and SHA-256 here, deflate and the file
/// in [`compress`]. A small bounded channel between them keeps memory flat.
pub(super) fn write_parts(
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
                Part::LogFile(name) => {
                    if let Some(done) = current.take() {
                        encoded.send(Encoded::Closed(done.close())).map_err(gone)?;
                    }
                    encoded.send(Encoded::File(name)).map_err(gone)?;
                    current = Some(OpenFile::new(name));
                }
                Part::Lines(bytes, lines) => {
                    let file = current
                        .as_mut()
                        .ok_or_else(|| anyhow::anyhow!("lines before a file"))?;
                    file.rows += lines;
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
pub(super) fn compress(
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
            Encoded::File(name) => zip.start_file(
                name,
                zip_options(
                    name == "events.csv" || name == crate::service::log::export::LOG_FILE,
                    dated,
                ),
            )?,
            Encoded::Bytes(bytes) => zip.write_all(&bytes)?,
            Encoded::Closed(file) => files.push(file),
        }
    }
    let (files, verifiable_log): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|f| f.name.ends_with(".csv"));
    let manifest = Manifest {
        org_id,
        org_name,
        created_at: format_micros(created_at),
        row_count: files.iter().map(|f| f.row_count).sum(),
        files,
        verifiable_log,
        formula_cells: FORMULA_CELLS,
    };
    zip.start_file("manifest.json", zip_options(false, dated))?;
    serde_json::to_writer_pretty(&mut zip, &manifest)?;
    zip.write_all(b"\n")?;
    let file = zip.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(manifest)
}
