//! Brute-force protection: failed attempts per key (an account, an IP, a device) earn a growing delay,
//! then a temporary lock. In memory, per instance.

use std::collections::HashMap;
use std::future::Future;
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
    /// The growing delay never exceeds this (before the lock).
    pub max_delay: Duration,
}

impl ThrottlePolicy {
    /// Account-wide, across every address: slows a distributed guesser down without ever locking
    /// the account's owner out (the lock is per account *and* address or device).
    pub fn account_wide() -> ThrottlePolicy {
        ThrottlePolicy {
            free_failures: 20,
            base_delay: Duration::from_secs(1),
            lock_after: u32::MAX,
            lock_for: Duration::ZERO,
            window: Duration::from_secs(60 * 60),
            max_delay: Duration::from_secs(30),
        }
    }

    /// How long a key with `failures` counted must wait before its next attempt.
    pub fn wait_after(&self, failures: u32) -> Duration {
        self.wait(failures)
    }

    fn wait(&self, failures: u32) -> Duration {
        if failures >= self.lock_after {
            self.lock_for
        } else if failures > self.free_failures {
            let doublings = (failures - self.free_failures - 1).min(20);
            (self.base_delay * 2u32.pow(doublings)).min(self.max_delay)
        } else {
            Duration::ZERO
        }
    }
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
            max_delay: Duration::from_secs(5 * 60),
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
        let wait = self.policy.wait(e.failures);
        e.blocked_until = now + wait;
        wait
    }

    /// One attempt on all of `keys`, counted as a failure *before* it is verified, atomically: if any
    /// key must wait, nothing is counted and the longest wait is returned. Parallel attempts thus
    /// all count; [`Throttle::refund`] gives a success its count back.
    pub fn begin(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let Ok(mut entries) = self.entries.lock() else {
            return Err(Duration::from_secs(1));
        };
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k))
            .filter(|e| e.blocked_until > now)
            .map(|e| e.blocked_until - now)
            .max();
        if let Some(w) = wait {
            return Err(w);
        }
        if entries.len() > 100_000 {
            let window = self.policy.window;
            entries.retain(|_, e| now.duration_since(e.first) < window || e.blocked_until > now);
        }
        for key in keys {
            let e = entries.entry(key.clone()).or_insert(Entry {
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
            e.blocked_until = now + self.policy.wait(e.failures);
        }
        Ok(())
    }

    /// Gives back the failure [`Throttle::begin`] counted for an attempt that succeeded.
    pub fn refund(&self, key: &str, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some(e) = entries.get_mut(key) {
            e.failures = e.failures.saturating_sub(1);
            e.blocked_until = now + self.policy.wait(e.failures);
            if e.failures == 0 {
                entries.remove(key);
            }
        }
    }

    pub fn succeed(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

/// The keys a login attempt counts on: the address, the device, and (once the account is known)
/// the account at that address and at that device, plus the account everywhere (`acct:`, slowed,
/// never locked). `kind` keeps the factors apart ("pwd", "face").
pub fn login_keys(kind: &str, ip: &str, device: Option<&str>, account: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("{kind}-ip:{ip}")];
    if let Some(d) = device {
        keys.push(format!("{kind}-dev:{d}"));
    }
    if let Some(a) = account.filter(|a| !a.is_empty()) {
        keys.push(format!("{kind}-user:{a}|ip:{ip}"));
        if let Some(d) = device {
            keys.push(format!("{kind}-user:{a}|dev:{d}"));
        }
        keys.push(format!("acct:{a}"));
    }
    keys
}

/// Every login path's brute-force protection: per address, device and account-at-address (locks),
/// and per account everywhere (slows a distributed guesser, never locks the owner out).
#[derive(Debug)]
pub struct LoginGuard {
    pub local: Throttle,
    pub account: Throttle,
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard {
            local: Throttle::new(ThrottlePolicy::default()),
            account: Throttle::new(ThrottlePolicy::account_wide()),
        }
    }
}

