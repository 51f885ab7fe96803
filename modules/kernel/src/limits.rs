//! Rate limits behind one small interface, so the same call counts in memory on one node or
//! in Redis across a cluster.
//!
//! A [`Quota`] says "at most `burst` events per `period`" for one kind of action; a key names
//! who is counted (a user id, an account's email). Both implementations use the same
//! algorithm (GCRA, the generic cell rate algorithm): up to `burst` events at once, then one
//! more every `period / burst`. [`Limits::memory`] keeps the counters in this process with
//! `governor`'s keyed limiters; [`Limits::redis`] keeps them in Redis (see [`redis`]) so every
//! node counts together, and falls back to memory while Redis is unreachable.
//!
//! Handlers reach the limiter through [`crate::AppState::limits`] (`State<Limits>`).

pub mod redis;

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{RateLimiter, StateStore};

use crate::error::ApiError;

/// "At most `burst` events per `period`" for one kind of action. `name` keeps the counters of
/// different quotas apart (and is part of the Redis key), so two quotas must not share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub name: &'static str,
    pub burst: u32,
    pub period: Duration,
}

impl Quota {
    /// A quota of `burst` events per `period`. A `burst` of 0 counts as 1 and a zero period
    /// as one millisecond (a quota always lets something through eventually).
    pub const fn new(name: &'static str, burst: u32, period: Duration) -> Self {
        Self {
            name,
            burst,
            period,
        }
    }

    fn burst_nonzero(&self) -> NonZeroU32 {
        NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN)
    }

    fn period_nonzero(&self) -> Duration {
        self.period.max(Duration::from_millis(1))
    }

    /// How long one event takes to replenish: `period / burst`.
    pub fn interval(&self) -> Duration {
        self.period_nonzero() / self.burst_nonzero().get()
    }

    fn governor(&self) -> governor::Quota {
        governor::Quota::with_period(self.interval())
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.burst_nonzero())
    }
}

/// The answer when a key is over its quota: how long until one more event is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for a `Retry-After` header: rounded up, at least 1.
    pub fn secs(&self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl From<RetryAfter> for ApiError {
    /// 429 `rate_limited` with `Retry-After`.
    fn from(r: RetryAfter) -> Self {
        ApiError::RateLimited {
            retry_after_secs: r.secs(),
        }
    }
}

/// The one interface every limit goes through. Implementations never fail a request because
/// of their own trouble: when they cannot count (a backing store is down) they count
/// somewhere else rather than refuse or wave everything through.
#[async_trait::async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// Counts one event for `key` under `quota`. `Err` (and the event is not counted) when the
    /// key is over the quota, with the time until one more is allowed.
    async fn check(&self, quota: &Quota, key: &str) -> Result<(), RetryAfter>;
    /// Forgets what was counted for `key` under `quota` (a successful login clears the failed
    /// ones).
    async fn reset(&self, quota: &Quota, key: &str);
    /// Takes back one event that [`Limiter::check`] counted for `key` under `quota` (the
    /// attempt turned out not to be what the quota counts: a login that succeeded is not a
    /// failure). Counting first and refunding after, rather than looking before and counting
    /// after, keeps concurrent attempts from all slipping past a look at the same count.
    async fn refund(&self, quota: &Quota, key: &str);
}

/// A shared limiter is a limiter (so a caller can keep a handle on what it gives [`Limits`]).
#[async_trait::async_trait]
impl<T: Limiter> Limiter for Arc<T> {
    async fn check(&self, quota: &Quota, key: &str) -> Result<(), RetryAfter> {
        (**self).check(quota, key).await
    }
    async fn reset(&self, quota: &Quota, key: &str) {
        (**self).reset(quota, key).await
    }
    async fn refund(&self, quota: &Quota, key: &str) {
        (**self).refund(quota, key).await
    }
}

/// The application's limiter, cheap to clone; lives in [`crate::AppState`].
#[derive(Clone)]
pub struct Limits(Arc<dyn Limiter>);

impl Limits {
    /// Any [`Limiter`].
    pub fn new(limiter: impl Limiter) -> Self {
        Self(Arc::new(limiter))
    }

    /// Counters in this process (one node; the default).
    pub fn memory() -> Self {
        Self::new(MemoryLimiter::default())
    }

    /// Counters in Redis, shared by every node that uses the same Redis and `prefix`; every
    /// key starts with `{prefix}:limits:`. While Redis is unreachable this node counts in
    /// memory (logged once) and goes back to Redis when it answers again. Never blocks a
    /// request on a dead Redis for longer than [`redis::CALL_TIMEOUT`].
    pub fn redis(conn: ::redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self::new(redis::RedisLimiter::new(conn, prefix))
    }

    /// See [`Limiter::check`].
    pub async fn check(&self, quota: &Quota, key: &str) -> Result<(), RetryAfter> {
        self.0.check(quota, key).await
    }

    /// [`Limits::check`] as an `ApiError` (429 `rate_limited` with `Retry-After`).
    pub async fn enforce(&self, quota: &Quota, key: &str) -> Result<(), ApiError> {
        Ok(self.check(quota, key).await?)
    }

    /// See [`Limiter::reset`].
    pub async fn reset(&self, quota: &Quota, key: &str) {
        self.0.reset(quota, key).await
    }

