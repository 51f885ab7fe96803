//! The state every socket handler shares. What the handlers do is in [`crate::handshake`]
//! (who may connect, and rooms on connect), [`crate::client_events`] (client → server events
//! and their acks) and [`crate::live`] (durable events to sockets: live delivery and replay,
//! without gap or duplicate).

use std::sync::Arc;

use kernel::AppState;
use kernel::ports::{ChatPort, RequestAccess};

use crate::presence::Presence;

/// What every socket handler shares. Stored as the Socket.IO state and as an axum extension.
pub(crate) struct Gateway {
    pub state: AppState,
    pub requests: Arc<dyn RequestAccess>,
    pub chats: Arc<dyn ChatPort>,
    /// The id of the last durable event emitted live (`None`: nothing yet in this process).
    /// The subscriber holds this lock while emitting; a replaying socket holds it while it
    /// replays and joins its rooms, so it sees every event exactly once.
    pub live: tokio::sync::Mutex<Option<i64>>,
    /// `live` is `Some` (it never goes back to `None`): a connecting socket need not lock it.
    pub live_known: std::sync::atomic::AtomicBool,
    pub presence: Presence,
    pub cors_origins: Vec<String>,
}

/// Marks a socket counted by presence, so its disconnect is counted once.
#[derive(Clone)]
pub(crate) struct Counted;
