//! A login in progress: which account it is about (once a factor has named one), the factors done
//! for it, and when it began. It is bound to whatever started it (a pending authorization request or
//! an account action) by the caller, which keeps it server-side; the browser holds only its id.

use serde::{Deserialize, Serialize};

use super::factor::Factor;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginTransaction {
    /// The account every factor of this login must belong to.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub factors: Vec<Factor>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// A factor of another account than the one this login is about (a swapped identity).
    #[error("this factor belongs to another account than the login it was sent for")]
    IdentityMismatch,
    #[error("too many factors in one login")]
    TooMany,
}

/// More factors than any policy needs: a login that collects them is misbehaving.
const MAX_FACTORS: usize = 8;

impl LoginTransaction {
    pub fn new(now: i64) -> LoginTransaction {
        LoginTransaction {
            user_id: None,
            factors: Vec::new(),
            created_at: now,
        }
    }

    /// Records a completed factor of `user_id`. The first factor names the account; every later one
    /// must be of the same account.
    pub fn record(&mut self, user_id: &str, factor: Factor) -> Result<(), TransactionError> {
        if self.user_id.as_deref().is_some_and(|u| u != user_id) {
            return Err(TransactionError::IdentityMismatch);
        }
        if self.factors.len() >= MAX_FACTORS {
            return Err(TransactionError::TooMany);
        }
        self.user_id = Some(user_id.to_string());
        self.factors.push(factor);
        Ok(())
    }

    /// Names the account before any factor (a signed-in person stepping up): later factors must be
    /// theirs.
    pub fn bind_user(&mut self, user_id: &str) -> Result<(), TransactionError> {
        if self.user_id.as_deref().is_some_and(|u| u != user_id) {
            return Err(TransactionError::IdentityMismatch);
        }
        self.user_id = Some(user_id.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::factor::{FaceMode, Method};
    use super::*;

    #[test]
    fn factors_of_another_account_are_refused() {
        let mut t = LoginTransaction::new(100);
        t.record("alice", Factor::new(Method::Password, 101, None))
            .unwrap();
        let face = Factor::new(
            Method::Face {
                mode: FaceMode::Identify,
                live: true,
            },
            102,
            None,
        );
        assert_eq!(
            t.record("mallory", face.clone()),
            Err(TransactionError::IdentityMismatch)
        );
        assert_eq!(t.factors.len(), 1);
        t.record("alice", face).unwrap();
        assert_eq!(t.bind_user("bob"), Err(TransactionError::IdentityMismatch));
        for i in 0..6 {
            t.record("alice", Factor::new(Method::Password, 103 + i, None))
                .unwrap();
        }
        assert_eq!(
            t.record("alice", Factor::new(Method::Password, 200, None)),
            Err(TransactionError::TooMany)
        );
    }
}
