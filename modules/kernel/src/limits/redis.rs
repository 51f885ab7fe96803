//! [`RedisLimiter`]: the counters of every node in one Redis, so a limit counts across the
//! cluster. Each check is one atomic Lua script (GCRA, the same algorithm as the in-memory
//! limiter) on the key `{prefix}:limits:{quota}:{key}`, timed by Redis's own clock so nodes
//! with skewed clocks still agree. Keys expire once they are back to a fresh state.
//!
//! Redis trouble never fails a request: a call that errors or takes longer than
//! [`CALL_TIMEOUT`] is counted in this node's memory instead, the outage is logged once, and
//! a background probe (every [`PROBE_EVERY`]) switches back to Redis as soon as it answers.
//! While Redis is down each node counts on its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Limiter, MemoryLimiter, Quota, RetryAfter};

/// The longest a request waits on Redis before it is counted in memory instead.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How often an unreachable Redis is tried again (in the background, never by a request).
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// GCRA in one step. KEYS[1]: the key's theoretical arrival time (µs, Redis clock).
/// ARGV[1]: µs per event (period / burst), ARGV[2]: burst. Returns -1 when the event is
/// allowed (and counted), otherwise the µs until one more is allowed.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local new_tat = tat + interval
local over = new_tat - now - interval * burst
if over > 0 then return math.ceil(over) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return -1
";

/// Takes back one event. KEYS[1], ARGV[1] as for [`GCRA`]. The key is deleted once it is
/// back at a fresh state.
const REFUND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if not tat then return 0 end
local new_tat = tat - tonumber(ARGV[1])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 1
";

/// Rate-limit counters in Redis with an in-memory fallback. Build it with
/// [`super::Limits::redis`] (or [`RedisLimiter::new`]).
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    script: redis::Script,
    refund: redis::Script,
    fallback: MemoryLimiter,
    /// `true` while Redis answers; `false` from a failed call until the probe succeeds.
    healthy: AtomicBool,
    /// Set when an outage was logged; cleared by the next successful Redis count.
    outage_logged: AtomicBool,
}

impl RedisLimiter {
    /// Counts in the Redis behind `conn`, every key under `{prefix}:limits:`. `conn` may be a
    /// lazy manager (not yet connected): nothing here waits for Redis to be up.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn,
                prefix: prefix.to_owned(),
                script: redis::Script::new(GCRA),
                refund: redis::Script::new(REFUND),
                fallback: MemoryLimiter::default(),
                healthy: AtomicBool::new(true),
                outage_logged: AtomicBool::new(false),
            }),
        }
    }

    /// `true` while counts go to Redis, `false` while this node counts in memory.
    pub fn using_redis(&self) -> bool {
        self.inner.healthy.load(Ordering::Acquire)
    }

    fn key(&self, quota: &Quota, key: &str) -> String {
        format!("{}:limits:{}:{}", self.inner.prefix, quota.name, key)
    }
}

/// µs per event (`period / burst`), at least 1.
fn interval_us(quota: &Quota) -> u64 {
    u64::try_from(quota.interval().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Inner {
    /// Switches to memory, logs the outage once, and starts the probe that switches back.
    fn went_down(self: &Arc<Self>, error: &str) {
        if !self.outage_logged.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error,
                "Redis unreachable: rate limits count in this node's memory until it answers"
            );
        }
        if self.healthy.swap(false, Ordering::AcqRel) {
            let weak = Arc::downgrade(self);
            tokio::spawn(probe(weak));
        }
    }
}

/// Pings Redis every [`PROBE_EVERY`] until it answers, then sends counts there again. Ends
/// when the limiter is dropped.
async fn probe(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut conn = inner.conn.clone();
        let ping = redis::cmd("PING");
        if let Ok(Ok(_)) =
            tokio::time::timeout(CALL_TIMEOUT, ping.query_async::<String>(&mut conn)).await
        {
            inner.healthy.store(true, Ordering::Release);
            tracing::info!("Redis answers again: rate limits count across nodes again");
            return;
        }
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn check(&self, quota: &Quota, key: &str) -> Result<(), RetryAfter> {
        if !self.using_redis() {
            return self.inner.fallback.check_now(quota, key);
        }
        let interval_us = interval_us(quota);
        let mut conn = self.inner.conn.clone();
        let mut call = self.inner.script.prepare_invoke();
        call.key(self.key(quota, key))
            .arg(interval_us)
            .arg(quota.burst_nonzero().get());
        let result = tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
        match result {
            Ok(Ok(wait_us)) => {
                self.inner.outage_logged.store(false, Ordering::Release);
                if wait_us < 0 {
                    Ok(())
                } else {
                    Err(RetryAfter(Duration::from_micros(wait_us.unsigned_abs())))
                }
            }
            Ok(Err(e)) => {
                self.inner.went_down(&e.to_string());
                self.inner.fallback.check_now(quota, key)
            }
            Err(_) => {
                self.inner.went_down("no answer within the call timeout");
                self.inner.fallback.check_now(quota, key)
            }
        }
    }

    async fn reset(&self, quota: &Quota, key: &str) {
        self.inner.fallback.reset_now(quota, key);
        if !self.using_redis() {
            return;
        }
        let mut conn = self.inner.conn.clone();
        let mut del = redis::cmd("DEL");
        del.arg(self.key(quota, key));
        match tokio::time::timeout(CALL_TIMEOUT, del.query_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.inner.went_down(&e.to_string()),
            Err(_) => self.inner.went_down("no answer within the call timeout"),
        }
    }

    async fn refund(&self, quota: &Quota, key: &str) {
        if !self.using_redis() {
            self.inner.fallback.refund_now(quota, key);
            return;
        }
        let mut conn = self.inner.conn.clone();
        let mut call = self.inner.refund.prepare_invoke();
        call.key(self.key(quota, key)).arg(interval_us(quota));
        match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.inner.went_down(&e.to_string()),
            Err(_) => self.inner.went_down("no answer within the call timeout"),
        }
    }
}
