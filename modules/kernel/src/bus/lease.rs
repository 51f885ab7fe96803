//! Per-subscriber leases on PostgreSQL: a session-level advisory lock held on a dedicated
//! connection (never a pooled one: the pool could hand it to someone else, and the lock would
//! go with it). PostgreSQL frees the lock the moment that session ends: a stopped or killed
//! process closes its TCP connection, and a machine that vanishes is noticed through the TCP
//! keepalives set on the connection (about 8 s). The holder pings its connection every
//! [`CHECK_EVERY`] and stops handling at once when a ping fails.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, Connection};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// The first key of every lease lock (the second is the hash of the subscriber's name). The
/// two-key form never collides with the one-key lock that orders event ids.
const LEASE_CLASS: i32 = 7242;
/// How often the holder checks that its lease connection is alive.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A check or a cursor write slower than this counts as a lost connection.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for a dedicated connection: those of the pool, plus server-side TCP keepalives
/// (idle 4 s, then 2 probes 2 s apart) and a TCP user timeout, so PostgreSQL notices a peer
/// that vanished without closing its connection, and frees its locks, within about 8 s.
pub(super) fn dedicated_options(db: &DatabaseConnection, purpose: &str) -> PgConnectOptions {
    let base: PgConnectOptions = (*db.get_postgres_connection_pool().connect_options()).clone();
    base.application_name(purpose).options([
        ("tcp_keepalives_idle", "4"),
        ("tcp_keepalives_interval", "2"),
        ("tcp_keepalives_count", "2"),
        ("tcp_user_timeout", "8000"),
    ])
}

/// A stable 32-bit FNV-1a hash of a subscriber name (the same on every node and version).
fn lease_key(name: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// A held lease. Dropping it closes its connection, which frees the lock.
pub(super) struct Lease {
    name: &'static str,
    conn: Arc<Mutex<PgConnection>>,
    lost: CancellationToken,
    watcher: JoinHandle<()>,
}

impl Lease {
    /// Waits until this node holds the lease of `name` (trying every `retry`), or returns
    /// `None` when `stop` fires first.
    pub(super) async fn acquire(
        db: &DatabaseConnection,
        name: &'static str,
        retry: Duration,
        stop: &CancellationToken,
    ) -> Option<Lease> {
        let options = dedicated_options(db, &format!("marketplace lease {name}"));
        let key = lease_key(name);
        let mut conn: Option<PgConnection> = None;
        let mut waiting_logged = false;
        loop {
            if stop.is_cancelled() {
                return None;
            }
            if conn.is_none() {
                match PgConnection::connect_with(&options).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(subscriber = name, error = %e, "cannot open the lease connection; retrying");
                    }
                }
            }
            if let Some(mut c) = conn.take() {
                let got = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(LEASE_CLASS)
                    .bind(key)
                    .fetch_one(&mut c)
                    .await;
                match got {
                    Ok(true) => {
                        tracing::info!(
                            subscriber = name,
                            "holding the subscriber's lease on this node"
                        );
                        return Some(Lease::hold(name, c));
                    }
                    Ok(false) => {
                        if !waiting_logged {
                            tracing::info!(
                                subscriber = name,
                                "another node holds the subscriber's lease; standing by"
                            );
                            waiting_logged = true;
                        }
                        conn = Some(c);
                    }
                    Err(e) => {
                        tracing::warn!(subscriber = name, error = %e, "lease query failed; reconnecting");
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }

    fn hold(name: &'static str, conn: PgConnection) -> Lease {
        let conn = Arc::new(Mutex::new(conn));
        let lost = CancellationToken::new();
        let watcher = tokio::spawn({
            let (conn, lost) = (conn.clone(), lost.clone());
            async move {
                loop {
                    tokio::time::sleep(CHECK_EVERY).await;
                    let mut c = conn.lock().await;
                    let alive = tokio::time::timeout(CHECK_TIMEOUT, c.ping()).await;
                    if !matches!(alive, Ok(Ok(()))) {
                        tracing::warn!(subscriber = name, "the lease connection is gone");
                        lost.cancel();
                        return;
                    }
                }
            }
        });
        Lease {
            name,
            conn,
            lost,
            watcher,
        }
    }

    /// Fires when the lease may have been lost: handling must stop at once.
    pub(super) fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Writes the subscriber's cursor on the lease connection: a node that lost the lease
    /// cannot move it any more. A failure marks the lease lost.
    pub(super) async fn save_cursor(&self, name: &str, cursor: i64) -> Result<(), ApiError> {
        let mut c = self.conn.lock().await;
        let write = sqlx::query(
            "UPDATE subscriber_cursors SET last_event_id = $1, updated_at = now() WHERE name = $2",
        )
        .bind(cursor)
        .bind(name)
        .execute(&mut *c);
        match tokio::time::timeout(CHECK_TIMEOUT, write).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.lost.cancel();
                Err(ApiError::internal(e))
            }
            Err(_) => {
                self.lost.cancel();
                Err(ApiError::internal(
                    "cursor write on the lease connection timed out",
                ))
            }
        }
    }

    /// Gives the lease back (closing its connection frees the lock).
    pub(super) async fn release(self) {
        self.watcher.abort();
        let _ = self.watcher.await;
        if let Ok(conn) = Arc::try_unwrap(self.conn) {
            let _ = tokio::time::timeout(CHECK_TIMEOUT, conn.into_inner().close()).await;
        }
        tracing::debug!(subscriber = self.name, "released the subscriber's lease");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lease_keys_are_stable_and_distinct() {
        assert_eq!(super::lease_key(""), 0x811c_9dc5_u32 as i32);
        assert_ne!(
            super::lease_key("notifications"),
            super::lease_key("payments.payouts")
        );
    }
}
