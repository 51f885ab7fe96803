//! The node's `LISTEN` connection (PostgreSQL): wakes this node's subscribers when any node
//! commits events, and the lease holders when an admin asks for a dead letter's retry.
//!
//! A dedicated `PgListener` on its own one-connection pool. Notifications sent while it is
//! disconnected are lost, so after every (re)connect it wakes everyone once (they read the
//! log); polling remains the fallback. A ping every [`PING_EVERY`] finds a half-open
//! connection, which is then replaced.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::{DEAD_LETTERS_CHANNEL, EVENTS_CHANNEL, EventBus};

const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Listens until `cancel` fires.
pub(super) async fn run(bus: EventBus, cancel: CancellationToken) {
    let options = super::lease::dedicated_options(bus.db(), "marketplace listener");
    let mut pause = Duration::from_millis(500);
    loop {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.clone());
        let connect = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen_all([EVENTS_CHANNEL, DEAD_LETTERS_CHANNEL]).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        };
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            r = connect => r,
        };
        match connected {
            Ok(mut listener) => {
                pause = Duration::from_millis(500);
                tracing::debug!("event listener connected");
                // Whatever was committed while we were not listening.
                bus.wake();
                bus.wake_dead_letters();
                if !listen(&bus, &mut listener, &cancel).await {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for events; polling meanwhile"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Handles notifications until the connection fails (returns true: reconnect) or `cancel`
/// fires (false).
async fn listen(bus: &EventBus, listener: &mut PgListener, cancel: &CancellationToken) -> bool {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = ping.tick() => {
                let alive = tokio::time::timeout(
                    PING_TIMEOUT,
                    sea_orm::sqlx::query("SELECT 1").execute(&mut *listener),
                )
                .await;
                if !matches!(alive, Ok(Ok(_))) {
                    tracing::warn!("the event listener connection stopped answering; reconnecting");
                    return true;
                }
            }
            r = listener.try_recv() => match r {
                Ok(Some(n)) if n.channel() == DEAD_LETTERS_CHANNEL => bus.wake_dead_letters(),
                Ok(Some(_)) => bus.wake(),
                Ok(None) => {
                    // Lost and re-established by sqlx: notifications in between are gone.
                    tracing::info!("event listener reconnected");
                    bus.wake();
                    bus.wake_dead_letters();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event listener failed; reconnecting");
                    return true;
                }
            }
        }
    }
}
