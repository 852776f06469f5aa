//! Proofs against an org's signed checkpoints: an event's inclusion (its
//! RFC 9162 audit path) and the consistency of two tree sizes.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use tlog_tiles::{Hash, HashReader as _};

use super::checkpoints::{self, LogKey, SignedCheckpoint};
use super::tiles::with_tiles;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::service::statement;

pub struct InclusionProof {
    pub log_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    /// RFC 9162 order: from the leaf's sibling up to the root's child.
    pub audit_path: Vec<Hash>,
    /// The signed checkpoint of `tree_size`.
    pub checkpoint: SignedCheckpoint,
}

pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<Hash>,
}

/// `org`'s latest checkpoint. A log that has none yet (nothing was ever
/// checkpointed) gets its first one now, so the answer always exists.
pub async fn latest_checkpoint(
    db: &DatabaseConnection,
    key: &LogKey,
    org: &str,
) -> AppResult<SignedCheckpoint> {
    if let Some(c) = checkpoints::latest(db, key, org).await? {
        return Ok(c);
    }
    if let Some(c) = checkpoints::checkpoint_org(db, key, org).await? {
        return Ok(c);
    }
    // An empty log: its checkpoint is the empty tree's, signed on demand.
    key.sign(org, 0, tlog_tiles::EMPTY_HASH)
}

/// The signed checkpoint of the tree of `size` whose root is `root`: the
/// stored note when a checkpoint was made at that size, else the same tree
/// head signed now (Ed25519 is deterministic, so asking twice gives the
/// same note).
async fn checkpoint_of(
    db: &impl ConnectionTrait,
    key: &LogKey,
    org: &str,
    size: u64,
    root: Hash,
) -> AppResult<SignedCheckpoint> {
    let stored = db
        .query_one_raw(statement(
            db,
            "SELECT note FROM log_checkpoints WHERE org_id = ? AND tree_size = ?",
            vec![org.into(), (size as i64).into()],
        ))
        .await?;
    match stored {
        Some(row) => Ok(SignedCheckpoint {
            origin: key.origin(org),
            tree_size: size,
            root_hash: root,
            note: row.try_get_by_index(0)?,
        }),
        None => key.sign(org, size, root),
    }
}

fn size_out_of_range(loc: &[&str], size: i64, min: i64, max: i64) -> AppError {
    let (kind, msg, ctx) = if size < min {
        (
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
            json!({ "ge": min }),
        )
    } else {
        (
            "less_than_equal",
            format!(
                "Input should be less than or equal to {max} (the latest checkpoint's tree size)"
            ),
            json!({ "le": max }),
        )
    };
    AppError::invalid(InvalidInput::new(loc, kind, msg, size).with_ctx(ctx))
}

/// The size of the latest checkpoint, which bounds every proof.
async fn latest_size(db: &DatabaseConnection, key: &LogKey, org: &str) -> AppResult<u64> {
    Ok(checkpoints::latest(db, key, org)
        .await?
        .map_or(0, |c| c.tree_size))
}

/// The inclusion proof of the org's event `event_id` in the tree of
/// `tree_size` (default: the latest checkpoint's). The size must hold the
/// event and be at most the latest checkpoint's; anything else is invalid
/// input at `[]` (the transport says where). An event not in the log yet
/// (stored after the latest checkpoint) has no proof: that is invalid
/// input too, with the size it needs.
pub async fn inclusion(
    db: &DatabaseConnection,
    key: &LogKey,
    org: &str,
    event_id: &str,
    tree_size: Option<i64>,
) -> AppResult<InclusionProof> {
    // The event's index and the latest checkpoint in one round trip: the
    // checkpoint bounds the size and, for a proof at that size (the usual
    // case), is the one the answer carries.
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT c.tree_size, c.root_hash, c.note, e.log_index FROM activity_events e \
             LEFT JOIN log_checkpoints c ON c.org_id = e.org_id AND c.tree_size = \
             (SELECT MAX(tree_size) FROM log_checkpoints WHERE org_id = ?) \
             WHERE e.org_id = ? AND e.id = ?",
            vec![org.into(), org.into(), event_id.into()],
        ))
        .await?
        .ok_or_else(|| AppError::not_found("activity", event_id))?;
    let index = row.try_get_by_index::<Option<i64>>(3)?.ok_or_else(|| {
        AppError::internal_msg(format!("event {event_id} of {org} has no log index"))
    })? as u64;
    let latest = match row.try_get_by_index::<Option<i64>>(0)? {
        Some(_) => Some(checkpoints::row_to_checkpoint(&row, key.origin(org))?),
        None => None,
    };
    let latest_size = latest.as_ref().map_or(0, |c| c.tree_size) as i64;
    let size = tree_size.unwrap_or(latest_size);
    let min = index as i64 + 1;
    if size < min || size > latest_size {
        return Err(size_out_of_range(&[], size, min, latest_size));
    }
    let size = size as u64;
    let leaf_index = tlog_tiles::stored_hash_index(0, index);
    let at_latest = latest.filter(|c| c.tree_size == size);
    let (audit_path, leaf, root) = with_tiles(db, org, |r| {
        let path = tlog_tiles::prove_record(size, index, r)?;
        let leaf = r.read_hashes(&[leaf_index])?[0];
        let root = if at_latest.is_some() {
            None
        } else {
            Some(tlog_tiles::tree_hash(size, r)?)
        };
        Ok((path, leaf, root))
    })
    .await?
    .map_err(|e| {
        AppError::internal_msg(format!(
            "no inclusion proof of {index} in {org}'s log at {size}: {e}"
        ))
    })?;
    let checkpoint = match (at_latest, root) {
        (Some(latest), _) => latest,
        (None, Some(root)) => checkpoint_of(db, key, org, size, root).await?,
        (None, None) => {
            return Err(AppError::internal_msg(format!(
                "no root of {org}'s log at {size}"
            )))
        }
    };
    Ok(InclusionProof {
        log_index: index,
        tree_size: size,
        leaf_hash: leaf,
        audit_path,
        checkpoint,
    })
}

/// The consistency proof from the tree of `from` leaves to the tree of `to`:
/// `1 <= from <= to <=` the latest checkpoint's size, else invalid input at
/// the caller's names of the two (`names`).
pub async fn consistency(
    db: &DatabaseConnection,
    key: &LogKey,
    org: &str,
    (from, to): (i64, i64),
    names: (&str, &str),
) -> AppResult<ConsistencyProof> {
    let latest = latest_size(db, key, org).await? as i64;
    let mut problems = Vec::new();
    if to < 1 || to > latest {
        if let AppError::Invalid(mut p) = size_out_of_range(&[names.1], to, 1, latest) {
            problems.append(&mut p);
        }
    }
    if from < 1 || from > to.clamp(1, latest.max(1)) {
        if let AppError::Invalid(mut p) =
            size_out_of_range(&[names.0], from, 1, to.clamp(1, latest.max(1)))
        {
            problems.append(&mut p);
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let (from, to) = (from as u64, to as u64);
    let hashes = with_tiles(db, org, |r| tlog_tiles::prove_tree(to, from, r))
        .await?
        .map_err(|e| {
            AppError::internal_msg(format!(
                "no consistency proof {from}..{to} in {org}'s log: {e}"
            ))
        })?;
    Ok(ConsistencyProof { from, to, hashes })
}
