//! Random tokens, their storage hashes, and constant-time comparison.

use aws_lc_rs::{digest, rand::SecureRandom, rand::SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes from the system CSPRNG, base64url without padding (32 bytes -> 43 characters).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG failing is not recoverable: there is nothing safe to hand out instead.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system random number generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// A uniformly random u64 from the system's cryptographic RNG.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // As for random_token: without the system RNG there is nothing safe to hand out.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system random number generator failed");
    u64::from_le_bytes(buf)
}

/// What is stored for a bearer secret (codes, tokens, client secrets): its SHA-256, base64url. The
/// secrets are 256-bit random values, so a fast hash is enough; a leaked table reveals none of them.
pub fn storage_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (random_token(32), random_token(32));
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(storage_hash("x"), storage_hash("x"));
        assert_ne!(storage_hash(&a), storage_hash(&b));
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"a", b"ab")
        );
    }
}
