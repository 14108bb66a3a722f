//! Scopes: a space-separated set, kept in a stable order.

use std::collections::BTreeSet;

/// The scopes facegate understands for people (OpenID Connect) and for the face API.
pub const SUPPORTED: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "faces:read",
    "faces:write",
    "liveness",
];

/// The scopes of the face API (`/v1`): granted to clients only by an administrator.
pub const FACE_API: &[&str] = &["faces:read", "faces:write", "liveness"];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a scope parameter, keeping only scopes facegate supports (unknown ones are dropped, as
    /// RFC 6749 section 3.3 allows; the granted set is returned to the client).
    pub fn parse_supported(s: &str) -> Scopes {
        Scopes(
            s.split(' ')
                .filter(|t| SUPPORTED.contains(t))
                .map(String::from)
                .collect(),
        )
    }

    /// Parses every scope as given.
    pub fn parse(s: &str) -> Scopes {
        Scopes(s.split(' ').filter(|t| !t.is_empty()).map(String::from).collect())
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersect(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let s = Scopes::parse_supported("email openid  bogus profile");
        assert_eq!(s.to_string(), "email openid profile");
        assert!(Scopes::parse("openid").is_subset(&s));
    }
}
