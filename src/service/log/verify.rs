//! Verifying an org's log in the database: every stored event's leaf is
//! recomputed from its row and checked against the stored tree, the tree
//! against every signed checkpoint, and optionally against a checkpoint the
//! org saved itself (the defence against a rollback or a split view). It
//! streams: a window of events and tiles at a time, O(log n) state besides.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, DbErr};
use tlog_tiles::{node_hash, Hash, EMPTY_HASH, HASH_SIZE};

use super::checkpoints::{self, open_note, LogKey};
use super::leaf::leaf_hash;
use super::tiles::HEIGHT;
use crate::domain::error::{AppError, AppResult};
use crate::service::events::EventRow;
use crate::service::statement;

/// Leaves read per step: 16 level-0 tiles.
const STEP: u64 = 16 << HEIGHT;
/// Findings kept in full; the rest are counted.
const KEEP: usize = 1_000;

/// One thing that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The log index it concerns (`None`: an event with no place in the log).
    pub log_index: Option<u64>,
    pub event_id: Option<String>,
    pub problem: String,
}

impl Finding {
    /// The finding as one line: where, which event, what.
    pub fn line(&self) -> String {
        let at = match self.log_index {
            Some(i) => format!("log index {i}"),
            None => "no log index".to_owned(),
        };
        match &self.event_id {
            Some(id) => format!("{at}, event {id}: {}", self.problem),
            None => format!("{at}: {}", self.problem),
        }
    }
}

/// What verifying found.
#[derive(Debug, Default)]
pub struct Report {
    pub tree_size: u64,
    /// Events checked against their leaves.
    pub events: u64,
    /// Leaves whose events retention purged (their hashes are kept).
    pub purged: u64,
    pub checkpoint_size: u64,
    pub checkpoints: u64,
    /// The lowest and highest log index of an event checked.
    pub first_event: Option<u64>,
    pub last_event: Option<u64>,
    /// The first [`KEEP`] findings, by log index; `total_findings` counts all.
    pub findings: Vec<Finding>,
    pub total_findings: u64,
}

impl Report {
    pub fn add_finding(
        &mut self,
        log_index: Option<u64>,
        event_id: Option<String>,
        problem: impl Into<String>,
    ) {
        self.total_findings += 1;
        if self.findings.len() < KEEP {
            self.findings.push(Finding {
                log_index,
                event_id,
                problem: problem.into(),
            });
        }
    }

    /// The one line an honest log gets.
    pub fn summary(&self) -> String {
        let range = match (self.first_event, self.last_event) {
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => "none".to_owned(),
        };
        let purged = if self.purged > 0 {
            format!(" ({} purged by retention, their leaves kept)", self.purged)
        } else {
            String::new()
        };
        let checkpoint = if self.checkpoints == 0 {
            // A log no server has signed yet: only its tree was checked.
            "no signed checkpoint yet".to_owned()
        } else {
            format!("checkpoint size {}", self.checkpoint_size)
        };
        format!(
            "verified {} events, log indexes {range}{purged}, {checkpoint}",
            self.events
        )
    }

    pub fn verified(&self) -> bool {
        self.total_findings == 0
    }

    /// The first finding in log order (those with no index last).
    pub fn first(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .min_by_key(|f| (f.log_index.is_none(), f.log_index))
    }
}

/// The root of a growing RFC 9162 tree, in O(log n): the hashes of its
/// perfect subtrees, left to right, each with its height.
#[derive(Default)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<(u32, Hash)>,
}

impl CompactRange {
    pub fn push(&mut self, leaf: Hash) {
        self.size += 1;
        let (mut height, mut hash) = (0, leaf);
        while let Some(&(h, left)) = self.peaks.last() {
            if h != height {
                break;
            }
            self.peaks.pop();
            hash = node_hash(left, hash);
            height += 1;
        }
        self.peaks.push((height, hash));
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut root)) = peaks.next() else {
            return EMPTY_HASH;
        };
        for &(_, left) in peaks {
            root = node_hash(left, root);
        }
        root
    }
}

async fn tiles_between(
    db: &impl ConnectionTrait,
    org: &str,
    level: u8,
    from: u64,
    to: u64,
) -> Result<HashMap<u64, Vec<u8>>, DbErr> {
    let rows = db
        .query_all_raw(statement(
            db,
            "SELECT idx, hashes FROM log_tiles WHERE org_id = ? AND level = ? AND idx >= ? AND idx < ?",
            vec![org.into(), i16::from(level).into(), (from as i64).into(), (to as i64).into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get_by_index::<i64>(0)? as u64,
                r.try_get_by_index::<Vec<u8>>(1)?,
            ))
        })
        .collect()
}

