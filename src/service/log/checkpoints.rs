//! Signed checkpoints of each org's tree: a C2SP tlog-checkpoint (origin,
//! size, root) in a C2SP signed note, signed with Ed25519. One key signs
//! every org's checkpoints; each org's log has its own origin,
//! `<prefix>/<org_id>`. The key and the prefix are kept in the database, made
//! on first start (or given), so every replica signs alike.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rand::TryRngCore as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use signed_note::{Note, Signer, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint as CheckpointBody, Hash};
use tokio::sync::OnceCell;

use super::tiles::with_tiles;
use crate::domain::error::{AppError, AppResult};
use crate::domain::time::now_micros;
use crate::service::statement;

const SIGNING_KEY: &str = "log_signing_key";
const ORIGIN_PREFIX: &str = "log_origin_prefix";
/// The advisory lock key of checkpoint makers ("chkpoint" in ASCII).
const CHECKPOINT_LOCK: i64 = 0x6368_6b70_6f69_6e74;

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    /// The whole signed note.
    pub note: String,
}

impl SignedCheckpoint {
    pub fn root_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.root_hash.0)
    }
}

/// What the operator configured of the log key: a signed-note private key
/// and the origin prefix, each optional (then kept in the database).
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    pub signing_key: Option<String>,
    pub origin_prefix: Option<String>,
}

/// The log's signer and origin prefix.
pub struct LogKey {
    signer: StandardSigner,
    verifier_key: String,
    prefix: String,
}

impl LogKey {
    /// The verifier key, `name+keyhash+base64` (signed-note form).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// The origin line of `org`'s checkpoints.
    pub fn origin(&self, org: &str) -> String {
        format!("{}/{}", self.prefix, org)
    }

    /// The signed note of `org`'s tree at `size` with root `root`. Ed25519 is
    /// deterministic: the same tree head always gets the same note.
    pub fn sign(&self, org: &str, size: u64, root: Hash) -> AppResult<SignedCheckpoint> {
        let origin = self.origin(org);
        let body = CheckpointBody::new(&origin, size, root, "")
            .map_err(|_| AppError::internal_msg("a checkpoint could not be formed"))?;
        let mut note = Note::new(&body.to_bytes(), &[]).map_err(AppError::internal)?;
        note.add_sigs(&[&self.signer as &dyn Signer])
            .map_err(AppError::internal)?;
        Ok(SignedCheckpoint {
            origin,
            tree_size: size,
            root_hash: root,
            note: String::from_utf8(note.to_bytes()).map_err(AppError::internal)?,
        })
    }
}

/// Builds a signer from a signed-note private key (`PRIVATE+KEY+name+hash+base64`).
fn signer_of(skey: &str) -> AppResult<(StandardSigner, String)> {
    let signer = StandardSigner::new(skey.trim()).map_err(|_| {
        AppError::internal_msg("the log signing key is not a signed-note Ed25519 private key")
    })?;
    let seed = skey
        .trim()
        .splitn(5, '+')
        .nth(4)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|b| b.len() == 33)
        .ok_or_else(|| AppError::internal_msg("the log signing key is malformed"))?;
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&seed[1..]);
    let key = ed25519_dalek::SigningKey::from_bytes(&bytes);
    let verifier = signed_note::new_ed25519_verifier_key(signer.name(), &key.verifying_key());
    Ok((signer, verifier))
}

/// The verifier key of a signed-note private key.
pub fn verifier_key_of(skey: &str) -> AppResult<String> {
    signer_of(skey).map(|(_, verifier)| verifier)
}

/// A fresh signed-note Ed25519 private key for `name`, from the OS's CSPRNG.
pub fn generate_signing_key(name: &str) -> AppResult<String> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(AppError::internal)?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = [&[1u8][..], key.verifying_key().as_bytes()].concat();
    let private = [&[1u8][..], &seed[..]].concat();
    Ok(format!(
        "PRIVATE+KEY+{}+{:08x}+{}",
        name,
        signed_note::key_id(name, &public),
        base64::engine::general_purpose::STANDARD.encode(private)
    ))
}

