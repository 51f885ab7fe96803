//! Who may see a durable event (its rooms in the catalog's event table, evaluated for one
//! user), and reading the log for one user: what a reconnecting socket missed (replayed by
//! [`crate::live`]) and the pages of `GET /api/events`.

use std::collections::HashMap;

use catalog::Role;
use catalog::events::Audience;
use kernel::ports::{ChatPort, RequestAccess};
use kernel::{ApiError, AuthUser, StoredEvent};
use uuid::Uuid;

use crate::gateway::Gateway;
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
}