/// The level-0 tiles (the leaves) of log indexes `from..to`.
pub async fn level0_tiles(
    db: &impl ConnectionTrait,
    org: &str,
    from: u64,
    to: u64,
) -> Result<HashMap<u64, Vec<u8>>, DbErr> {
    if to <= from {
        return Ok(HashMap::new());
    }
    tiles_between(db, org, 0, from >> HEIGHT, ((to - 1) >> HEIGHT) + 1).await
}

/// The stored leaf at log index `i`, from [`level0_tiles`].
pub fn stored_leaf(tiles: &HashMap<u64, Vec<u8>>, i: u64) -> Option<Hash> {
    hash_at(tiles.get(&(i >> HEIGHT)), (i & 0xff) as usize)
}

fn hash_at(tile: Option<&Vec<u8>>, at: usize) -> Option<Hash> {
    let bytes = tile?.get(at * HASH_SIZE..(at + 1) * HASH_SIZE)?;
    Some(Hash(bytes.try_into().ok()?))
}

/// The purged ranges of `org`'s log (first and last index of each).
async fn purged_ranges(db: &impl ConnectionTrait, org: &str) -> Result<BTreeMap<u64, u64>, DbErr> {
    let rows = db
        .query_all_raw(statement(
            db,
            "SELECT first_index, last_index FROM log_purges WHERE org_id = ?",
            vec![org.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get_by_index::<i64>(0)? as u64,
                r.try_get_by_index::<i64>(1)? as u64,
            ))
        })
        .collect()
}

fn is_purged(ranges: &BTreeMap<u64, u64>, index: u64) -> bool {
    ranges
        .range(..=index)
        .next_back()
        .is_some_and(|(_, last)| index <= *last)
}

