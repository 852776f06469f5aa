//! The org's verifiable log over REST: the latest signed checkpoint, an
//! event's inclusion proof and the consistency of two tree sizes. Hashes
//! are standard base64, as in the checkpoint itself.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde::Serialize;

use super::extract::Authorized;
use super::params::Params;
use crate::domain::error::AppResult;
use crate::operations::{log_operations, ORG_ROUTES};
use crate::service::log::checkpoints::SignedCheckpoint;
use crate::service::log::proofs;
use crate::state::AppState;

fn b64(hash: &tlog_tiles::Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.0)
}

/// A signed checkpoint of the org's tree.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointOut {
    /// The log's name: `<prefix>/<org_id>`.
    pub origin: String,
    pub tree_size: u64,
    /// The tree's root, standard base64.
    pub root_hash: String,
    /// The whole signed note (C2SP tlog-checkpoint in C2SP signed-note form).
    pub note: String,
    /// The key that signed it (`name+keyhash+base64`). Check notes against a
    /// copy of the key kept apart from this server.
    pub verifier_key: String,
}

impl CheckpointOut {
    fn of(c: SignedCheckpoint, verifier_key: &str) -> Self {
        Self {
            root_hash: c.root_base64(),
            origin: c.origin,
            tree_size: c.tree_size,
            note: c.note,
            verifier_key: verifier_key.to_owned(),
        }
    }
}

/// An event's inclusion proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProofOut {
    pub log_index: u64,
    pub tree_size: u64,
    /// SHA-256(0x00 || the event's canonical bytes), standard base64.
    pub leaf_hash: String,
    /// RFC 9162 order, from the leaf's sibling upwards; standard base64.
    pub audit_path: Vec<String>,
    pub checkpoint: CheckpointOut,
}

/// The consistency proof between two tree sizes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProofOut {
    pub from_size: u64,
    pub to_size: u64,
    /// RFC 9162 order; standard base64.
    pub hashes: Vec<String>,
}

async fn checkpoint(
    State(state): State<AppState>,
    Authorized(p): Authorized,
) -> AppResult<Json<CheckpointOut>> {
    let key = state.log_keys.get().await?;
    let c = proofs::latest_checkpoint(&state.db, key, &p.org_id).await?;
    Ok(Json(CheckpointOut::of(c, key.verifier_key())))
}

async fn inclusion(
    State(state): State<AppState>,
    Authorized(p): Authorized,
    Path(named): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
) -> AppResult<Json<InclusionProofOut>> {
    let mut params = Params::parse(q.as_deref());
    let tree_size = params.int("tree_size", None);
    params.check()?;
    let id = named.get("activity_id").cloned().unwrap_or_default();
    let key = state.log_keys.get().await?;
    let proof = proofs::inclusion(&state.db, key, &p.org_id, &id, tree_size)
        .await
        .map_err(|e| e.located(&["query", "tree_size"]))?;
    Ok(Json(InclusionProofOut {
        log_index: proof.log_index,
        tree_size: proof.tree_size,
        leaf_hash: b64(&proof.leaf_hash),
        audit_path: proof.audit_path.iter().map(b64).collect(),
        checkpoint: CheckpointOut::of(proof.checkpoint, key.verifier_key()),
    }))
}

async fn consistency(
    State(state): State<AppState>,
    Authorized(p): Authorized,
    RawQuery(q): RawQuery,
) -> AppResult<Json<ConsistencyProofOut>> {
    let mut params = Params::parse(q.as_deref());
    let from = params.required_int("from_size");
    let to = params.required_int("to_size");
    params.check()?;
    let key = state.log_keys.get().await?;
    let sizes = (from.unwrap_or(0), to.unwrap_or(0));
    let proof = proofs::consistency(&state.db, key, &p.org_id, sizes, ("from_size", "to_size"))
        .await
        .map_err(|e| e.located(&["query"]))?;
    Ok(Json(ConsistencyProofOut {
        from_size: proof.from,
        to_size: proof.to,
        hashes: proof.hashes.iter().map(b64).collect(),
    }))
}

/// The log's routes, from the registry, under `/v1/orgs/{org_id}`.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for operation in log_operations() {
        let Some(route) = operation.path.strip_prefix(ORG_ROUTES) else {
            unreachable!("{} is not under {ORG_ROUTES}", operation.path)
        };
        router = match operation.operation_id {
            "get_log_checkpoint" => router.route(route, get(checkpoint)),
            "get_inclusion_proof" => router.route(route, get(inclusion)),
            "get_consistency_proof" => router.route(route, get(consistency)),
            other => unreachable!("no handler for {other}"),
        };
    }
    router
}
