//! The org's Merkle tree as C2SP tlog tiles of height 8 (c2sp.org/tlog-tiles):
//! tile (level L, index N) holds the hashes of the tree's nodes at height 8L,
//! numbered N*256 onwards, at most 256 of them. Every node hash a proof needs
//! is a tile entry or the root of a run of entries within one tile, so a
//! proof at ten million events reads at most four tiles per level it spans.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbErr, Value};
use tlog_tiles::{Hash, HashReader, Tile, HASH_SIZE};

use crate::service::statement;

pub const HEIGHT: u8 = 8;
const WIDTH: usize = 1 << HEIGHT;

/// Tiles keyed by (level, index), with their hashes.
#[derive(Default)]
pub struct Tiles(HashMap<(u8, u64), Vec<u8>>);

/// The stored tiles `(level, index)` of `org`, in one query.
async fn read(
    db: &impl ConnectionTrait,
    org: &str,
    wanted: impl IntoIterator<Item = (u8, u64)>,
) -> Result<HashMap<(u8, u64), Vec<u8>>, DbErr> {
    let mut sql = String::from("SELECT level, idx, hashes FROM log_tiles WHERE org_id = ? AND (");
    let mut values: Vec<Value> = vec![org.into()];
    for (n, (level, idx)) in wanted.into_iter().enumerate() {
        if n > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str("(level = ? AND idx = ?)");
        values.push(i16::from(level).into());
        values.push((idx as i64).into());
    }
    if values.len() == 1 {
        return Ok(HashMap::new());
    }
    sql.push(')');
    let mut tiles = HashMap::new();
    for row in db.query_all_raw(statement(db, &sql, values)).await? {
        let level: i16 = row.try_get_by_index(0)?;
        let idx: i64 = row.try_get_by_index(1)?;
        tiles.insert((level as u8, idx as u64), row.try_get_by_index(2)?);
    }
    Ok(tiles)
}

impl Tiles {
    /// Loads the tiles these stored-hash indexes live in.
    pub async fn load(
        db: &impl ConnectionTrait,
        org: &str,
        indexes: &[u64],
    ) -> Result<Self, DbErr> {
        let wanted: BTreeSet<(u8, u64)> = indexes
            .iter()
            .map(|&i| {
                let t = Tile::from_index(HEIGHT, i);
                (t.level(), t.level_index())
            })
            .collect();
        Ok(Self(read(db, org, wanted).await?))
    }
}

impl HashReader for Tiles {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                let t = Tile::from_index(HEIGHT, i);
                let data = self
                    .0
                    .get(&(t.level(), t.level_index()))
                    .ok_or(tlog_tiles::Error::InvalidTile)?;
                t.hash_at_index(data, i)
            })
            .collect()
    }
}

/// The stored tiles a proof reads, in two runs: first with no tiles, when it
/// answers every read with a zero hash and keeps the indexes asked for, then
/// on exactly the tiles those indexes live in.
#[derive(Default)]
pub struct TwoPass {
    tiles: Option<Tiles>,
    wanted: std::cell::RefCell<Vec<u64>>,
}

impl HashReader for TwoPass {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        match &self.tiles {
            Some(tiles) => tiles.read_hashes(indexes),
            None => {
                self.wanted.borrow_mut().extend_from_slice(indexes);
                Ok(vec![Hash([0; HASH_SIZE]); indexes.len()])
            }
        }
    }
}

/// Runs `f` against the org's stored tiles: once to learn what it reads,
/// then for real on exactly those tiles.
pub async fn with_tiles<T>(
    db: &impl ConnectionTrait,
    org: &str,
    f: impl Fn(&TwoPass) -> Result<T, tlog_tiles::Error>,
) -> Result<Result<T, tlog_tiles::Error>, DbErr> {
    let mut reader = TwoPass::default();
    if let Err(e) = f(&reader) {
        return Ok(Err(e));
    }
    let wanted = reader.wanted.take();
    reader.tiles = Some(Tiles::load(db, org, &wanted).await?);
    Ok(f(&reader))
}

/// The tree's right edge: at each level, the entries of its last, partial
/// tile. Appending leaves fills them; a full tile's root moves up a level.
pub struct Edge {
    size: u64,
    levels: Vec<Vec<u8>>,
    /// Tiles changed since loading, to be written.
    dirty: BTreeSet<(u8, u64)>,
    full: HashMap<(u8, u64), Vec<u8>>,
}

