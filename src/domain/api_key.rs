//! API key secrets: 32 random bytes behind a recognisable prefix. Only the
//! SHA-256 is stored; lookups go by that hash through a unique index.

use base64::Engine as _;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

/// Every secret starts with this, so leaked keys are easy to recognise and scan for.
pub const SECRET_PREFIX: &str = "agk_";

/// Base64url characters after the prefix: 32 bytes, unpadded.
const SECRET_CHARS: usize = 43;

/// 32 bytes from the operating system's CSPRNG.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source answers");
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Whether text has the shape of a secret this server issues. Anything else
/// is refused before a database lookup: no query, no timing, for noise.
pub fn is_well_formed(secret: &str) -> bool {
    secret.strip_prefix(SECRET_PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
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
        assert!(is_well_formed(&a));
    }

    #[test]
    fn only_the_issued_shape_is_well_formed() {
        let good = generate_secret();
        assert!(is_well_formed(&good));
        for bad in [
            "",
            "agk_",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &good.replacen("agk_", "AGK_", 1),
            &format!("{}=", &good[..good.len() - 1]),
            &format!("{}é", &good[..good.len() - 2]),
            "demo-key_acme_ingest-00112233445566778899aabbccddeeff",
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }
}