impl LoginGuard {
    /// Counts an attempt on every key before it is verified (see [`Throttle::begin`]).
    pub fn begin(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let (account, other): (Vec<String>, Vec<String>) =
            keys.iter().cloned().partition(|k| k.starts_with("acct:"));
        self.local.begin(&other, now)?;
        if let Err(w) = self.account.begin(&account, now) {
            for k in &other {
                self.local.refund(k, now);
            }
            return Err(w);
        }
        Ok(())
    }

    /// Settles an attempt: a success clears the account's count at this address or device and gives
    /// back the others'; a failure keeps what was counted.
    pub fn end(&self, keys: &[String], ok: bool) {
        if !ok {
            return;
        }
        let now = Instant::now();
        for k in keys {
            if k.starts_with("acct:") {
                self.account.refund(k, now);
            } else if k.contains('|') {
                self.local.succeed(k);
            } else {
                self.local.refund(k, now);
            }
        }
    }

    /// Gives back what `begin` counted without clearing anything: an attempt refused for a reason
    /// that is no guess, or that was counted elsewhere (a failed liveness check).
    pub fn refund(&self, keys: &[String]) {
        let now = Instant::now();
        for k in keys {
            if k.starts_with("acct:") {
                self.account.refund(k, now);
            } else {
                self.local.refund(k, now);
            }
        }
    }

    /// The longest wait any of `keys` is held to, without counting anything.
    pub fn waiting(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        keys.iter().find_map(|k| {
            if k.starts_with("acct:") {
                self.account.check(k, now).err()
            } else {
                self.local.check(k, now).err()
            }
        })
    }

    /// A failure counted without an attempt having begun (a failed liveness check).
    pub fn fail(&self, keys: &[String]) {
        let now = Instant::now();
        for k in keys {
            if k.starts_with("acct:") {
                self.account.fail(k, now);
            } else {
                self.local.fail(k, now);
            }
        }
    }
}

/// Where login attempts are counted: in this process (`LoginGuard`), or in the database, shared by
/// every instance (`facegate_store::SharedGuard`, on PostgreSQL). The rules are the same: an attempt
/// is counted on every key before it is verified; a success clears the account's count at this
/// address or device and gives back the others'; keys starting with `acct:` follow the account-wide
/// policy that slows but never locks.
pub trait AttemptGuard: Send + Sync {
    fn begin(&self, keys: &[String]) -> impl Future<Output = Result<(), Duration>> + Send;
    fn end(&self, keys: &[String], ok: bool) -> impl Future<Output = ()> + Send;
    fn refund(&self, keys: &[String]) -> impl Future<Output = ()> + Send;
    fn waiting(&self, keys: &[String]) -> impl Future<Output = Option<Duration>> + Send;
    fn fail(&self, keys: &[String]) -> impl Future<Output = ()> + Send;
}

/// The policy a key follows.
pub fn policy_for(key: &str) -> ThrottlePolicy {
    if key.starts_with("acct:") {
        ThrottlePolicy::account_wide()
    } else {
        ThrottlePolicy::default()
    }
}

impl AttemptGuard for LoginGuard {
    async fn begin(&self, keys: &[String]) -> Result<(), Duration> {
        LoginGuard::begin(self, keys)
    }
    async fn end(&self, keys: &[String], ok: bool) {
        LoginGuard::end(self, keys, ok)
    }
    async fn refund(&self, keys: &[String]) {
        LoginGuard::refund(self, keys)
    }
    async fn waiting(&self, keys: &[String]) -> Option<Duration> {
        LoginGuard::waiting(self, keys)
    }
    async fn fail(&self, keys: &[String]) {
        LoginGuard::fail(self, keys)
    }
}