impl Edge {
    /// The partial tiles of a tree of `size` leaves.
    pub async fn load(db: &impl ConnectionTrait, org: &str, size: u64) -> Result<Self, DbErr> {
        let mut edge = Self {
            size,
            levels: Vec::new(),
            dirty: BTreeSet::new(),
            full: HashMap::new(),
        };
        let mut want = Vec::new();
        let mut level = 0u8;
        while (size >> (u32::from(level) * u32::from(HEIGHT))) > 0 {
            let nodes = size >> (u32::from(level) * u32::from(HEIGHT));
            let width = (nodes % WIDTH as u64) as usize;
            if width > 0 {
                want.push((level, nodes / WIDTH as u64, width));
            }
            edge.levels.push(Vec::new());
            level += 1;
        }
        let mut found = read(db, org, want.iter().map(|(level, idx, _)| (*level, *idx))).await?;
        for (level, idx, width) in want {
            let hashes = found
                .remove(&(level, idx))
                .ok_or_else(|| DbErr::RecordNotFound(format!("log tile {level}/{idx} of {org}")))?;
            if hashes.len() < width * HASH_SIZE {
                return Err(DbErr::Custom(format!(
                    "log tile {level}/{idx} of {org} is short"
                )));
            }
            edge.levels[level as usize] = hashes[..width * HASH_SIZE].to_vec();
        }
        Ok(edge)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.size += 1;
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let entries = &mut self.levels[level];
            entries.extend_from_slice(&hash.0);
            let nodes = self.size >> (level as u32 * u32::from(HEIGHT));
            let idx = (nodes - 1) / WIDTH as u64;
            self.dirty.insert((level as u8, idx));
            if entries.len() < WIDTH * HASH_SIZE {
                return;
            }
            // The tile is full: keep it, and its root is the next level's entry.
            let full = std::mem::take(entries);
            hash = Tile::subtree_hash(&full);
            self.full.insert((level as u8, idx), full);
            level += 1;
        }
    }

    /// Writes every tile changed since loading.
    pub async fn store(self, db: &impl ConnectionTrait, org: &str) -> Result<(), DbErr> {
        let mut rows: Vec<(u8, u64, Vec<u8>)> = Vec::with_capacity(self.dirty.len());
        for (level, idx) in self.dirty {
            let data = match self.full.get(&(level, idx)) {
                Some(full) => full.clone(),
                None => self.levels[level as usize].clone(),
            };
            rows.push((level, idx, data));
        }
        for chunk in rows.chunks(200) {
            let mut sql =
                String::from("INSERT INTO log_tiles (org_id, level, idx, width, hashes) VALUES ");
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
            for (n, (level, idx, data)) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push(',');
                }
                sql.push_str("(?, ?, ?, ?, ?)");
                values.push(org.into());
                values.push(i16::from(*level).into());
                values.push((*idx as i64).into());
                values.push(((data.len() / HASH_SIZE) as i32).into());
                values.push(data.clone().into());
            }
            sql.push_str(
                " ON CONFLICT (org_id, level, idx) DO UPDATE SET width = excluded.width, hashes = excluded.hashes",
            );
            db.execute_raw(statement(db, &sql, values)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree hash RFC 9162 defines, computed the slow way.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => tlog_tiles::EMPTY_HASH,
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                tlog_tiles::node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn tiles_built_leaf_by_leaf_give_the_rfc_9162_root_at_every_size() {
        let leaves: Vec<Hash> = (0..70_000u32)
            .map(|i| tlog_tiles::record_hash(&i.to_be_bytes()))
            .collect();
        let mut edge = Edge {
            size: 0,
            levels: Vec::new(),
            dirty: BTreeSet::new(),
            full: HashMap::new(),
        };
        let mut tiles = Tiles::default();
        for (n, leaf) in leaves.iter().enumerate() {
            edge.push(*leaf);
            for (level, idx) in std::mem::take(&mut edge.dirty) {
                let data = edge
                    .full
                    .remove(&(level, idx))
                    .unwrap_or_else(|| edge.levels[level as usize].clone());
                tiles.0.insert((level, idx), data);
            }
            let size = n as u64 + 1;
            if [1, 2, 3, 255, 256, 257, 65_535, 65_536, 65_537, 70_000].contains(&size) {
                let root = tlog_tiles::tree_hash(size, &tiles).unwrap();
                assert_eq!(root, mth(&leaves[..size as usize]), "size {size}");
            }
        }
        let proof = tlog_tiles::prove_record(70_000, 12_345, &tiles).unwrap();
        let root = mth(&leaves);
        tlog_tiles::check_record(&proof, 70_000, root, 12_345, leaves[12_345]).unwrap();
        let proof = tlog_tiles::prove_tree(70_000, 300, &tiles).unwrap();
        tlog_tiles::check_tree(&proof, 70_000, root, 300, mth(&leaves[..300])).unwrap();
    }
}
