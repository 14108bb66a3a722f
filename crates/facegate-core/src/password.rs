//! Password hashing with Argon2id (the crate's defaults: m=19 MiB, t=2, p=1, per OWASP).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {0} characters")]
    TooShort(usize),
    #[error("a password may have at most {0} characters")]
    TooLong(usize),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Hashes a new password into a PHC string, after checking its length.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(PasswordError::TooShort(MIN_LEN));
    }
    if n > MAX_LEN {
        return Err(PasswordError::TooLong(MAX_LEN));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string; false for any malformed input.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Spends the same time as a real verification, so that "no such user" cannot be told from
/// "wrong password" by timing.
pub fn verify_dummy(password: &str) {
    // A fixed valid hash of a random string nobody knows.
    const DUMMY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Pn0Lx3mvd6f0q0Cr0nJ1EPGPZWAx8hB4c6W2dq7tN0Y";
    let _ = verify(password, DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("x", "not a hash"));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort(8))));
        verify_dummy("anything");
    }
}
