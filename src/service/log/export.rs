//! The log in an export ZIP, and verifying such a ZIP offline.
//!
//! `log.jsonl` has one line per leaf of the org's tree, in log order, from
//! index 0 to the checkpoint's size: `{"log_index", "leaf_hash", "event"}`
//! with the event's canonical object (its RFC 8785 bytes are the leaf's
//! input), or `{"log_index", "leaf_hash", "purged": true}` for an event
//! retention purged (its leaf is kept). `checkpoint.txt` is the signed note
//! of the tree at that size. `events.csv` names each row's `log_index`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use base64::Engine as _;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use tlog_tiles::{Hash, HASH_SIZE};

use super::checkpoints::{self, open_note, LogKey, SignedCheckpoint};
use super::leaf::canonical_bytes;
use super::tiles::with_tiles;
use super::verify::{CompactRange, Report};
use crate::domain::error::{AppError, AppResult};
use crate::service::events::EventRow;

pub const LOG_FILE: &str = "log.jsonl";
pub const CHECKPOINT_FILE: &str = "checkpoint.txt";
/// The longest line `verify` reads: an event is at most a few hundred KiB.
const MAX_LINE: usize = 16 << 20;

fn b64(hash: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.0)
}

/// The signed checkpoint an export carries: the org's tree as the export's
/// snapshot holds it, signed now, once it is shown consistent with the
/// latest stored checkpoint (a rewritten tree is refused, never signed).
pub async fn checkpoint_for_export(
    txn: &impl ConnectionTrait,
    key: &LogKey,
    org: &str,
) -> AppResult<SignedCheckpoint> {
    let size = super::tree_size(txn, org).await?;
    let root = checkpoints::root_at(txn, org, size).await?;
    if let Some(last) = checkpoints::latest(txn, key, org)
        .await?
        .filter(|c| c.tree_size > 0)
    {
        let consistent = if last.tree_size > size {
            Err(tlog_tiles::Error::InvalidInput(
                "the log is smaller than its checkpoint".into(),
            ))
        } else {
            with_tiles(txn, org, |r| {
                tlog_tiles::prove_tree(size, last.tree_size, r)
            })
            .await?
            .and_then(|p| tlog_tiles::check_tree(&p, size, root, last.tree_size, last.root_hash))
        };
        consistent.map_err(|e| {
            AppError::internal_msg(format!(
                "the log of {org} at size {size} is not consistent with its checkpoint at {}: {e}; not exporting",
                last.tree_size
            ))
        })?;
    }
    key.sign(org, size, root)
}

