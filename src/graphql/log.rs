//! The org's verifiable log in GraphQL: `Org.checkpoint`,
//! `Org.consistencyProof` and `Activity.inclusionProof`. Hashes are
//! standard base64, as in the checkpoint itself.

use async_graphql::{Context, SimpleObject};
use base64::Engine as _;
use sea_orm::DatabaseConnection;

use super::error::{GqlResult, IntoGql};
use crate::service::log::checkpoints::{LogKeys, SignedCheckpoint};
use crate::service::log::proofs;

fn b64(hash: &tlog_tiles::Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.0)
}

/// A signed checkpoint of the org's tree: a C2SP tlog-checkpoint (origin,
/// size, root) in a C2SP signed note, signed with Ed25519.
#[derive(SimpleObject)]
pub struct Checkpoint {
    /// The log's name: `<prefix>/<org_id>`.
    pub origin: String,
    pub tree_size: i64,
    /// The tree's root hash, standard base64.
    pub root_hash: String,
    /// The whole signed note.
    pub note: String,
    /// The key that signed it (`name+keyhash+base64`); check notes against
    /// a copy kept apart from this server.
    pub verifier_key: String,
}

impl Checkpoint {
    fn of(c: SignedCheckpoint, verifier_key: &str) -> Self {
        Self {
            root_hash: c.root_base64(),
            origin: c.origin,
            tree_size: c.tree_size as i64,
            note: c.note,
            verifier_key: verifier_key.to_owned(),
        }
    }
}

/// An event's inclusion proof (RFC 9162) in the tree of `treeSize` leaves.
#[derive(SimpleObject)]
pub struct InclusionProof {
    pub log_index: i64,
    pub tree_size: i64,
    /// SHA-256(0x00 || the event's canonical bytes), standard base64.
    pub leaf_hash: String,
    /// From the leaf's sibling upwards (RFC 9162 order), standard base64.
    pub audit_path: Vec<String>,
    /// The signed checkpoint of `treeSize`.
    pub checkpoint: Checkpoint,
}

/// The consistency proof (RFC 9162) from the tree of `from` leaves to `to`.
#[derive(SimpleObject)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    /// RFC 9162 order, standard base64.
    pub hashes: Vec<String>,
}

pub async fn checkpoint(ctx: &Context<'_>, org: &str) -> GqlResult<Checkpoint> {
    let db = ctx.data::<DatabaseConnection>()?;
    let key = ctx.data::<LogKeys>()?.get().await.gql()?;
    let c = proofs::latest_checkpoint(db, key, org).await.gql()?;
    Ok(Checkpoint::of(c, key.verifier_key()))
}

pub async fn inclusion_proof(
    ctx: &Context<'_>,
    org: &str,
    event_id: &str,
    tree_size: Option<i64>,
) -> GqlResult<InclusionProof> {
    let db = ctx.data::<DatabaseConnection>()?;
    let key = ctx.data::<LogKeys>()?.get().await.gql()?;
    let proof = proofs::inclusion(db, key, org, event_id, tree_size)
        .await
        .map_err(|e| e.located(&["treeSize"]))
        .gql()?;
    Ok(InclusionProof {
        log_index: proof.log_index as i64,
        tree_size: proof.tree_size as i64,
        leaf_hash: b64(&proof.leaf_hash),
        audit_path: proof.audit_path.iter().map(b64).collect(),
        checkpoint: Checkpoint::of(proof.checkpoint, key.verifier_key()),
    })
}

pub async fn consistency_proof(
    ctx: &Context<'_>,
    org: &str,
    from: i64,
    to: i64,
) -> GqlResult<ConsistencyProof> {
    let db = ctx.data::<DatabaseConnection>()?;
    let key = ctx.data::<LogKeys>()?.get().await.gql()?;
    let proof = proofs::consistency(db, key, org, (from, to), ("from", "to"))
        .await
        .gql()?;
    Ok(ConsistencyProof {
        from: proof.from as i64,
        to: proof.to as i64,
        hashes: proof.hashes.iter().map(b64).collect(),
    })
}