/// This machine's name, the default origin prefix's first part.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| signed_note::is_key_name_valid(h) && !h.contains('/'))
        .unwrap_or_else(|| "localhost".to_owned())
}

async fn stored_or_insert(db: &impl ConnectionTrait, name: &str, fresh: &str) -> AppResult<String> {
    db.execute_raw(statement(
        db,
        "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        vec![name.into(), fresh.into(), now_micros().into()],
    ))
    .await?;
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT value FROM server_secrets WHERE name = ?",
            vec![name.into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal_msg("a server secret was not stored"))?;
    Ok(row.try_get("", "value")?)
}

/// The log key: the configured private key and prefix when given, else the
/// ones stored in the database, made on first use (the first replica's
/// hostname, `/activity`). Two gateways starting at once agree: the first
/// insert wins, both read it.
pub async fn log_key(db: &impl ConnectionTrait, settings: &KeySettings) -> AppResult<LogKey> {
    let prefix = match settings
        .origin_prefix
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => p.trim_end_matches('/').to_owned(),
        None => stored_or_insert(db, ORIGIN_PREFIX, &format!("{}/activity", hostname())).await?,
    };
    let skey = match settings
        .signing_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(k) => k.to_owned(),
        None => {
            let name = prefix.replace('+', "-");
            stored_or_insert(db, SIGNING_KEY, &generate_signing_key(&name)?).await?
        }
    };
    let (signer, verifier_key) = signer_of(&skey)?;
    Ok(LogKey {
        signer,
        verifier_key,
        prefix,
    })
}

/// The log key, read once per process and then kept in memory.
#[derive(Clone)]
pub struct LogKeys {
    db: DatabaseConnection,
    settings: KeySettings,
    key: Arc<OnceCell<LogKey>>,
}

impl LogKeys {
    pub fn new(db: DatabaseConnection, settings: KeySettings) -> Self {
        Self {
            db,
            settings,
            key: Arc::default(),
        }
    }

    pub async fn get(&self) -> AppResult<&LogKey> {
        self.key
            .get_or_try_init(|| log_key(&self.db, &self.settings))
            .await
    }
}

/// Checks a signed note against a verifier key and reads its checkpoint.
pub fn open_note(note: &str, verifier_key: &str) -> Result<CheckpointBody, String> {
    let verifier =
        StandardVerifier::new(verifier_key.trim()).map_err(|e| format!("bad verifier key: {e}"))?;
    let note = Note::from_bytes(note.as_bytes()).map_err(|e| format!("malformed note: {e}"))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| format!("signature: {e}"))?;
    CheckpointBody::from_bytes(note.text()).map_err(|e| format!("checkpoint: {e}"))
}

pub(super) fn row_to_checkpoint(
    row: &sea_orm::QueryResult,
    origin: String,
) -> Result<SignedCheckpoint, DbErr> {
    let size: i64 = row.try_get_by_index(0)?;
    let root: Vec<u8> = row.try_get_by_index(1)?;
    let note: String = row.try_get_by_index(2)?;
    let root: [u8; 32] = root
        .try_into()
        .map_err(|_| DbErr::Custom("a stored checkpoint root is not 32 bytes".into()))?;
    Ok(SignedCheckpoint {
        origin,
        tree_size: size as u64,
        root_hash: Hash(root),
        note,
    })
}

/// `org`'s newest stored checkpoint.
pub async fn latest(
    db: &impl ConnectionTrait,
    key: &LogKey,
    org: &str,
) -> Result<Option<SignedCheckpoint>, DbErr> {
    db.query_one_raw(statement(
        db,
        "SELECT tree_size, root_hash, note FROM log_checkpoints WHERE org_id = ? ORDER BY tree_size DESC LIMIT 1",
        vec![org.into()],
    ))
    .await?
    .map(|r| row_to_checkpoint(&r, key.origin(org)))
    .transpose()
}

/// Every stored checkpoint of `org`, oldest first.
pub async fn all(
    db: &impl ConnectionTrait,
    key: &LogKey,
    org: &str,
) -> Result<Vec<SignedCheckpoint>, DbErr> {
    db.query_all_raw(statement(
        db,
        "SELECT tree_size, root_hash, note FROM log_checkpoints WHERE org_id = ? ORDER BY tree_size",
        vec![org.into()],
    ))
    .await?
    .iter()
    .map(|r| row_to_checkpoint(r, key.origin(org)))
    .collect()
}

