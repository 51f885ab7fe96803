//! Slows password guessing: after `max_failures` failed logins for one account within
//! `window`, further attempts for it answer 429 (with `Retry-After`) until the window passes,
//! even with the right password. Kept in memory: per process, reset on restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kernel::ApiError;

/// Failed-login counts per account key (the normalized email).
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Bound on remembered accounts, so a flood of made-up emails cannot grow memory forever.
const MAX_ENTRIES: usize = 100_000;

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// 429 while this account is locked out.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let Ok(entries) = self.entries.lock() else {
            return Ok(());
        };
        match entries.get(key) {
            Some(&(count, since))
                if count >= self.max_failures && since.elapsed() < self.window =>
            {
                let left = self.window.saturating_sub(since.elapsed()).as_secs().max(1);
                Err(ApiError::RateLimited {
                    retry_after_secs: left,
                })
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let window = self.window;
            entries.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn record_success(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

impl Default for LoginLimiter {
    /// 10 failures per 15 minutes.
    fn default() -> Self {
        Self::new(10, Duration::from_secs(15 * 60))
    }
}
