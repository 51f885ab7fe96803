//! Slows password guessing: at most 10 login attempts per account in 15 minutes while none
//! succeeds (a successful login clears the count); beyond that every attempt for that account
//! answers 429 with `Retry-After`, even with the right password, and one more attempt is
//! allowed every 90 s. Counted through [`kernel::Limits`], so on a cluster the limit holds
//! across nodes.

use std::time::Duration;

use kernel::{ApiError, Limits, Quota};

/// 10 failed logins per account per 15 minutes.
pub const LOGIN_FAILURES: Quota = Quota::new("login", 10, Duration::from_secs(15 * 60));

/// Longest key kept: every valid email fits; longer input cannot be an account anyway.
const MAX_KEY: usize = 320;

/// The account a login names: its email as stored (trimmed, lower-cased), bounded in length.
pub fn account_key(email: &str) -> String {
    email.trim().to_lowercase().chars().take(MAX_KEY).collect()
}

/// Counts one login attempt for this account; 429 while it is locked out.
pub async fn attempt(limits: &Limits, key: &str) -> Result<(), ApiError> {
    limits.enforce(&LOGIN_FAILURES, key).await
}

/// A successful login: the failures before it no longer count.
pub async fn succeeded(limits: &Limits, key: &str) {
    limits.reset(&LOGIN_FAILURES, key).await
}
