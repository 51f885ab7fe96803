//! Per-subscriber leases on PostgreSQL: session-level advisory locks, one per subscriber, all
//! held on one dedicated connection per node (never a pooled one: the pool could hand it to
//! someone else, and the locks would go with it). One connection whatever the number of
//! side-effect subscribers, on the holder and on the nodes standing by alike, so a cluster
//! costs PostgreSQL a fixed few connections per node.
//!
//! PostgreSQL frees the locks the moment that session ends: a stopped or killed process closes
//! its TCP connection, and a machine that vanishes is noticed through the TCP keepalives set on
//! the connection (about 8 s). A watcher pings the connection every [`CHECK_EVERY`]; when a
//! ping, a lock query or a cursor write fails, the session is dropped, every lease taken on it
//! is lost at once (its holders stop handling), and the next attempt opens a new session.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, Connection};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// The first key of every lease lock (the second is the hash of the subscriber's name). The
/// two-key form never collides with the one-key lock that orders event ids.
const LEASE_CLASS: i32 = 7242;
/// How often the watcher checks that the lease connection is alive.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A check, a lock query or a cursor write slower than this counts as a lost connection.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The `application_name` of the lease connection.
pub(super) const APPLICATION_NAME: &str = "marketplace leases";

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

/// Where a node's subscriber tasks find its lease connection. It is held weakly here, and
/// strongly by the tasks that hold or wait for a lease: the connection closes with them, also
/// when a runtime ends without a graceful stop (an in-process server in a test).
pub(super) struct LeaseHome {
    options: PgConnectOptions,
    current: std::sync::Mutex<Weak<Inner>>,
}

impl LeaseHome {
    pub(super) fn new(db: &DatabaseConnection) -> Self {
        Self {
            options: dedicated_options(db, APPLICATION_NAME),
            current: std::sync::Mutex::new(Weak::new()),
        }
    }

    /// The node's leases: the ones in use, or a new set (its connection opened at the first
    /// attempt).
    pub(super) fn leases(&self) -> Leases {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(inner) = current.upgrade() {
            return Leases { inner };
        }
        let inner = Arc::new(Inner {
            options: self.options.clone(),
            session: Mutex::new(None),
        });
        *current = Arc::downgrade(&inner);
        Leases { inner }
    }
}

/// This node's lease connection and the leases held on it.
#[derive(Clone)]
pub(super) struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    session: Mutex<Option<Session>>,
}

/// One lease connection. Its generation tells a lease taken on it from one taken on a later
/// connection (whose locks are not the same).
struct Session {
    conn: PgConnection,
    generation: u64,
    /// Fires when this connection is dropped: every lock on it is gone.
    lost: CancellationToken,
    /// The lock keys held on it (each at most once: a lock taken twice in one session would
    /// need two unlocks).
    held: HashSet<i32>,
}

/// Drops the session (closing its connection frees its locks) and tells its holders.
fn end_session(slot: &mut Option<Session>) {
    if let Some(session) = slot.take() {
        session.lost.cancel();
    }
}