    /// See [`Limiter::refund`].
    pub async fn refund(&self, quota: &Quota, key: &str) {
        self.0.refund(quota, key).await
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::memory()
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

/// governor's DashMap state store behind an `Arc`, so a key can be removed (reset) while the
/// keyed limiter keeps using the same map.
#[derive(Clone, Default)]
struct SharedStore(Arc<DashMapStateStore<String>>);

impl StateStore for SharedStore {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<String> for SharedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.retain_recent(drop_below)
    }
    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0)
    }
    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }
    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

/// One quota's keyed limiter.
struct Keyed {
    limiter: RateLimiter<String, SharedStore, DefaultClock>,
    store: SharedStore,
    checks: AtomicU64,
}

/// Every this many checks of one quota, keys back at a fresh state are dropped, so a flood
/// of made-up keys cannot grow memory without bound.
const HOUSEKEEPING_EVERY: u64 = 4096;

/// Counters in this process: one `governor` keyed limiter per quota.
#[derive(Default)]
pub struct MemoryLimiter {
    quotas: Mutex<HashMap<Quota, Arc<Keyed>>>,
}

impl MemoryLimiter {
    fn keyed(&self, quota: &Quota) -> Option<Arc<Keyed>> {
        let mut quotas = self.quotas.lock().ok()?;
        Some(
            quotas
                .entry(*quota)
                .or_insert_with(|| {
                    let store = SharedStore::default();
                    Arc::new(Keyed {
                        limiter: RateLimiter::new(
                            quota.governor(),
                            store.clone(),
                            DefaultClock::default(),
                        ),
                        store,
                        checks: AtomicU64::new(0),
                    })
                })
                .clone(),
        )
    }

    /// Synchronous [`Limiter::check`] (memory never waits).
    pub fn check_now(&self, quota: &Quota, key: &str) -> Result<(), RetryAfter> {
        let Some(keyed) = self.keyed(quota) else {
            return Ok(()); // a poisoned lock: count nothing rather than refuse everyone
        };
        if keyed.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY
            == HOUSEKEEPING_EVERY - 1
        {
            keyed.limiter.retain_recent();
            keyed.limiter.shrink_to_fit();
        }
        keyed
            .limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(keyed.limiter.clock().now())))
    }

    /// Synchronous [`Limiter::reset`].
    pub fn reset_now(&self, quota: &Quota, key: &str) {
        if let Some(keyed) = self.keyed(quota) {
            keyed.store.0.remove(key);
        }
    }

    /// Synchronous [`Limiter::refund`]: the key's theoretical arrival time moves back by one
    /// interval (a key already back at a fresh state stays as it is).
    pub fn refund_now(&self, quota: &Quota, key: &str) {
        let Some(keyed) = self.keyed(quota) else {
            return;
        };
        let interval = Nanos::from(quota.interval());
        let _ = keyed
            .store
            .measure_and_replace(&key.to_owned(), |tat| match tat {
                Some(tat) => Ok(((), tat.saturating_sub(interval))),
                None => Err(()),
            });
    }
}

#[async_trait::async_trait]
impl Limiter for MemoryLimiter {
    async fn check(&self, quota: &Quota, key: &str) -> Result<(), RetryAfter> {
        self.check_now(quota, key)
    }
    async fn reset(&self, quota: &Quota, key: &str) {
        self.reset_now(quota, key)
    }
    async fn refund(&self, quota: &Quota, key: &str) {
        self.refund_now(quota, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota::new("test", 3, Duration::from_secs(30));

    #[test]
    fn a_key_gets_its_burst_then_waits_about_one_interval() {
        let m = MemoryLimiter::default();
        for _ in 0..3 {
            assert_eq!(m.check_now(&Q, "a"), Ok(()));
        }
        let wait = m.check_now(&Q, "a").unwrap_err();
        assert!(wait.0 <= Duration::from_secs(10) && wait.0 > Duration::from_secs(8));
        assert_eq!(wait.secs(), 10);
        // Another key, or the same key under another quota, is counted apart.
        assert_eq!(m.check_now(&Q, "b"), Ok(()));
        let other = Quota::new("other", 1, Duration::from_secs(30));
        assert_eq!(m.check_now(&other, "a"), Ok(()));
    }

    #[test]
    fn reset_forgets_a_key() {
        let m = MemoryLimiter::default();
        for _ in 0..3 {
            m.check_now(&Q, "a").unwrap();
        }
        assert!(m.check_now(&Q, "a").is_err());
        m.reset_now(&Q, "a");
        assert_eq!(m.check_now(&Q, "a"), Ok(()));
    }

    #[test]
    fn a_refund_gives_back_exactly_one_event() {
        let m = MemoryLimiter::default();
        for _ in 0..3 {
            m.check_now(&Q, "a").unwrap();
        }
        assert!(m.check_now(&Q, "a").is_err());
        m.refund_now(&Q, "a");
        assert_eq!(m.check_now(&Q, "a"), Ok(()));
        assert!(m.check_now(&Q, "a").is_err());
        // Refunding an unknown key, or more than was counted, never adds budget beyond burst.
        m.refund_now(&Q, "fresh");
        for _ in 0..5 {
            m.refund_now(&Q, "b");
        }
        for _ in 0..3 {
            assert_eq!(m.check_now(&Q, "b"), Ok(()));
        }
        assert!(m.check_now(&Q, "b").is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1500)).secs(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }
}
