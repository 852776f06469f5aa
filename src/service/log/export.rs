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
    let slots = Slots::new(size)?;
    let (log, csv) = std::thread::scope(|scope| {
        let csv =
            scope.spawn(|| -> anyhow::Result<CsvPass> { events_csv(&mut open()?, &slots, size) });
        let log = read_log(&open, path, size, &slots, progress);
        (log, csv.join())
    });
    let (mut report, tree, lines, logged) = log?;
    let csv = csv.map_err(|_| anyhow::anyhow!("reading events.csv failed"))??;
    if report.total_findings == 0 && lines == size && tree.root() != *checkpoint.hash() {
        report.add_finding(
            Some(0),
            None,
            "the leaves do not give the checkpoint's root: an event was changed together with its leaf hash, or lines were reordered".to_owned(),
        );
    }
    report.checkpoints = 1;
    report.checkpoint_size = size;
    let differing = compare_csv(&slots, &logged, csv, &mut report);
    name_rows(&mut zip, differing, &mut report)?;
    Ok(report)
}

/// What the two passes say of each log index: the log pass XORs the digest
/// of the CSV cells each logged event determines into its index's slot, the
/// CSV pass XORs the digest of the row naming that index into the same
/// slot, so a slot both wrote is zero exactly when the row and the event
/// agree. 16 bytes per leaf (16 MiB a million), however the rows are ordered.
struct Slots(Vec<std::sync::atomic::AtomicU64>);

impl Slots {
    fn new(size: u64) -> anyhow::Result<Self> {
        let too_big = || {
            anyhow::anyhow!(
                "the checkpoint covers {size} leaves: verifying them needs {} MiB, more than this machine can give",
                size.saturating_mul(16) >> 20
            )
        };
        let n = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_mul(2))
            .ok_or_else(too_big)?;
        let mut slots = Vec::new();
        slots.try_reserve_exact(n).map_err(|_| too_big())?;
        slots.resize_with(n, Default::default);
        Ok(Self(slots))
    }

    fn xor(&self, index: u64, digest: &[u8; 16]) {
        use std::sync::atomic::Ordering::Relaxed;
        let digest = u128::from_le_bytes(*digest);
        let at = index as usize * 2;
        self.0[at].fetch_xor(digest as u64, Relaxed);
        self.0[at + 1].fetch_xor((digest >> 64) as u64, Relaxed);
    }

    fn agree(&self, index: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let at = index as usize * 2;
        self.0[at].load(Relaxed) == 0 && self.0[at + 1].load(Relaxed) == 0
    }
}

/// One bit per log index.
struct Bits(Vec<u64>);

impl Bits {
    fn new(size: u64) -> Self {
        Self(vec![0; size.div_ceil(64) as usize])
    }

    /// Sets the bit of `index`; whether it was set already.
    fn set(&mut self, index: u64) -> bool {
        let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
        let was = self.0[word] & bit != 0;
        self.0[word] |= bit;
        was
    }

    fn get(&self, index: u64) -> bool {
        self.0[(index / 64) as usize] & (1u64 << (index % 64)) != 0
    }
}

/// Lines of `log.jsonl` checked per block.
const BLOCK_LINES: usize = 1_024;
/// Threads checking blocks (besides the one reading them and the one
/// building the tree): the leaves' JSON and hashes are most of the work.
const CHECKERS: usize = 2;

/// Whole lines of the log, the first at log index `first`.
struct Block {
    first: u64,
    lines: Vec<u8>,
}

/// What one line of the log says: its leaf, and whether it holds an event.
enum Outcome {
    Event(Hash),
    Purged(Hash),
    Refused(Hash, Option<String>, String),
}

/// Checks a block's lines; each event's CSV digest goes into `slots`.
fn check_block(block: &Block, size: u64, slots: &Slots) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(BLOCK_LINES);
    for (n, line) in block.lines.split_inclusive(|b| *b == b'\n').enumerate() {
        let index = block.first + n as u64;
        out.push(match check_line(line, index) {
            Ok(Checked::Event(leaf, digest)) => {
                // Lines past the checkpoint's size are reported once read.
                if index < size {
                    slots.xor(index, &digest);
                }
                Outcome::Event(leaf)
            }
            Ok(Checked::Purged(leaf)) => Outcome::Purged(leaf),
            Err((leaf, id, problem)) => Outcome::Refused(leaf, id, problem),
        });
    }
    out
}

