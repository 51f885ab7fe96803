//! Who may see a durable event (its rooms in the catalog's event table, evaluated for one
//! user), replay on reconnect, and the pages of `GET /api/events`.
//!
//! Replay without gap or duplicate: the bus subscriber emits each event while holding
//! `Gateway::live` and records its id there. A reconnecting socket reads what it missed,
//! then takes the same lock, replays the events up to the recorded id, joins its rooms and
//! releases: every later event is emitted after the join, every earlier one was replayed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use catalog::Role;
use catalog::events::{Audience, EventMeta, EventName, ReplayTruncated};
use kernel::bus::entity::subscriber_cursor;
use kernel::ports::{ChatPort, RequestAccess};
use kernel::{ApiError, AuthUser, StoredEvent};
use sea_orm::EntityTrait;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::emitter::SocketEmitter;
use crate::gateway::{Gateway, join_rooms};
use catalog::rooms::RoomRule;

/// The stable name of the subscriber that emits durable events to sockets.
pub const SUBSCRIBER: &str = "connections.sockets";
/// At most this many events are replayed on reconnect.
pub const REPLAY_LIMIT: usize = 500;
/// Rows read from the log per query.
const BATCH: u64 = 500;
/// A replay or a page reads at most this many log rows; a sparse log then ends the page early
/// with a cursor to continue from.
const SCAN_BUDGET: usize = 20_000;

/// Answers "may this user be in the rooms of this event now", caching port answers.
pub(crate) struct Viewer<'a> {
    user: AuthUser,
    requests: &'a dyn RequestAccess,
    chats: &'a dyn ChatPort,
    request_cache: HashMap<Uuid, bool>,
    chat_cache: HashMap<Uuid, bool>,
}

impl<'a> Viewer<'a> {
    pub fn new(user: AuthUser, requests: &'a dyn RequestAccess, chats: &'a dyn ChatPort) -> Self {
        Self {
            user,
            requests,
            chats,
            request_cache: HashMap::new(),
            chat_cache: HashMap::new(),
        }
    }

    pub async fn may_see(&mut self, event: &StoredEvent) -> Result<bool, ApiError> {
        for rule in event.name.rooms() {
            if self.may_be_in(*rule, &event.audience).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The join rules of the contract, for one room of one event.
    async fn may_be_in(&mut self, rule: RoomRule, audience: &Audience) -> Result<bool, ApiError> {
        let u = self.user;
        Ok(match rule {
            RoomRule::User(f) => f.get(audience).is_some_and(|id| id == u.id || u.is_admin()),
            RoomRule::Seller(f) => u.role == Role::Seller && f.get(audience) == Some(u.id),
            RoomRule::Sellers => u.role == Role::Seller,
            RoomRule::Buyers => u.role == Role::Buyer,
            RoomRule::Admin => u.is_admin(),
            RoomRule::Everyone => true,
            RoomRule::Request => match audience.request_id {
                None => false,
                Some(_) if u.is_admin() => true,
                Some(id) => match self.request_cache.get(&id) {
                    Some(v) => *v,
                    None => {
                        let v = self.requests.can_follow_request(u, id).await?;
                        self.request_cache.insert(id, v);
                        v
                    }
                },
            },
            RoomRule::Chat => match audience.chat_id {
                None => false,
                Some(_) if u.is_admin() => true,
                Some(id) => match self.chat_cache.get(&id) {
                    Some(v) => *v,
                    None => {
                        let v = self.chats.can_follow_chat(u, id).await?;
                        self.chat_cache.insert(id, v);
                        v
                    }
                },
            },
        })
    }
}

/// Visible events after a position, and how far the log was read.
pub(crate) struct Scan {
    pub events: Vec<StoredEvent>,
    /// The id of the last log row looked at (visible or not).
    pub scanned_to: i64,
    /// True when the log may hold more rows after `scanned_to` (within `until`).
    pub more: bool,
}

impl Gateway {
    /// Reads the log after `after` (up to `until` when given) and keeps what `viewer` may
    /// see, stopping at `want` visible events or after [`SCAN_BUDGET`] rows.
    pub(crate) async fn scan(
        &self,
        viewer: &mut Viewer<'_>,
        after: i64,
        until: Option<i64>,
        want: usize,
    ) -> Result<Scan, ApiError> {
        let mut out = Vec::new();
        let mut cursor = after;
        let mut scanned = 0usize;
        loop {
            if until.is_some_and(|u| cursor >= u) {
                return Ok(Scan {
                    events: out,
                    scanned_to: cursor,
                    more: false,
                });
            }
            let batch = self.state.bus.read_after(cursor, BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for event in batch {
                if let Some(u) = until.filter(|u| event.id > *u) {
                    return Ok(Scan {
                        events: out,
                        scanned_to: u,
                        more: false,
                    });
                }
                cursor = event.id;
                scanned += 1;
                if event.name.is_durable() && viewer.may_see(&event).await? {
                    out.push(event);
                    if out.len() >= want {
                        return Ok(Scan {
                            events: out,
                            scanned_to: cursor,
                            more: true,
                        });
                    }
                }
            }
            if !full {
                let scanned_to = until.map_or(cursor, |u| u.max(cursor));
                return Ok(Scan {
                    events: out,
                    scanned_to,
                    more: false,
                });
            }
            if scanned >= SCAN_BUDGET {
                return Ok(Scan {
                    events: out,
                    scanned_to: cursor,
                    more: true,
                });
            }
        }
    }

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