/// Verifies `org`'s log. `against` is a signed checkpoint note the org kept;
/// `progress` is told how many leaves of the tree were checked so far.
pub async fn verify_org(
    db: &impl ConnectionTrait,
    key: &LogKey,
    org: &str,
    against: Option<&str>,
    progress: impl Fn(u64, u64),
) -> AppResult<Report> {
    let known = db
        .query_one_raw(statement(
            db,
            "SELECT id FROM orgs WHERE id = ?",
            vec![org.into()],
        ))
        .await?;
    if known.is_none() {
        return Err(AppError::not_found("org", org));
    }
    let mut report = Report {
        tree_size: super::tree_size(db, org).await?,
        ..Report::default()
    };
    let n = report.tree_size;
    // Every size the tree must have a known root at: the stored checkpoints
    // (each checked for its signature first) and the org's own.
    let mut expected: BTreeMap<u64, (Hash, String)> = BTreeMap::new();
    for c in checkpoints::all(db, key, org).await? {
        report.checkpoints += 1;
        match open_note(&c.note, key.verifier_key()) {
            Ok(body)
                if body.size() == c.tree_size
                    && *body.hash() == c.root_hash
                    && body.origin() == c.origin =>
            {
                expected.insert(
                    c.tree_size,
                    (
                        c.root_hash,
                        format!("the signed checkpoint at tree size {}", c.tree_size),
                    ),
                );
            }
            Ok(_) => report.add_finding(
                Some(c.tree_size.saturating_sub(1)),
                None,
                format!(
                    "the stored checkpoint at tree size {} does not say what its note says",
                    c.tree_size
                ),
            ),
            Err(e) => report.add_finding(
                Some(c.tree_size.saturating_sub(1)),
                None,
                format!(
                    "the stored checkpoint at tree size {} does not verify ({e})",
                    c.tree_size
                ),
            ),
        }
    }
    report.checkpoint_size = expected.keys().next_back().copied().unwrap_or(0);
    if let Some(note) = against {
        let body = open_note(note, key.verifier_key()).map_err(|e| {
            AppError::internal_msg(format!(
                "the saved checkpoint does not verify with this log's key: {e}"
            ))
        })?;
        if body.origin() != key.origin(org) {
            return Err(AppError::internal_msg(format!(
                "the saved checkpoint is of the log {:?}, not {:?}",
                body.origin(),
                key.origin(org)
            )));
        }
        if let Some((root, _)) = expected.get(&body.size()) {
            if root != body.hash() {
                report.add_finding(Some(body.size().saturating_sub(1)), None, format!("the saved checkpoint and the stored one at tree size {} differ: a split view", body.size()));
            }
        }
        expected.insert(
            body.size(),
            (
                *body.hash(),
                format!("the saved checkpoint at tree size {}", body.size()),
            ),
        );
    }
    if let Some((&size, (_, what))) = expected.iter().next_back() {
        if size > n {
            report.add_finding(
                Some(n),
                None,
                format!("the log holds {n} leaves, fewer than {what}: it was rolled back"),
            );
        }
    }
    // Events outside the tree: stored behind the product's back.
    let outside = db
        .query_all_raw(statement(
            db,
            "SELECT id, log_index FROM activity_events WHERE org_id = ? AND (log_index IS NULL OR log_index >= ?) ORDER BY seq LIMIT 1000",
            vec![org.into(), (n as i64).into()],
        ))
        .await?;
    for row in outside {
        let id: String = row.try_get_by_index(0)?;
        let index: Option<i64> = row.try_get_by_index(1)?;
        let problem = match index {
            None => "an event with no log index: it was not stored through the log".to_owned(),
            Some(i) => format!("an event at log index {i}, past the tree's {n} leaves"),
        };
        report.add_finding(index.map(|i| i as u64), Some(id), problem);
    }
    let purged = purged_ranges(db, org).await?;
    let mut tree = CompactRange::default();
    // The 256-leaf block whose recomputed root differs from the stored tree's, if any.
    let mut bad_block: Option<u64> = None;
    let mut block = CompactRange::default();
    // Findings so far: a mismatch they explain is not reported again.
    let mut explained = 0;
    let mut block_explained = false;
    let mut upper: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut upper_tile: Option<u64> = None;
    let mut next_expected = expected
        .range(1..)
        .map(|(s, v)| (*s, v.clone()))
        .collect::<Vec<_>>()
        .into_iter()
        .peekable();
    let mut start = 0;
    while start < n {
        let end = (start + STEP).min(n);
        let tiles = level0_tiles(db, org, start, end).await?;
        let events: HashMap<i64, entity::activity_event::Model> =
            super::events_from(db, org, start as i64, end - start)
                .await?
                .into_iter()
                .filter(|e| e.log_index.is_some_and(|i| (i as u64) < end))
                .map(|e| (e.log_index.unwrap_or_default(), e))
                .collect();
        for i in start..end {
            let stored = stored_leaf(&tiles, i);
            let leaf = match events.get(&(i as i64)) {
                Some(e) => {
                    report.events += 1;
                    report.first_event.get_or_insert(i);
                    report.last_event = Some(i);
                    let recomputed = leaf_hash(&EventRow::from(e.clone()));
                    match stored {
                        Some(s) if s == recomputed => {}
                        Some(_) => {
                            block_explained = true;
                            report.add_finding(Some(i), Some(e.id.clone()), format!("event {} at log index {i} does not match its leaf: changed, moved or forged", e.id))
                        }
                        None => report.add_finding(
                            Some(i),
                            Some(e.id.clone()),
                            format!("the stored tree has no leaf at log index {i}"),
                        ),
                    }
                    recomputed
                }
                None if is_purged(&purged, i) => {
                    report.purged += 1;
                    stored.unwrap_or(EMPTY_HASH)
                }
                None => {
                    block_explained = true;
                    report.add_finding(
                        Some(i),
                        None,
                        format!("no event at log index {i}: deleted, or moved"),
                    );
                    stored.unwrap_or(EMPTY_HASH)
                }
            };
            tree.push(leaf);
            block.push(leaf);
            if block.size() == 1 << HEIGHT {
                // The block's root must be the stored tree's node above it.
                let b = i >> HEIGHT;
                let tile = b >> HEIGHT;
                if upper_tile != Some(tile) {
                    upper = tiles_between(db, org, 1, tile, tile + 1).await?;
                    upper_tile = Some(tile);
                }
                let node = hash_at(upper.get(&tile), (b & 0xff) as usize);
                if node != Some(block.root()) && bad_block.is_none() && !block_explained {
                    bad_block = Some(b);
                }
                block = CompactRange::default();
                block_explained = false;
            }
            while let Some((size, _)) = next_expected.peek() {
                if *size != i + 1 {
                    break;
                }
                let (size, (root, what)) = next_expected.next().unwrap_or_default();
                // A mismatch the findings before it explain says nothing new.
                if tree.root() != root
                    && (bad_block.is_some() || report.total_findings == explained)
                {
                    let (first, last) = bad_block
                        .map(|b| (b << HEIGHT, ((b + 1) << HEIGHT) - 1))
                        .unwrap_or((0, size - 1));
                    report.add_finding(
                        Some(first),
                        None,
                        format!("the tree of the stored events does not match {what}: a leaf between log indexes {first} and {last} was rewritten together with its event"),
                    );
                }
                explained = report.total_findings;
            }
        }
        progress(end, n);
        start = end;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_range_gives_the_rfc_9162_root() {
        let leaves: Vec<Hash> = (0..1000u32)
            .map(|i| tlog_tiles::record_hash(&i.to_le_bytes()))
            .collect();
        let mut range = CompactRange::default();
        assert_eq!(range.root(), EMPTY_HASH);
        for (n, leaf) in leaves.iter().enumerate() {
            range.push(*leaf);
            if [1usize, 2, 3, 7, 8, 9, 255, 256, 257, 1000].contains(&(n + 1)) {
                assert_eq!(range.root(), mth(&leaves[..=n]), "size {}", n + 1);
            }
        }
    }

    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_HASH,
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }
}