/// The root of `org`'s tree at `size`, from its tiles.
pub async fn root_at(db: &impl ConnectionTrait, org: &str, size: u64) -> AppResult<Hash> {
    with_tiles(db, org, |r| tlog_tiles::tree_hash(size, r))
        .await?
        .map_err(|e| {
            AppError::internal_msg(format!(
                "the log of {org} cannot give its root at {size}: {e}"
            ))
        })
}

/// Signs and stores a checkpoint of `org`'s tree as it is now, if it grew
/// since the last one. The new tree must be consistent with the last
/// checkpoint: a log whose stored tree was rewritten is refused a signature
/// (and the refusal logged), never signed over.
pub async fn checkpoint_org(
    db: &impl ConnectionTrait,
    key: &LogKey,
    org: &str,
) -> AppResult<Option<SignedCheckpoint>> {
    let size = super::tree_size(db, org).await?;
    let last = latest(db, key, org).await?;
    if last.as_ref().is_some_and(|c| c.tree_size >= size) || (last.is_none() && size == 0) {
        return Ok(None);
    }
    let root = root_at(db, org, size).await?;
    if let Some(last) = last.as_ref().filter(|c| c.tree_size > 0) {
        let consistent = with_tiles(db, org, |r| tlog_tiles::prove_tree(size, last.tree_size, r))
            .await?
            .and_then(|proof| {
                tlog_tiles::check_tree(&proof, size, root, last.tree_size, last.root_hash)
            });
        if let Err(e) = consistent {
            return Err(AppError::internal_msg(format!(
                "the log of {org} at size {size} is not consistent with its checkpoint at {}: {e}; not signing",
                last.tree_size
            )));
        }
    }
    let signed = key.sign(org, size, root)?;
    db.execute_raw(statement(
        db,
        "INSERT INTO log_checkpoints (org_id, tree_size, root_hash, note, created_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (org_id, tree_size) DO NOTHING",
        vec![
            org.into(),
            (size as i64).into(),
            root.0.to_vec().into(),
            signed.note.clone().into(),
            now_micros().into(),
        ],
    ))
    .await?;
    Ok(Some(signed))
}

/// Checkpoints every org whose tree grew, one process at a time (an advisory
/// lock on PostgreSQL; a process that finds it taken skips its turn).
/// Returns how many checkpoints were made.
pub async fn checkpoint_all(db: &DatabaseConnection, key: &LogKey) -> AppResult<u64> {
    let txn = db.begin().await?;
    if !crate::service::try_advisory_xact_lock(&txn, CHECKPOINT_LOCK).await? {
        txn.rollback().await?;
        return Ok(0);
    }
    let grown: Vec<String> = txn
        .query_all_raw(statement(
            &txn,
            "SELECT l.org_id FROM org_logs l WHERE l.tree_size > \
               COALESCE((SELECT MAX(c.tree_size) FROM log_checkpoints c WHERE c.org_id = l.org_id), 0) \
             ORDER BY l.org_id",
            vec![],
        ))
        .await?
        .into_iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    let mut made = 0;
    for org in grown {
        match checkpoint_org(&txn, key, &org).await {
            Ok(Some(_)) => made += 1,
            Ok(None) => {}
            Err(e) => tracing::error!(org = %org, error = %e, "checkpoint refused"),
        }
    }
    txn.commit().await?;
    Ok(made)
}

/// Makes checkpoints every `every` for as long as the process runs.
pub fn spawn_checkpointer(db: DatabaseConnection, keys: LogKeys, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let key = match keys.get().await {
                Ok(key) => key,
                Err(e) => {
                    tracing::error!(error = %e, "the log signing key is unavailable; no checkpoints");
                    continue;
                }
            };
            if let Err(e) = checkpoint_all(&db, key).await {
                tracing::warn!(error = %e, "making checkpoints failed; retrying");
            }
        }
    });
}
