//! Argon2 verification on a bounded pool: as many at once as there are cores, a bounded number
//! waiting (each at most two seconds); beyond that `Err(retry_after)` at once, so a flood of logins
//! cannot stall the other endpoints. An account without a password (or none at all) costs the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The bounded Argon2 pool.
#[derive(Debug)]
pub struct PasswordPool {
    permits: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    verifications: AtomicU64,
}

impl PasswordPool {
    pub fn new(workers: usize, max_waiting: usize) -> PasswordPool {
        PasswordPool {
            permits: Arc::new(tokio::sync::Semaphore::new(workers.max(1))),
            waiting: Default::default(),
            max_waiting,
            verifications: Default::default(),
        }
    }

    /// Argon2 verifications run so far (real or dummy): every password attempt costs one.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }

    /// Verifies `password` against `hash` (a dummy verification of the same cost without one).
    /// `Err(seconds)`: the pool is full; try again then.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, u64> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(1);
        }
        let permit = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.permits.clone().acquire_owned(),
        )
        .await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Ok(Ok(permit)) = permit else {
            return Err(2);
        };
        self.verifications.fetch_add(1, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match hash {
                Some(h) => facegate_core::password::verify(&password, &h),
                None => {
                    facegate_core::password::verify_dummy(&password);
                    false
                }
            }
        })
        .await
        .map_err(|_| 1)
    }
}
