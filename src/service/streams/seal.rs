//! Destination secrets at rest: sealed with XChaCha20-Poly1305 under a key
//! kept outside the database, so a dump of the database alone reveals no
//! webhook secret or access key. The stream's id is the associated data: a
//! sealed secret copied onto another stream's row does not open there.
//!
//! The key is 32 random bytes, base64: `--stream-secrets-key`, or the file
//! `--stream-secrets-key-file` names (written, mode 0600, with a fresh key
//! the first time a secret is sealed and no key exists). Every replica must
//! be given the same key.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::domain::error::{AppError, AppResult};

const VERSION: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// Where the sealing key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The key itself, base64 of 32 bytes.
    Given(String),
    /// A file holding it; made with a fresh key when missing.
    File(PathBuf),
}

/// The key, loaded at first use (a server that never streams never reads
/// or writes the file); cheap to clone.
#[derive(Clone)]
pub struct SealKey {
    source: KeySource,
    cipher: std::sync::Arc<OnceLock<XChaCha20Poly1305>>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn new(source: KeySource) -> Self {
        Self {
            source,
            cipher: Default::default(),
        }
    }

    fn cipher(&self) -> AppResult<&XChaCha20Poly1305> {
        if let Some(cipher) = self.cipher.get() {
            return Ok(cipher);
        }
        let key = match &self.source {
            KeySource::Given(text) => decode_key(text).map_err(|why| {
                AppError::internal_msg(format!("--stream-secrets-key is not usable: {why}"))
            })?,
            KeySource::File(path) => key_from_file(path).map_err(|why| {
                AppError::internal_msg(format!(
                    "the stream secrets key file {} is not usable: {why}",
                    path.display()
                ))
            })?,
        };
        let cipher = XChaCha20Poly1305::new((&key).into());
        Ok(self.cipher.get_or_init(|| cipher))
    }

    /// `secret` sealed for the stream `stream_id`.
    pub fn seal(&self, stream_id: &str, secret: &str) -> AppResult<String> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
        let sealed = self
            .cipher()?
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: stream_id.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal_msg("sealing a stream secret failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// The secret sealed for `stream_id`; an error (not the secret) when the
    /// key is not the one it was sealed with or the text was altered.
    pub fn open(&self, stream_id: &str, sealed: &str) -> AppResult<String> {
        let refused = || {
            AppError::internal_msg(format!(
                "the secret of log stream {stream_id} does not open with this server's stream secrets key (another key sealed it, or the row was altered)"
            ))
        };
        let bytes = sealed
            .strip_prefix(VERSION)
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .filter(|b| b.len() > NONCE_BYTES)
            .ok_or_else(refused)?;
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = XNonce::from(<[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| refused())?);
        let open = self
            .cipher()?
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: stream_id.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(open).map_err(|_| refused())
    }
}

fn decode_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| "not base64".to_owned())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("{} bytes, not 32", bytes.len()))
}

/// The key in `path`, or a fresh one written there (readable by its owner
/// only) when the file does not exist.
fn key_from_file(path: &Path) -> Result<[u8; 32], String> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::Rng::fill(&mut rand::rng(), &mut key[..]);
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    use std::io::Write as _;
                    file.write_all(format!("{text}\n").as_bytes())
                        .map_err(|e| e.to_string())?;
                    tracing::info!(path = %path.display(), "wrote a new stream secrets key");
                    Ok(key)
                }
                // Another process wrote it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    decode_key(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SealKey {
        SealKey::new(KeySource::Given(
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        ))
    }

    #[test]
    fn a_sealed_secret_opens_for_its_stream_only() {
        let key = key();
        let sealed = key.seal("lst_a", "whsec_c2VjcmV0").unwrap();
        assert!(!sealed.contains("c2VjcmV0"), "{sealed}");
        assert_eq!(key.open("lst_a", &sealed).unwrap(), "whsec_c2VjcmV0");
        assert!(key.open("lst_b", &sealed).is_err());
        let other = SealKey::new(KeySource::Given(
            base64::engine::general_purpose::STANDARD.encode([8u8; 32]),
        ));
        assert!(other.open("lst_a", &sealed).is_err());
        // Two seals of one secret differ (a fresh nonce each).
        assert_ne!(
            key.seal("lst_a", "s").unwrap(),
            key.seal("lst_a", "s").unwrap()
        );
    }

    #[test]
    fn a_missing_key_file_is_written_once_and_read_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream.key");
        let sealed = SealKey::new(KeySource::File(path.clone()))
            .seal("lst_a", "s")
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SealKey::new(KeySource::File(path));
        assert_eq!(again.open("lst_a", &sealed).unwrap(), "s");
        assert!(SealKey::new(KeySource::Given("short".into()))
            .seal("lst_a", "s")
            .is_err());
    }
}
