//! Brute-force protection: failed attempts per key (an account, an IP, a device) earn a growing delay,
//! then a temporary lock. In memory, per instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// Delay after the first failure beyond the free ones; doubles with each further failure.
    pub base_delay: Duration,
    /// Failures after which the key is locked for `lock_for`.
    pub lock_after: u32,
    pub lock_for: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    blocked_until: Instant,
}

#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while the key may not try again.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(entries) = self.entries.lock() else {
            return Ok(());
        };
        match entries.get(key) {
            Some(e) if e.blocked_until > now => Err(e.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure and returns how long the key must now wait.
    pub fn fail(&self, key: &str, now: Instant) -> Duration {
        let Ok(mut entries) = self.entries.lock() else {
            return Duration::ZERO;
        };
        if entries.len() > 100_000 {
            let window = self.policy.window;
            entries.retain(|_, e| now.duration_since(e.first) < window || e.blocked_until > now);
        }
        let e = entries.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            first: now,
            blocked_until: now,
        });
        if now.duration_since(e.first) > self.policy.window && e.blocked_until <= now {
            *e = Entry {
                failures: 0,
                first: now,
                blocked_until: now,
            };
        }
        e.failures += 1;
        let p = &self.policy;
        let wait = if e.failures >= p.lock_after {
            p.lock_for
        } else if e.failures > p.free_failures {
            p.base_delay * 2u32.saturating_pow(e.failures - p.free_failures - 1)
        } else {
            Duration::ZERO
        };
        e.blocked_until = now + wait;
        wait
    }

    pub fn succeed(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_lock_and_success_clears() {
        let t = Throttle::new(ThrottlePolicy::default());
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.fail("alice", now), Duration::ZERO);
        }
        assert_eq!(t.fail("alice", now), Duration::from_secs(1));
        assert!(t.check("alice", now).is_err());
        assert!(t.check("alice", now + Duration::from_secs(2)).is_ok());
        assert_eq!(t.fail("alice", now), Duration::from_secs(2));
        for _ in 0..4 {
            t.fail("alice", now);
        }
        assert_eq!(
            t.fail("alice", now),
            Duration::from_secs(900),
            "tenth failure locks"
        );
        assert!(t.check("bob", now).is_ok());
        t.succeed("alice");
        assert!(t.check("alice", now).is_ok());
    }
}