/// Reads `log.jsonl` into blocks, dealt to the checkers in turn; how many
/// lines it read.
fn read_blocks(
    zip: &mut zip::ZipArchive<std::fs::File>,
    path: &Path,
    checkers: Vec<std::sync::mpsc::SyncSender<Block>>,
) -> anyhow::Result<u64> {
    let log = zip
        .by_name(LOG_FILE)
        .map_err(|_| anyhow::anyhow!("{} holds no {LOG_FILE}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, log);
    let mut number = 0u64;
    for turn in 0.. {
        let mut block = Block {
            first: number,
            lines: Vec::with_capacity(BLOCK_LINES * 1_024),
        };
        for _ in 0..BLOCK_LINES {
            let before = block.lines.len();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut block.lines)?;
            if read == 0 {
                break;
            }
            number += 1;
            if block.lines.len() - before > MAX_LINE {
                anyhow::bail!("{LOG_FILE} line {number} is longer than {MAX_LINE} bytes");
            }
        }
        if block.lines.is_empty() || checkers[turn % checkers.len()].send(block).is_err() {
            break;
        }
    }
    Ok(number)
}

/// The log pass: findings, the tree of its leaves, how many lines it read,
/// and which log indexes hold an event (whose CSV digest is in `slots`).
/// One thread reads the log, [`CHECKERS`] check its blocks, and this one
/// takes their outcomes in log order into the tree.
fn read_log(
    open: &(dyn Fn() -> anyhow::Result<zip::ZipArchive<std::fs::File>> + Sync),
    path: &Path,
    size: u64,
    slots: &Slots,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<(Report, CompactRange, u64, Bits)> {
    use std::sync::mpsc::sync_channel;
    let mut report = Report {
        tree_size: size,
        ..Report::default()
    };
    let mut tree = CompactRange::default();
    let mut logged = Bits::new(size);
    let mut index = 0u64;
    let lines = std::thread::scope(|scope| {
        let (mut to_checkers, mut from_checkers) = (Vec::new(), Vec::new());
        for _ in 0..CHECKERS {
            let (blocks, blocks_in) = sync_channel::<Block>(1);
            let (outcomes_out, outcomes) = sync_channel::<Vec<Outcome>>(1);
            to_checkers.push(blocks);
            from_checkers.push(outcomes);
            scope.spawn(move || {
                for block in blocks_in {
                    if outcomes_out.send(check_block(&block, size, slots)).is_err() {
                        break;
                    }
                }
            });
        }
        let reader = scope.spawn(move || read_blocks(&mut open()?, path, to_checkers));
        // Block k went to checker k % CHECKERS: taking outcomes in that
        // turn keeps log order, and a checker with nothing left means the
        // reader stopped.
        for turn in 0.. {
            let Ok(outcomes) = from_checkers[turn % CHECKERS].recv() else {
                break;
            };
            for outcome in outcomes {
                let leaf = match outcome {
                    Outcome::Event(leaf) => {
                        report.events += 1;
                        report.first_event.get_or_insert(index);
                        report.last_event = Some(index);
                        if index < size {
                            logged.set(index);
                        }
                        leaf
                    }
                    Outcome::Purged(leaf) => {
                        report.purged += 1;
                        leaf
                    }
                    Outcome::Refused(leaf, id, problem) => {
                        report.add_finding(
                            Some(index),
                            id,
                            format!("{LOG_FILE} line {}: {problem}", index + 1),
                        );
                        leaf
                    }
                };
                tree.push(leaf);
                index += 1;
                if index.is_multiple_of(65_536) {
                    progress(index, size);
                }
            }
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("reading {LOG_FILE} failed"))?
    })?;
    progress(lines, size);
    if lines != size {
        report.add_finding(
            Some(lines.min(size)),
            None,
            format!("{LOG_FILE} has {lines} lines, but the checkpoint covers {size} leaves"),
        );
    }
    Ok((report, tree, lines, logged))
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
                (Ok(fields), Some(s)) if s == leaf => Ok(Checked::Event(leaf, fields.digest)),
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

/// Declares the `events.csv` columns a logged event determines, in this
/// order, and the struct that borrows them from the event (the names beside
/// ids, and `endpoint_id`, are not part of the event's leaf).
macro_rules! csv_fields {
    ($($field:ident),* $(,)?) => {
        const CSV_FIELDS: &[&str] = &[$(stringify!($field)),*];

        /// An event's members that events.csv repeats, borrowed from it.
        #[derive(serde::Deserialize)]
        struct Members<'a> {
            $(#[serde(borrow)] $field: Option<&'a serde_json::value::RawValue>,)*
        }

        impl<'a> Members<'a> {
            fn in_csv_order(&self) -> [Option<&'a serde_json::value::RawValue>; CSV_FIELDS.len()] {
                [$(self.$field),*]
            }
        }
    };
}

csv_fields!(
    id,
    timestamp,
    workspace_id,
    app_id,
    augmentation_id,
    user_id,
    principal_type,
    principal_id,
    token_id,
    token_type,
    method,
    path,
    resource_type,
    resource_id,
    action,
    status_code,
    success,
    error_code,
    duration_ms,
    trace_id,
    execution_id,
    stages_completed,
    total_stages,
    token_usage,
    metadata,
);

/// What events.csv must say of a logged event: its id and the digest of the
/// cells the export writes of it.
struct EventFields {
    id: Option<String>,
    digest: [u8; 16],
}

impl EventFields {
    fn read(raw: &str) -> serde_json::Result<Self> {
        let members: Members = serde_json::from_str(raw)?;
        let mut id = None;
        let mut cells: [std::borrow::Cow<[u8]>; CSV_FIELDS.len()] = Default::default();
        for (n, value) in members.in_csv_order().into_iter().enumerate() {
            let text = value.map_or("null", |v| v.get());
            cells[n] = match text.as_bytes().first() {
                Some(b'"') => {
                    let s: std::borrow::Cow<str> = serde_json::from_str(text)?;
                    if n == 0 {
                        id = Some(s.clone().into_owned());
                    }
                    match s {
                        std::borrow::Cow::Borrowed(s) => {
                            crate::service::export::neutralised(s.as_bytes())
                        }
                        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(
                            crate::service::export::neutralised(s.as_bytes()).into_owned(),
                        ),
                    }
                }
                // `null` is an empty cell; objects are canonical already
                // (the event is), numbers and booleans as written.
                Some(b'n') => std::borrow::Cow::Borrowed(&[]),
                _ => std::borrow::Cow::Borrowed(text.as_bytes()),
            };
        }
        Ok(Self {
            id,
            digest: digest(cells.iter().map(|c| c.as_ref())),
        })
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

/// What the CSV pass found: which log indexes a row named (its digest is
/// in the slots), and the rows that fit no place in the log.
struct CsvPass {
    named: Bits,
    report: Report,
    /// Whether there was an events.csv with a log_index column to read.
    read: bool,
}

fn events_csv(
    zip: &mut zip::ZipArchive<std::fs::File>,
    slots: &Slots,
    size: u64,
) -> anyhow::Result<CsvPass> {
    let mut pass = CsvPass {
        named: Bits::new(size),
        report: Report::default(),
        read: false,
    };
    let Ok(file) = zip.by_name("events.csv") else {
        pass.report
            .add_finding(None, None, "the export holds no events.csv");
        return Ok(pass);
    };
    let mut csv = csv::Reader::from_reader(BufReader::with_capacity(1 << 20, file));
    let headers = csv.headers()?.clone();
    let at = |name: &str| headers.iter().position(|h| h == name);
    let Some(index_at) = at("log_index") else {
        pass.report
            .add_finding(None, None, "events.csv has no log_index column");
        return Ok(pass);
    };
    pass.read = true;
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
            .filter(|i| *i < size);
        let Some(index) = index else {
            pass.report.add_finding(
                None,
                id(),
                format!("events.csv row {row} names no event of the log"),
            );
            continue;
        };
        if pass.named.set(index) {
            pass.report.add_finding(
                Some(index),
                id(),
                format!("events.csv row {row} repeats log index {index}"),
            );
            continue;
        }
        let cells = fields
            .iter()
            .map(|at| at.and_then(|i| record.get(i)).unwrap_or_default());
        slots.xor(index, &digest(cells));
    }
    Ok(pass)
}

/// Every log index against what both passes said of it. Returns the log
/// indexes whose row differs from the logged event, for [`name_rows`].
fn compare_csv(slots: &Slots, logged: &Bits, csv: CsvPass, report: &mut Report) -> Vec<u64> {
    let kept = csv.report.findings.len() as u64;
    for finding in csv.report.findings {
        report.add_finding(finding.log_index, finding.event_id, finding.problem);
    }
    // The CSV pass's findings beyond those it kept are counted, not lost.
    report.total_findings += csv.report.total_findings - kept;
    if !csv.read {
        return Vec::new();
    }
    let mut differing = Vec::new();
    for index in 0..report.tree_size {
        match (logged.get(index), csv.named.get(index)) {
            (true, true) if slots.agree(index) => {}
            // A row for a purged or unreadable leaf differs too.
            (_, true) => differing.push(index),
            (true, false) => report.add_finding(
                Some(index),
                None,
                format!("events.csv lacks the event at log index {index}"),
            ),
            (false, false) => {}
        }
    }
    differing
}

/// Names the differing rows by their row numbers and event ids (a second
/// read of events.csv, only when something differs).
fn name_rows(
    zip: &mut zip::ZipArchive<std::fs::File>,
    differing: Vec<u64>,
    report: &mut Report,
) -> anyhow::Result<()> {
    if differing.is_empty() {
        return Ok(());
    }
    let mut rows: std::collections::HashMap<u64, (u64, Option<String>)> =
        std::collections::HashMap::new();
    let wanted: std::collections::HashSet<u64> = differing.iter().copied().collect();
    let mut csv = csv::Reader::from_reader(BufReader::new(zip.by_name("events.csv")?));
    let headers = csv.headers()?.clone();
    let id_at = headers.iter().position(|h| h == "id");
    let index_at = headers.iter().position(|h| h == "log_index");
    let mut record = csv::ByteRecord::new();
    let mut row = 1u64;
    while csv.read_byte_record(&mut record)? {
        row += 1;
        let index = index_at
            .and_then(|i| record.get(i))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u64>().ok());
        if let Some(index) = index.filter(|i| wanted.contains(i)) {
            // The first row naming an index is the one compared.
            rows.entry(index).or_insert_with(|| {
                let id = id_at.and_then(|i| record.get(i));
                (row, id.map(|c| String::from_utf8_lossy(c).into_owned()))
            });
        }
    }
    for index in differing {
        let (row, id) = rows.remove(&index).unwrap_or((0, None));
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

#[cfg(test)]
mod slot_tests {
    use super::{Bits, Slots};

    #[test]
    fn a_slot_agrees_exactly_when_both_passes_wrote_the_same_digest() {
        let slots = Slots::new(3).unwrap();
        let (a, b) = ([7u8; 16], [8u8; 16]);
        slots.xor(0, &a);
        slots.xor(0, &a);
        slots.xor(1, &a);
        slots.xor(1, &b);
        // Only the high half differs: both halves count.
        let mut c = a;
        c[15] ^= 1;
        slots.xor(2, &a);
        slots.xor(2, &c);
        assert!(slots.agree(0));
        assert!(!slots.agree(1));
        assert!(!slots.agree(2));
    }

    #[test]
    fn a_checkpoint_too_big_to_hold_is_an_error_not_an_abort() {
        assert!(Slots::new(0).is_ok());
        assert!(Slots::new(1 << 20).is_ok());
        let too_big = Slots::new(u64::MAX).err().unwrap().to_string();
        assert!(
            too_big.contains("more than this machine can give"),
            "{too_big}"
        );
        assert!(Slots::new(1 << 60).is_err());
    }

    #[test]
    fn a_bit_says_whether_it_was_set_before() {
        let mut bits = Bits::new(130);
        assert!(!bits.set(129));
        assert!(bits.set(129));
        assert!(bits.get(129) && !bits.get(128) && !bits.get(0));
    }
}
