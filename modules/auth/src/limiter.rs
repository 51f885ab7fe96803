//! Slows password guessing without letting a guesser lock the owner out.
//!
//! Two limits, both over 15 minutes and both counted through [`kernel::Limits`] (so on a
//! cluster they hold across nodes):
//! - failures per (account, client address): at most 10. Beyond, that account answers 429
//!   with `Retry-After` to that address only, even with the right password (the guesser
//!   cannot learn it found it); one more attempt every 90 s. The owner, from any other
//!   address, is not affected. A successful login from that address clears its count.
//! - failures per client address over any accounts: at most 30 (password spraying: a few
//!   guesses at each of many accounts). One more every 30 s. Successes do not count, and
//!   they do not clear the failures before them (a sprayer with an account of their own
//!   gains nothing by logging into it).
//!
//! Per (account, address) each attempt is counted as it starts (and taken back when it was
//! no failure), so a burst of concurrent guesses at one account cannot all slip past a look
//! at the same count: the 10 is exact. Per address the count is looked at before the
//! password is checked and a failure counted after it, so logins in flight that will
//! succeed (an office behind one NAT logging in at nine) never use the address's budget; a
//! burst of concurrent guesses over many accounts can overshoot the 30 by the attempts in
//! flight (bounded by the hashing queue, `HASH_QUEUE`), and is locked out after.
//! The client address is [`kernel::ClientAddr`] (`TRUSTED_PROXIES` decides whether
//! `X-Forwarded-For` is believed).

use std::time::Duration;

use kernel::{ApiError, ClientAddr, Limits, Quota};

/// 10 failed logins per (account, client address) per 15 minutes.
pub const LOGIN_FAILURES: Quota = Quota::new("login", 10, Duration::from_secs(15 * 60));

/// 30 failed logins per client address, over any accounts, per 15 minutes.
pub const LOGIN_FAILURES_PER_ADDRESS: Quota =
    Quota::new("login-address", 30, Duration::from_secs(15 * 60));

/// Longest account part of a key: every valid email fits; longer input cannot be an account.
const MAX_ACCOUNT: usize = 320;

/// What one login attempt is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeys {
    /// The (account, client address) pair.
    pair: String,
    /// The client address.
    address: String,
}

impl LoginKeys {
    /// The keys of a login for `email` from `client`: the email as stored (trimmed,
    /// lower-cased, bounded in length) and the client's limit key.
    pub fn new(email: &str, client: ClientAddr) -> Self {
        let account: String = email
            .trim()
            .to_lowercase()
            .chars()
            .take(MAX_ACCOUNT)
            .collect();
        let address = client.limit_key();
        Self {
            pair: format!("{address} {account}"),
            address,
        }
    }
}

/// Admits one attempt: 429 while this address is over its failures, or this account is
/// over its failures from this address; otherwise the attempt is counted for the pair.
pub async fn attempt(limits: &Limits, keys: &LoginKeys) -> Result<(), ApiError> {
    // A look at the address's count: counted and taken back at once.
    limits
        .check(&LOGIN_FAILURES_PER_ADDRESS, &keys.address)
        .await?;
    limits
        .refund(&LOGIN_FAILURES_PER_ADDRESS, &keys.address)
        .await;
    limits.enforce(&LOGIN_FAILURES, &keys.pair).await
}

/// A wrong password (or an unknown email): counted for the address too. (The pair counted it
/// when it started.)
pub async fn failed(limits: &Limits, keys: &LoginKeys) {
    // Over the quota already: the address is locked out either way.
    let _ = limits
        .check(&LOGIN_FAILURES_PER_ADDRESS, &keys.address)
        .await;
}

/// A successful login: this address's failures for this account no longer count. The
/// address's failures stay (a sprayer with an account of their own gains nothing by logging
/// into it).
pub async fn succeeded(limits: &Limits, keys: &LoginKeys) {
    limits.reset(&LOGIN_FAILURES, &keys.pair).await;
}

/// An attempt that ended neither in success nor in a wrong password (the server was busy,
/// the database failed): it was no failure, so the pair's count takes it back.
pub async fn not_a_failure(limits: &Limits, keys: &LoginKeys) {
    limits.refund(&LOGIN_FAILURES, &keys.pair).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_account_as_stored_and_the_address() {
        let client = ClientAddr("10.1.2.3".parse().unwrap());
        let keys = LoginKeys::new("  Owner@Example.COM ", client);
        assert_eq!(keys.pair, "10.1.2.3 owner@example.com");
        assert_eq!(keys.address, "10.1.2.3");
    }

    #[tokio::test]
    async fn the_owner_elsewhere_is_not_locked_out_and_a_spray_stops_at_30() {
        let limits = Limits::memory();
        let attacker = ClientAddr("1.1.1.1".parse().unwrap());
        let owner = ClientAddr("2.2.2.2".parse().unwrap());
        let guess = LoginKeys::new("owner@example.com", attacker);
        for _ in 0..10 {
            attempt(&limits, &guess).await.unwrap();
            failed(&limits, &guess).await;
        }
        assert!(attempt(&limits, &guess).await.is_err());
        let home = LoginKeys::new("owner@example.com", owner);
        attempt(&limits, &home).await.unwrap();
        succeeded(&limits, &home).await;
        // 19 more failures over other accounts, a success of the attacker's own, one more
        // failure: 30. Then every account is refused from there.
        for i in 0..19 {
            let k = LoginKeys::new(&format!("user{i}@example.com"), attacker);
            attempt(&limits, &k).await.unwrap();
            failed(&limits, &k).await;
        }
        let own = LoginKeys::new("attacker@example.com", attacker);
        attempt(&limits, &own).await.unwrap();
        succeeded(&limits, &own).await;
        let last = LoginKeys::new("last@example.com", attacker);
        attempt(&limits, &last).await.unwrap();
        failed(&limits, &last).await;
        assert!(attempt(&limits, &own).await.is_err());
        assert!(
            attempt(&limits, &LoginKeys::new("fresh@example.com", attacker))
                .await
                .is_err()
        );
        // The owner's address has its own budget.
        attempt(&limits, &LoginKeys::new("fresh@example.com", owner))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn successes_in_flight_do_not_use_the_address_budget() {
        let limits = Limits::memory();
        let office = ClientAddr("3.3.3.3".parse().unwrap());
        let keys: Vec<_> = (0..50)
            .map(|i| LoginKeys::new(&format!("staff{i}@example.com"), office))
            .collect();
        for k in &keys {
            attempt(&limits, k).await.unwrap();
        }
        for k in &keys {
            succeeded(&limits, k).await;
        }
    }
}