/// The lines of `log.jsonl` for log indexes `from..to`.
pub async fn log_lines(
    txn: &impl ConnectionTrait,
    org: &str,
    from: u64,
    to: u64,
) -> AppResult<Vec<u8>> {
    let tiles = super::verify::level0_tiles(txn, org, from, to).await?;
    let events = super::events_from(txn, org, from as i64, to - from).await?;
    let mut events = events.into_iter().peekable();
    let mut out = Vec::with_capacity((to - from) as usize * 700);
    for i in from..to {
        let leaf = super::verify::stored_leaf(&tiles, i).ok_or_else(|| {
            AppError::internal_msg(format!("the log of {org} has no leaf at {i}"))
        })?;
        let event = match events.peek() {
            Some(e) if e.log_index == Some(i as i64) => events.next(),
            _ => None,
        };
        // The event as its canonical bytes: the very input of its leaf.
        match event {
            Some(e) => {
                let head = format!(
                    "{{\"log_index\":{i},\"leaf_hash\":\"{}\",\"event\":",
                    b64(&leaf)
                );
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(&super::leaf::canonical(&EventRow::from(e)));
                out.extend_from_slice(b"}\n");
            }
            None => {
                let line = json!({ "log_index": i, "leaf_hash": b64(&leaf), "purged": true });
                serde_json::to_writer(&mut out, &line).map_err(AppError::internal)?;
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

/// Verifies an export ZIP with the log's verifier key, without a database:
/// every event line's leaf recomputed, the root of all leaves against the
/// signed checkpoint, and every `events.csv` row against the logged event
/// its `log_index` names. The log and the CSV are read at once, on two
/// threads; `progress` is told how many lines of the log were read.
pub fn verify_zip(
    path: &Path,
    verifier_key: &str,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<Report> {
    let open = || -> anyhow::Result<zip::ZipArchive<std::fs::File>> {
        let file = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        zip::ZipArchive::new(file)
            .map_err(|e| anyhow::anyhow!("{} is not a ZIP: {e}", path.display()))
    };
    let mut zip = open()?;
    let mut note = String::new();
    zip.by_name(CHECKPOINT_FILE)
        .map_err(|_| {
            anyhow::anyhow!(
                "{} holds no {CHECKPOINT_FILE}: not an export of a verifiable log",
                path.display()
            )
        })?
        .take(1 << 20)
        .read_to_string(&mut note)
        .map_err(|e| anyhow::anyhow!("cannot read {CHECKPOINT_FILE}: {e}"))?;
    let checkpoint = open_note(&note, verifier_key)
        .map_err(|e| anyhow::anyhow!("{CHECKPOINT_FILE} does not verify with this key: {e}"))?;
    let size = checkpoint.size();
    let (log, csv) = std::thread::scope(|scope| {
        let csv = scope.spawn(|| -> anyhow::Result<CsvPass> { events_csv(&mut open()?) });
        let log = read_log(&mut zip, path, size, progress);
        (log, csv.join())
    });
    let (mut report, tree, digests) = log?;
    let csv = csv.map_err(|_| anyhow::anyhow!("reading events.csv failed"))??;
    if report.total_findings == 0
        && digests.len() as u64 == size
        && tree.root() != *checkpoint.hash()
    {
        report.add_finding(
            Some(0),
            None,
            "the leaves do not give the checkpoint's root: an event was changed together with its leaf hash, or lines were reordered".to_owned(),
        );
    }
    report.checkpoints = 1;
    report.checkpoint_size = size;
    let differing = compare_csv(&digests, csv, &mut report);
    name_rows(&mut zip, differing, &mut report)?;
    Ok(report)
}

/// The log pass: findings, the tree of its leaves, and each line's CSV digest.
fn read_log(
    zip: &mut zip::ZipArchive<std::fs::File>,
    path: &Path,
    size: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<(Report, CompactRange, Vec<Option<[u8; 16]>>)> {
    let mut report = Report {
        tree_size: size,
        ..Report::default()
    };
    let log = zip
        .by_name(LOG_FILE)
        .map_err(|_| anyhow::anyhow!("{} holds no {LOG_FILE}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 20, log);
    let mut tree = CompactRange::default();
    let mut digests: Vec<Option<[u8; 16]>> = Vec::new();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = (&mut lines)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE {
            anyhow::bail!("{LOG_FILE} line {number} is longer than {MAX_LINE} bytes");
        }
        let index = number - 1;
        let (leaf, digest) = match check_line(&line, index) {
            Ok(Checked::Event(leaf, digest)) => {
                report.events += 1;
                report.first_event.get_or_insert(index);
                report.last_event = Some(index);
                (leaf, Some(digest))
            }
            Ok(Checked::Purged(leaf)) => {
                report.purged += 1;
                (leaf, None)
            }
            Err((leaf, id, problem)) => {
                report.add_finding(
                    Some(index),
                    id,
                    format!("{LOG_FILE} line {number}: {problem}"),
                );
                (leaf, None)
            }
        };
        digests.push(digest);
        tree.push(leaf);
        if number % 65_536 == 0 {
            progress(number, size);
        }
    }
    progress(number, size);
    if number != size {
        report.add_finding(
            Some(number.min(size)),
            None,
            format!("{LOG_FILE} has {number} lines, but the checkpoint covers {size} leaves"),
        );
    }
    Ok((report, tree, digests))
}

enum Checked {
    /// An event whose leaf matches: the leaf, and what events.csv must say of it.
    Event(Hash, [u8; 16]),
    Purged(Hash),
}

/// One line of `log.jsonl`, read without copying its event.
#[derive(serde::Deserialize)]
struct Line<'a> {
    log_index: Option<u64>,
    #[serde(borrow)]
    leaf_hash: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<&'a serde_json::value::RawValue>,
    purged: Option<bool>,
}

type Refused = (Hash, Option<String>, String);

/// One line's leaf: recomputed from its event (which must match the line's
/// leaf hash), or the line's own hash for a purged event; `Err` says what
/// is wrong, with the leaf to go on with.
fn check_line(line: &[u8], index: u64) -> Result<Checked, Refused> {
    let zero = Hash([0; HASH_SIZE]);
    let parsed: Line = serde_json::from_slice(line)
        .map_err(|e| (zero, None, format!("not a line of the log ({e})")))?;
    let stated = parsed
        .leaf_hash
        .as_deref()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| <[u8; HASH_SIZE]>::try_from(b).ok())
        .map(Hash);
    if parsed.log_index != Some(index) {
        return Err((
            stated.unwrap_or(zero),
            None,
            format!("out of place: log index {index} expected here"),
        ));
    }
    match (parsed.event, parsed.purged) {
        (Some(raw), _) => {
            let fields = EventFields::read(raw.get());
            let id = fields.as_ref().ok().and_then(|f| f.id.clone());
            // The export writes the canonical bytes; other spellings of the
            // same JSON are canonicalised first.
            let mut leaf = tlog_tiles::record_hash(raw.get().as_bytes());
            if Some(leaf) != stated {
                if let Ok(value) = serde_json::from_str::<Value>(raw.get()) {
                    leaf = tlog_tiles::record_hash(&canonical_bytes(&value));
                }
            }
            match (fields, stated) {
                (Ok(fields), Some(s)) if s == leaf => Ok(Checked::Event(leaf, fields.digest())),
                (Err(e), _) => Err((leaf, None, format!("the event is not an activity ({e})"))),
                _ => Err((
                    leaf,
                    id.clone(),
                    format!(
                        "event {} does not match its leaf hash",
                        id.unwrap_or_default()
                    ),
                )),
            }
        }
        (None, Some(true)) => stated.map(Checked::Purged).ok_or((
            zero,
            None,
            "a purged leaf without its hash".to_owned(),
        )),
        (None, _) => Err((
            stated.unwrap_or(zero),
            None,
            "neither an event nor a purged leaf".to_owned(),
        )),
    }
}

/// The `events.csv` columns a logged event determines, in this order (the
/// names beside ids, and `endpoint_id`, are not part of the event's leaf).
const CSV_FIELDS: [&str; 25] = [
    "id",
    "timestamp",
    "workspace_id",
    "app_id",
    "augmentation_id",
    "user_id",
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
    "token_usage",
    "metadata",
];

/// An event's members as the CSV cells the export writes of them.
struct EventFields {
    id: Option<String>,
    cells: Vec<Vec<u8>>,
}

impl EventFields {
    fn read(raw: &str) -> serde_json::Result<Self> {
        let members: std::collections::HashMap<&str, &serde_json::value::RawValue> =
            serde_json::from_str(raw)?;
        let mut id = None;
        let mut cells = Vec::with_capacity(CSV_FIELDS.len());
        for field in CSV_FIELDS {
            let text = members.get(field).map_or("null", |v| v.get());
            let cell: Vec<u8> = match text.as_bytes().first() {
                Some(b'"') => {
                    let s: std::borrow::Cow<str> = serde_json::from_str(text)?;
                    if field == "id" {
                        id = Some(s.clone().into_owned());
                    }
                    crate::service::export::neutralised(s.as_bytes()).into_owned()
                }
                // `null` is an empty cell; objects are canonical already
                // (the event is), numbers and booleans as written.
                Some(b'n') => Vec::new(),
                _ => text.as_bytes().to_vec(),
            };
            cells.push(cell);
        }
        Ok(Self { id, cells })
    }

    fn digest(&self) -> [u8; 16] {
        digest(self.cells.iter().map(Vec::as_slice))
    }
}

fn digest<'a>(cells: impl Iterator<Item = &'a [u8]>) -> [u8; 16] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for cell in cells {
        hasher.update((cell.len() as u64).to_be_bytes());
        hasher.update(cell);
    }
    let mut out = [0; 16];
    out.copy_from_slice(&hasher.finalize()[..16]);
    out
}

/// What events.csv holds: each row's digest by the log index it names, and
/// the rows that name none (with their id and row number).
#[derive(Default)]
struct CsvPass {
    rows: Vec<Option<(u64, [u8; 16])>>,
    repeated: Vec<(u64, u64, Option<String>)>,
    stray: Vec<(u64, Option<String>)>,
    missing_file: Option<&'static str>,
}

fn events_csv(zip: &mut zip::ZipArchive<std::fs::File>) -> anyhow::Result<CsvPass> {
    let mut pass = CsvPass::default();
    let Ok(file) = zip.by_name("events.csv") else {
        pass.missing_file = Some("the export holds no events.csv");
        return Ok(pass);
    };
    let mut csv = csv::Reader::from_reader(BufReader::with_capacity(1 << 20, file));
    let headers = csv.headers()?.clone();
    let at = |name: &str| headers.iter().position(|h| h == name);
    let Some(index_at) = at("log_index") else {
        pass.missing_file = Some("events.csv has no log_index column");
        return Ok(pass);
    };
    let fields: Vec<Option<usize>> = CSV_FIELDS.iter().map(|f| at(f)).collect();
    let mut record = csv::ByteRecord::new();
    let mut row = 1u64;
    while csv.read_byte_record(&mut record)? {
        row += 1;
        let id = || {
            fields[0]
                .and_then(|i| record.get(i))
                .map(|c| String::from_utf8_lossy(c).into_owned())
        };
        let index = record
            .get(index_at)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u64>().ok())
            .filter(|i| *i < 1 << 40);
        let Some(index) = index else {
            pass.stray.push((row, id()));
            continue;
        };
        let cells = fields
            .iter()
            .map(|at| at.and_then(|i| record.get(i)).unwrap_or_default());
        let digest = digest(cells);
        let slot = index as usize;
        if pass.rows.len() <= slot {
            pass.rows.resize(slot + 1, None);
        }
        if pass.rows[slot].is_some() {
            pass.repeated.push((row, index, id()));
            continue;
        }
        // No id is kept: a row that differs is read again for its id.
        pass.rows[slot] = Some((row, digest));
    }
    Ok(pass)
}

/// Every events.csv row against the logged event its `log_index` names,
/// and every logged event found there. Returns the rows that differ, with
/// their log indexes, for [`name_rows`].
fn compare_csv(logged: &[Option<[u8; 16]>], csv: CsvPass, report: &mut Report) -> Vec<(u64, u64)> {
    if let Some(problem) = csv.missing_file {
        report.add_finding(None, None, problem);
        return Vec::new();
    }
    for (row, id) in csv.stray {
        report.add_finding(
            None,
            id,
            format!("events.csv row {row} names no event of the log"),
        );
    }
    for (row, index, id) in csv.repeated {
        report.add_finding(
            Some(index),
            id,
            format!("events.csv row {row} repeats log index {index}"),
        );
    }
    let mut differing = Vec::new();
    for index in 0..logged.len().max(csv.rows.len()) {
        let expected = logged.get(index).copied().flatten();
        match (expected, csv.rows.get(index).copied().flatten()) {
            (Some(e), Some((_, d))) if e == d => {}
            (_, Some((row, _))) if index >= logged.len() => {
                report.add_finding(
                    None,
                    None,
                    format!("events.csv row {row} names no event of the log"),
                );
            }
            (_, Some((row, _))) => differing.push((row, index as u64)),
            (Some(_), None) => report.add_finding(
                Some(index as u64),
                None,
                format!("events.csv lacks the event at log index {index}"),
            ),
            (None, None) => {}
        }
    }
    differing
}

/// Names the differing rows by their event ids (a second read of
/// events.csv, only when something differs).
fn name_rows(
    zip: &mut zip::ZipArchive<std::fs::File>,
    differing: Vec<(u64, u64)>,
    report: &mut Report,
) -> anyhow::Result<()> {
    if differing.is_empty() {
        return Ok(());
    }
    let mut ids: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let wanted: std::collections::HashSet<u64> = differing.iter().map(|(row, _)| *row).collect();
    let mut csv = csv::Reader::from_reader(BufReader::new(zip.by_name("events.csv")?));
    let id_at = csv.headers()?.iter().position(|h| h == "id");
    let mut record = csv::ByteRecord::new();
    let mut row = 1u64;
    while csv.read_byte_record(&mut record)? {
        row += 1;
        if wanted.contains(&row) {
            if let Some(id) = id_at.and_then(|i| record.get(i)) {
                ids.insert(row, String::from_utf8_lossy(id).into_owned());
            }
        }
    }
    for (row, index) in differing {
        let id = ids.remove(&row);
        report.add_finding(
            Some(index),
            id.clone(),
            format!(
                "events.csv row {row} (event {}) differs from the logged event",
                id.unwrap_or_default()
            ),
        );
    }
    Ok(())
}