impl Leases {
    /// Waits until this node holds the lease of `name` (trying every `retry`), or returns
    /// `None` when `stop` fires first.
    pub(super) async fn acquire(
        &self,
        name: &'static str,
        retry: Duration,
        stop: &CancellationToken,
    ) -> Option<Lease> {
        let mut waiting_logged = false;
        loop {
            if stop.is_cancelled() {
                return None;
            }
            match self.try_take(name).await {
                Ok(Some(lease)) => {
                    tracing::info!(
                        subscriber = name,
                        "holding the subscriber's lease on this node"
                    );
                    return Some(lease);
                }
                Ok(None) => {
                    if !waiting_logged {
                        tracing::info!(
                            subscriber = name,
                            "another node holds the subscriber's lease; standing by"
                        );
                        waiting_logged = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(subscriber = name, error = %e, "cannot take the subscriber's lease; retrying");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// One attempt: `Ok(None)` while another node holds the lease.
    async fn try_take(&self, name: &'static str) -> Result<Option<Lease>, String> {
        let key = lease_key(name);
        let mut slot = self.inner.session.lock().await;
        if slot.is_none() {
            *slot = Some(self.connect().await?);
        }
        let session = slot.as_mut().expect("connected above");
        let lease = Lease {
            leases: self.clone(),
            name,
            key,
            generation: session.generation,
            lost: session.lost.clone(),
        };
        if session.held.contains(&key) {
            // Taken on this connection by an earlier run of the subscriber that ended
            // without giving it back (a panic): still held.
            return Ok(Some(lease));
        }
        let query = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LEASE_CLASS)
            .bind(key)
            .fetch_one(&mut session.conn);
        match tokio::time::timeout(CHECK_TIMEOUT, query).await {
            Ok(Ok(true)) => {
                session.held.insert(key);
                Ok(Some(lease))
            }
            Ok(Ok(false)) => Ok(None),
            Ok(Err(e)) => {
                end_session(&mut slot);
                Err(format!("lease query failed: {e}"))
            }
            Err(_) => {
                end_session(&mut slot);
                Err("lease query timed out".into())
            }
        }
    }

    /// Opens a new lease connection and starts its watcher.
    async fn connect(&self) -> Result<Session, String> {
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let conn = tokio::time::timeout(
            CHECK_TIMEOUT,
            PgConnection::connect_with(&self.inner.options),
        )
        .await
        .map_err(|_| "opening the lease connection timed out".to_owned())?
        .map_err(|e| format!("cannot open the lease connection: {e}"))?;
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(watch(Arc::downgrade(&self.inner), generation));
        Ok(Session {
            conn,
            generation,
            lost: CancellationToken::new(),
            held: HashSet::new(),
        })
    }
}

/// Pings the lease connection of `generation` until it fails (then ends the session), until
/// another connection replaced it, or until the node's bus is gone.
async fn watch(inner: Weak<Inner>, generation: u64) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut slot = inner.session.lock().await;
        let Some(session) = slot.as_mut().filter(|s| s.generation == generation) else {
            return;
        };
        let alive = tokio::time::timeout(CHECK_TIMEOUT, session.conn.ping()).await;
        if !matches!(alive, Ok(Ok(()))) {
            tracing::warn!("the lease connection is gone; every lease on it is lost");
            end_session(&mut slot);
            return;
        }
    }
}

/// A held lease.
pub(super) struct Lease {
    leases: Leases,
    name: &'static str,
    key: i32,
    generation: u64,
    lost: CancellationToken,
}

impl Lease {
    /// Fires when the lease may have been lost: handling must stop at once.
    pub(super) fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Writes the subscriber's cursor on the lease connection: a node that lost the lease
    /// cannot move it any more. A failure ends the session, so the lease is lost.
    pub(super) async fn save_cursor(&self, name: &str, cursor: i64) -> Result<(), ApiError> {
        let mut slot = self.leases.inner.session.lock().await;
        let Some(session) = slot.as_mut().filter(|s| s.generation == self.generation) else {
            return Err(ApiError::internal("the subscriber's lease was lost"));
        };
        let write = sqlx::query(
            "UPDATE subscriber_cursors SET last_event_id = $1, updated_at = now() WHERE name = $2",
        )
        .bind(cursor)
        .bind(name)
        .execute(&mut session.conn);
        match tokio::time::timeout(CHECK_TIMEOUT, write).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                end_session(&mut slot);
                Err(ApiError::internal(e))
            }
            Err(_) => {
                end_session(&mut slot);
                Err(ApiError::internal(
                    "cursor write on the lease connection timed out",
                ))
            }
        }
    }

    /// Gives the lease back: another node may take it at its next attempt.
    pub(super) async fn release(self) {
        let mut slot = self.leases.inner.session.lock().await;
        let Some(session) = slot.as_mut().filter(|s| s.generation == self.generation) else {
            return;
        };
        if !session.held.remove(&self.key) {
            return;
        }
        let unlock = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1, $2)")
            .bind(LEASE_CLASS)
            .bind(self.key)
            .fetch_one(&mut session.conn);
        if !matches!(
            tokio::time::timeout(CHECK_TIMEOUT, unlock).await,
            Ok(Ok(true))
        ) {
            // Closing the connection frees the lock all the same.
            end_session(&mut slot);
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
