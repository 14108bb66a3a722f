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
    #[error("this password is one of the most common passwords, which attackers try first: choose another")]
    Common,
    #[error("a password may not contain your username or email address")]
    Personal,
    #[error("a password may not be one character repeated or a simple sequence such as 12345678")]
    Trivial,
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

/// The common passwords new passwords may not be (data/README.md says where they come from).
const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common_set() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| COMMON.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
}

/// Whether `p` is one character repeated or a run of consecutive characters (`abcdefgh`,
/// `98765432`).
fn trivial(p: &str) -> bool {
    let c: Vec<u32> = p.chars().map(u32::from).collect();
    let same = c.windows(2).all(|w| w[0] == w[1]);
    let up = c.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    let down = c.windows(2).all(|w| w[0] == w[1].wrapping_add(1));
    same || up || down
}

/// The rules NIST SP 800-63B (3.1.1.2) sets for a new password, and nothing else (no composition
/// rules, no forced rotation): 8 to 1024 characters, not one of the common passwords attackers try
/// first (case-insensitively), not the account's own name or address (`personal`: the username,
/// the email address and its local part), not a repeated character or a plain sequence.
pub fn check_new(password: &str, personal: &[&str]) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(PasswordError::TooShort(MIN_LEN));
    }
    if n > MAX_LEN {
        return Err(PasswordError::TooLong(MAX_LEN));
    }
    let lower = password.to_lowercase();
    if common_set().contains(lower.as_str()) {
        return Err(PasswordError::Common);
    }
    if trivial(&lower) {
        return Err(PasswordError::Trivial);
    }
    for p in personal {
        let p = p.trim().to_lowercase();
        let local = p.split('@').next().unwrap_or("");
        if (p.chars().count() >= 3 && lower.contains(&p))
            || (local.chars().count() >= 3 && lower.contains(local))
        {
            return Err(PasswordError::Personal);
        }
    }
    Ok(())
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

    #[test]
    fn new_passwords_follow_nist_800_63b() {
        assert!(check_new("correct horse battery", &["alice", "alice@example.com"]).is_ok());
        // Long passphrases with spaces and any characters are welcome; no composition rules.
        assert!(check_new("ünïcode pässphrase ☃ ok", &[]).is_ok());
        assert!(matches!(check_new("short", &[]), Err(PasswordError::TooShort(8))));
        for common in [
            "password",
            "Password1",
            "12345678",
            "iloveyou",
            "QWERTYUIOP",
            "football",
        ] {
            assert!(
                matches!(check_new(common, &[]), Err(PasswordError::Common)),
                "{common}"
            );
        }
        for trivial in ["zzzzzzzzzz", "abcdefghij", "9876543210"] {
            assert!(check_new(trivial, &[]).is_err(), "{trivial}");
        }
        assert!(matches!(
            check_new("my-alice-secret-x", &["alice"]),
            Err(PasswordError::Personal)
        ));
        assert!(matches!(
            check_new("bobby.tables!!2026", &["bob2", "bobby.tables@example.com"]),
            Err(PasswordError::Personal)
        ));
        assert_eq!(common_set().len(), COMMON.lines().count());
    }
}
