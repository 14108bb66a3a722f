//! What a person has proved, and how: one `Method` per kind of factor. A new factor (passkey, linked
//! phone) is one new variant here plus its `amr` and its place in the acr predicates (`acr.rs`).

use serde::{Deserialize, Serialize};

/// How a face was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceMode {
    /// 1:1 against one account's templates (a username, or the account of an earlier factor).
    Verify,
    /// 1:N: the face alone found the account.
    Identify,
    /// The face opened a new account (face sign-up).
    Signup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    Password,
    /// A face match; `live` when a liveness check passed for it.
    Face {
        mode: FaceMode,
        live: bool,
    },
}

/// RFC 8176's classes: something you know, are, have. Two different classes make `mfa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorClass {
    Knowledge,
    Inherence,
}

impl Method {
    pub fn class(&self) -> FactorClass {
        match self {
            Method::Password => FactorClass::Knowledge,
            Method::Face { .. } => FactorClass::Inherence,
        }
    }

    /// Its `amr` values (RFC 8176): `pwd`; `face`, plus `user` (user presence) for a live check.
    pub fn amr(&self) -> &'static [&'static str] {
        match self {
            Method::Password => &["pwd"],
            Method::Face { live: false, .. } => &["face"],
            Method::Face { live: true, .. } => &["face", "user"],
        }
    }

    pub fn is_face(&self) -> bool {
        matches!(self, Method::Face { .. })
    }

    pub fn is_live_face(&self) -> bool {
        matches!(self, Method::Face { live: true, .. })
    }

    /// A short name for audit events.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Password => "pwd",
            Method::Face {
                mode: FaceMode::Verify,
                ..
            } => "face-1:1",
            Method::Face {
                mode: FaceMode::Identify,
                ..
            } => "face-1:n",
            Method::Face {
                mode: FaceMode::Signup,
                ..
            } => "face-signup",
        }
    }
}

/// One completed factor: what, when (unix seconds) and from which device (the login page's device
/// cookie, hashed; absent for a password typed without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factor {
    pub method: Method,
    pub at: i64,
    #[serde(default)]
    pub device: Option<String>,
}

impl Factor {
    pub fn new(method: Method, at: i64, device: Option<String>) -> Factor {
        Factor { method, at, device }
    }
}

/// `amr` of a set of factors: each factor's values in the order they were done, then `mfa` when
/// they span two classes.
pub fn amr<'a>(factors: impl IntoIterator<Item = &'a Factor>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut classes = Vec::new();
    for f in factors {
        for a in f.method.amr() {
            if !out.iter().any(|o| o == a) {
                out.push((*a).to_string());
            }
        }
        let c = f.method.class();
        if !classes.contains(&c) {
            classes.push(c);
        }
    }
    if classes.len() >= 2 {
        out.push("mfa".into());
    }
    out
}

/// Factors recorded before sessions kept them (only `amr` was stored): read back from `amr`.
pub fn from_legacy_amr(amr: &[String], acr: Option<&str>, auth_time: i64) -> Vec<Factor> {
    let live = amr.iter().any(|a| a == "user") || acr.is_some_and(|a| a.ends_with(":live"));
    let mut out = Vec::new();
    if amr.iter().any(|a| a == "pwd") {
        out.push(Factor::new(Method::Password, auth_time, None));
    }
    if amr.iter().any(|a| a == "face") {
        out.push(Factor::new(
            Method::Face {
                mode: FaceMode::Verify,
                live,
            },
            auth_time,
            None,
        ));
    }
    out
}
