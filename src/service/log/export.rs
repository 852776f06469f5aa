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
use super::leaf::{canonical_bytes, rest_object};
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
        let line = match event {
            Some(e) => {
                json!({ "log_index": i, "leaf_hash": b64(&leaf), "event": rest_object(&EventRow::from(e)) })
            }
            None => json!({ "log_index": i, "leaf_hash": b64(&leaf), "purged": true }),
        };
        serde_json::to_writer(&mut out, &line).map_err(AppError::internal)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Verifies an export ZIP with the log's verifier key, without a database:
/// every event line's leaf recomputed, the root of all leaves against the
/// signed checkpoint. `progress` is told how many lines were read.
pub fn verify_zip(
    path: &Path,
    verifier_key: &str,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Report> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| anyhow::anyhow!("{} is not a ZIP: {e}", path.display()))?;
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
    let mut report = Report {
        tree_size: size,
        checkpoint_size: size,
        checkpoints: 1,
        ..Report::default()
    };
    let log = zip
        .by_name(LOG_FILE)
        .map_err(|_| anyhow::anyhow!("{} holds no {LOG_FILE}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 20, log.take(u64::MAX));
    let mut tree = CompactRange::default();
    // What each logged event says events.csv must hold (16 bytes a leaf).
    let mut digests: Vec<Option<[u8; 16]>> = Vec::new();
    let mut line = Vec::new();
    let mut number = 0u64;
    let (mut first, mut last) = (None, None);
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
        let value = serde_json::from_slice::<Value>(&line);
        digests.push(value.as_ref().ok().and_then(csv_digest_of_line));
        let leaf = match check_line(value, index) {
            Ok((leaf, Some(_))) => {
                report.events += 1;
                first.get_or_insert(index);
                last = Some(index);
                leaf
            }
            Ok((leaf, None)) => {
                report.purged += 1;
                leaf
            }
            Err((leaf, id, problem)) => {
                report.add_finding(
                    Some(index),
                    id,
                    format!("{LOG_FILE} line {number}: {problem}"),
                );
                leaf
            }
        };
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
    } else if tree.root() != *checkpoint.hash() && report.verified() {
        report.add_finding(
            Some(0),
            None,
            "the leaves do not give the checkpoint's root: an event was changed together with its leaf hash, or lines were reordered".to_owned(),
        );
    }
    report.first_event = first;
    report.last_event = last;
    drop(lines);
    check_events_csv(&mut zip, &digests, &mut report)?;
    Ok(report)
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

fn digest(cells: impl Iterator<Item = Vec<u8>>) -> [u8; 16] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for cell in cells {
        hasher.update((cell.len() as u64).to_be_bytes());
        hasher.update(&cell);
    }
    let mut out = [0; 16];
    out.copy_from_slice(&hasher.finalize()[..16]);
    out
}

fn is_json_field(field: &str) -> bool {
    field == "token_usage" || field == "metadata"
}

/// The cells the export writes for a logged event (see `events.csv`).
fn csv_digest_of_line(value: &Value) -> Option<[u8; 16]> {
    let event = value.get("event")?;
    Some(digest(CSV_FIELDS.iter().map(|field| {
        let v = event.get(*field).unwrap_or(&Value::Null);
        if is_json_field(field) {
            return canonical_bytes(v);
        }
        let text = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        crate::service::export::neutralised(text.as_bytes()).into_owned()
    })))
}

/// Every `events.csv` row checked against the logged event its `log_index`
/// names, and every logged event found there once.
fn check_events_csv(
    zip: &mut zip::ZipArchive<std::fs::File>,
    digests: &[Option<[u8; 16]>],
    report: &mut Report,
) -> anyhow::Result<()> {
    let Ok(file) = zip.by_name("events.csv") else {
        report.add_finding(None, None, "the export holds no events.csv");
        return Ok(());
    };
    let mut csv = csv::Reader::from_reader(BufReader::with_capacity(1 << 20, file));
    let headers = csv.headers()?.clone();
    let at = |name: &str| headers.iter().position(|h| h == name);
    let Some(index_at) = at("log_index") else {
        report.add_finding(None, None, "events.csv has no log_index column");
        return Ok(());
    };
    let fields: Vec<Option<usize>> = CSV_FIELDS.iter().map(|f| at(f)).collect();
    let mut seen = vec![false; digests.len()];
    let mut record = csv::ByteRecord::new();
    let mut row = 1u64;
    while csv.read_byte_record(&mut record)? {
        row += 1;
        let id = fields[0]
            .and_then(|i| record.get(i))
            .map(|c| String::from_utf8_lossy(c).into_owned());
        let index = record
            .get(index_at)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u64>().ok());
        let Some(index) = index.filter(|i| (*i as usize) < digests.len()) else {
            report.add_finding(
                None,
                id,
                format!("events.csv row {row} names no event of the log"),
            );
            continue;
        };
        let cells = CSV_FIELDS.iter().zip(&fields).map(|(field, at)| {
            let cell = at.and_then(|i| record.get(i)).unwrap_or_default();
            if is_json_field(field) {
                match serde_json::from_slice::<Value>(cell) {
                    Ok(v) => canonical_bytes(&v),
                    Err(_) => cell.to_vec(),
                }
            } else {
                cell.to_vec()
            }
        });
        let expected = digests[index as usize];
        if seen[index as usize] {
            report.add_finding(
                Some(index),
                id,
                format!("events.csv row {row} repeats log index {index}"),
            );
        } else if expected != Some(digest(cells)) {
            report.add_finding(
                Some(index),
                id.clone(),
                format!(
                    "events.csv row {row} (event {}) differs from the logged event",
                    id.unwrap_or_default()
                ),
            );
        }
        seen[index as usize] = true;
    }
    for (index, (seen, logged)) in seen.iter().zip(digests).enumerate() {
        if !seen && logged.is_some() {
            report.add_finding(
                Some(index as u64),
                None,
                format!("events.csv lacks the event at log index {index}"),
            );
        }
    }
    Ok(())
}

/// One line's leaf: recomputed from its event (`Ok` with the event's id when
/// it matches the line's leaf hash), or the line's own hash for a purged
/// event; `Err` says what is wrong, with the leaf to go on with.
fn check_line(
    value: serde_json::Result<Value>,
    index: u64,
) -> Result<(Hash, Option<String>), (Hash, Option<String>, String)> {
    let zero = Hash([0; HASH_SIZE]);
    let value = value.map_err(|e| (zero, None, format!("not JSON ({e})")))?;
    let stated = value
        .get("leaf_hash")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| <[u8; HASH_SIZE]>::try_from(b).ok())
        .map(Hash);
    if value.get("log_index").and_then(Value::as_u64) != Some(index) {
        return Err((
            stated.unwrap_or(zero),
            None,
            format!("out of place: log index {index} expected here"),
        ));
    }
    match value.get("event") {
        Some(event) => {
            let id = event.get("id").and_then(Value::as_str).map(str::to_owned);
            let leaf = tlog_tiles::record_hash(&canonical_bytes(event));
            match stated {
                Some(s) if s == leaf => Ok((leaf, id)),
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
        None if value.get("purged") == Some(&Value::Bool(true)) => stated
            .map(|s| (s, None))
            .ok_or((zero, None, "a purged leaf without its hash".to_owned())),
        None => Err((
            stated.unwrap_or(zero),
            None,
            "neither an event nor a purged leaf".to_owned(),
        )),
    }
}
