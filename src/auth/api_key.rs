//! API key secrets: 32 random bytes behind a recognisable prefix. Only the
//! SHA-256 is stored; lookups go by that hash through a unique index.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// Every secret starts with this, so leaked keys are easy to recognise and scan for.
pub const SECRET_PREFIX: &str = "agk_";

pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What may be shown of a key after creation: enough to tell keys apart.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(SECRET_PREFIX.len() + 6).collect()
}

/// Constant-time equality of two hex digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert!(digests_match(&hash_secret(&a), &hash_secret(&a)));
        assert!(!digests_match(&hash_secret(&a), &hash_secret(&b)));
        assert_eq!(display_prefix(&a).len(), 10);
    }
}