/// Per-key token buckets: `rate` tokens a second, at most `burst` saved up (the /v1 APIs, per client).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one token for `key`; `Err(seconds)` to wait when the bucket is empty.
    pub fn take(&self, key: &str, rate: f64, burst: u32) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(1);
        };
        let now = Instant::now();
        if buckets.len() > 10_000 {
            // Forget keys whose buckets have long been full again.
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() * rate < f64::from(burst));
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((f64::from(burst), now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(f64::from(burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// At most `limit` events per key in each period of `period` seconds (a fixed window: live
/// guidance per address each second, face sign-ups site-wide each hour).
#[derive(Debug, Default)]
pub struct WindowCounter {
    counts: Mutex<(i64, HashMap<String, u32>)>,
}

impl WindowCounter {
    /// One more event for `key` at `now` (seconds), if fewer than `limit` happened in its window.
    pub fn allow(&self, key: &str, limit: u32, period: i64, now: i64) -> bool {
        let Ok(mut g) = self.counts.lock() else {
            return false;
        };
        let window = now.div_euclid(period.max(1));
        if g.0 != window {
            *g = (window, HashMap::new());
        }
        let n = g.1.entry(key.to_string()).or_insert(0);
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
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

    #[test]
    fn attempts_count_before_they_are_verified() {
        let t = Throttle::new(ThrottlePolicy::default());
        let now = Instant::now();
        let keys = vec!["ip:1".to_string(), "user:a|ip:1".to_string()];
        // Ten attempts at the same instant, none verified yet: each counts as it begins, so after the
        // free three and the one that earns a delay, the rest wait.
        let admitted = (0..10).filter(|_| t.begin(&keys, now).is_ok()).count();
        assert_eq!(admitted, 4);
        assert_eq!(t.begin(&keys, now), Err(Duration::from_secs(1)));
        // A success gives its count back; other keys are untouched.
        let t = Throttle::new(ThrottlePolicy::default());
        t.begin(&keys, now).unwrap();
        t.refund("ip:1", now);
        assert!(t.entries.lock().unwrap().get("ip:1").is_none());
        assert_eq!(t.entries.lock().unwrap()["user:a|ip:1"].failures, 1);
    }

    #[test]
    fn the_account_wide_policy_never_locks() {
        let p = ThrottlePolicy::account_wide();
        assert_eq!(p.wait(20), Duration::ZERO);
        assert_eq!(p.wait(21), Duration::from_secs(1));
        assert_eq!(p.wait(1000), Duration::from_secs(30));
        assert_eq!(ThrottlePolicy::default().wait(40), Duration::from_secs(900));
    }

    #[test]
    fn token_bucket_allows_a_burst_then_asks_to_wait() {
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert!(l.take("a", 0.5, 3).is_ok());
        }
        assert_eq!(l.take("a", 0.5, 3), Err(2));
        assert!(l.take("b", 0.5, 3).is_ok(), "buckets are per key");
    }

    #[test]
    fn window_counter_resets_each_period() {
        let c = WindowCounter::default();
        assert!(c.allow("x", 2, 3600, 7200));
        assert!(c.allow("x", 2, 3600, 7300));
        assert!(!c.allow("x", 2, 3600, 10_799), "third in the same hour");
        assert!(c.allow("y", 2, 3600, 10_799), "per key");
        assert!(c.allow("x", 2, 3600, 10_800), "a new hour");
    }

    #[test]
    fn a_stranger_cannot_lock_the_owner_out_from_elsewhere() {
        let g = LoginGuard::default();
        let stranger = login_keys("pwd", "6.6.6.6", None, Some("alice"));
        for _ in 0..50 {
            if g.begin(&stranger).is_ok() {
                g.end(&stranger, false);
            }
        }
        assert!(g.waiting(&stranger).is_some(), "the stranger is held back");
        let owner = login_keys("pwd", "10.0.0.1", Some("dev"), Some("alice"));
        // The account-wide key only slows (at most 30 s), it never locks.
        let wait = g.waiting(&owner);
        assert!(wait.is_none_or(|w| w <= Duration::from_secs(30)), "{wait:?}");
    }
}
