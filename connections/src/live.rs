//! Durable events to sockets, without gap or duplicate: the one place that keeps this rule.
//!
//! - **Live**: the bus subscriber [`crate::replay::SUBSCRIBER`] hands each durable event to
//!   [`Gateway::deliver`], which emits it to the union of its rooms on this node while holding
//!   `Gateway::live`, and records its id there.
//! - **Replay**: a socket that connects with `auth.lastEventId` reads what it missed, then
//!   takes the same lock, replays the events up to the recorded id, joins its rooms and
//!   releases ([`Gateway::replay_then_join`]): every later event is emitted after the join,
//!   every earlier one was replayed.
//! - **No replay**: a socket without `lastEventId` joins its rooms in the handshake, before
//!   the client sees `connect`, after [`Gateway::fix_live_start`] has fixed where this node's
//!   live delivery starts: every event committed after the client saw `connect` reaches it.
//! - **Start**: the bus asks [`Gateway::resume_live`] where this node's emitter begins: after
//!   what replays were already told was emitted.
//!
//! Tested from outside, with the official client: `tests/tests/suite/bus_live.rs` (replay
//! and live together under load, no gap and no duplicate), `tests/tests/suite/marketplace_live.rs`
//! and `tests/tests/suite/cluster.rs` (three nodes, a node that has just started).

use std::sync::atomic::Ordering;

use catalog::events::{EventMeta, EventName, ReplayTruncated};
use kernel::bus::entity::subscriber_cursor;
use kernel::{ApiError, AuthUser, StoredEvent};
use sea_orm::EntityTrait;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::emitter::SocketEmitter;
use crate::gateway::Gateway;
use crate::replay::{REPLAY_LIMIT, SUBSCRIBER, Viewer};
use catalog::rooms;

impl Gateway {
    /// Emits one durable event to the union of its rooms with `{ id, at }`, recording it as
    /// the last one emitted (under the lock replay takes).
    pub(crate) async fn deliver<A: Adapter>(
        &self,
        emitter: &SocketEmitter<A>,
        event: &StoredEvent,
    ) {
        if !event.name.is_durable() {
            return;
        }
        let mut live = self.live.lock().await;
        let target = rooms::target(event.name, &event.audience);
        let meta = EventMeta {
            id: event.id,
            at: event.at,
        };
        if let Err(e) = emitter
            .emit_to_target_here(target, event.name.as_str(), &(&event.payload, &meta))
            .await
        {
            // Per-socket failures (closed, buffer full); the other sockets got it.
            tracing::debug!(event_id = event.id, error = %e, "event not delivered to every socket");
        }
        let since_commit = (catalog::contract::now() - event.at)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(kernel::monitor::EVENT_DELIVERY).record(since_commit.as_secs_f64());
        *live = Some(live.map_or(event.id, |l| l.max(event.id)));
    }
}

impl Gateway {
    /// The id of the last event the live emitter has handled: in memory once it emitted (or
    /// started) in this process, else its durable cursor, which is then recorded as this
    /// node's position so the emitter starts right after it (see
    /// [`Gateway::resume_live`]): on several nodes the shared cursor moves on by itself, and a
    /// socket replayed up to here must get the rest live. Call with `live` locked.
    async fn last_emitted(&self, live: &mut Option<i64>) -> Result<i64, ApiError> {
        if let Some(id) = live {
            return Ok(*id);
        }
        let row = subscriber_cursor::Entity::find_by_id(SUBSCRIBER.to_owned())
            .one(self.state.bus.db())
            .await?;
        let id = row.map(|r| r.last_event_id).unwrap_or(0);
        *live = Some(id);
        self.live_known.store(true, Ordering::Release);
        Ok(id)
    }

    /// Fixes where this node's live delivery starts, if nothing has yet, before a socket joins
    /// its rooms without a replay. Every event the live emitter will skip was then committed
    /// before the join. Otherwise a socket that connects while the emitter has not started
    /// (the node has just started) could miss an event: the emitter would start after the
    /// shared cursor as it is then, which the other nodes may have moved past events committed
    /// after the join.
    pub(crate) async fn fix_live_start(&self) -> Result<(), ApiError> {
        if self.live_known.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut live = self.live.lock().await;
        self.last_emitted(&mut live).await.map(|_| ())
    }

    /// Where the live emitter of this node starts (the bus asks before it reads the log):
    /// after what replays were already told was emitted, else after `position`.
    pub(crate) async fn resume_live(&self, position: i64) -> i64 {
        let mut live = self.live.lock().await;
        let start = *live.get_or_insert(position);
        self.live_known.store(true, Ordering::Release);
        start
    }

    /// Replays to `s` the events after `after` that `user` may see (at most
    /// [`REPLAY_LIMIT`], then `events:replay-truncated`), then joins `rooms`, with no gap and
    /// no duplicate against live delivery.
    pub(crate) async fn replay_then_join<A: Adapter>(
        &self,
        emitter: &SocketEmitter<A>,
        s: &SocketRef<A>,
        user: AuthUser,
        after: i64,
        rooms: Vec<String>,
    ) {
        let mut viewer = Viewer::new(user, &*self.requests, &*self.chats);
        // The bulk of the reading happens before the lock, so live delivery is not held up.
        let first = match self.scan(&mut viewer, after, None, REPLAY_LIMIT + 1).await {
            Ok(scan) => scan,
            Err(e) => {
                tracing::warn!(error = %e, "replay failed; joining without it");
                join_rooms(s, rooms);
                return;
            }
        };
        let mut live = self.live.lock().await;
        let result: Result<(), ApiError> = async {
            let until = self.last_emitted(&mut live).await?;
            let mut events: Vec<StoredEvent> =
                first.events.into_iter().filter(|e| e.id <= until).collect();
            let mut position = first.scanned_to.min(until);
            if events.len() <= REPLAY_LIMIT && position < until {
                // Committed while we read, or beyond what one scan reads: continue up to what
                // was emitted live.
                let rest = self
                    .scan(
                        &mut viewer,
                        position,
                        Some(until),
                        REPLAY_LIMIT + 1 - events.len(),
                    )
                    .await?;
                events.extend(rest.events);
                position = rest.scanned_to.min(until);
            }
            let truncated = events.len() > REPLAY_LIMIT || position < until;
            events.truncate(REPLAY_LIMIT);
            for event in &events {
                let meta = EventMeta {
                    id: event.id,
                    at: event.at,
                };
                if let Err(e) =
                    emitter.emit_to_socket(s, event.name.as_str(), &(&event.payload, &meta))
                {
                    tracing::debug!(error = %e, "replay interrupted");
                    return Ok(());
                }
            }
            if truncated {
                // Complete up to here: the last replayed event, or the last row read when the
                // scan budget ran out first.
                let last = if events.len() >= REPLAY_LIMIT {
                    events.last().map(|e| e.id).unwrap_or(after)
                } else {
                    position
                };
                let notice = ReplayTruncated {
                    last_event_id: last,
                };
                let _ =
                    emitter.emit_to_socket(s, EventName::EventsReplayTruncated.as_str(), &notice);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "replay failed; joining without it");
        }
        join_rooms(s, rooms);
        drop(live);
    }
}

/// Joins rooms unless the socket is already gone (a room entry of a disconnected socket
/// would never be cleaned up).
pub(crate) fn join_rooms<A: Adapter>(s: &SocketRef<A>, rooms: Vec<String>) {
    if s.connected() {
        s.join(rooms);
    }
}
