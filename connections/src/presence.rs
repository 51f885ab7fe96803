//! Presence: a user is online while at least one of their sockets is connected, on any
//! node. `user:online` / `user:offline` go to the chat rooms of the user's chats, once per
//! real change; offline only when the last socket leaves, and then `lastSeenAt` is stored.
//!
//! On one node the counts live in memory. In a cluster each node writes its own count of each
//! user into Redis (`{prefix}:presence:{userId}`, a hash of node → sockets) with an atomic
//! script that tells which node caused a transition; nodes beat every [`HEARTBEAT`] into
//! `{prefix}:nodes`, and a node that stops beating for [`NODE_TTL`] is reaped by another,
//! which takes its users offline. This node's own counts are the truth it writes back after
//! Redis comes back from an outage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog::contract::{Timestamp, now};
use catalog::events::{EventName, UserPresence};
use kernel::{ApiError, AuthUser};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::cluster::RedisLink;
use crate::emitter::SocketEmitter;
use crate::gateway::{Counted, Gateway};
use catalog::rooms::chat_room;

/// The `user_presence` table: when each user was last seen.
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_presence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub last_seen_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

struct Entry {
    sockets: usize,
    /// Serializes this user's online/offline announcements; `true` while announced online
    /// (single node; in a cluster Redis decides).
    gate: Arc<tokio::sync::Mutex<bool>>,
}

/// Socket counts per user: this node's sockets, and in a cluster the count over all nodes.
#[derive(Default)]
pub(crate) struct Presence {
    users: Mutex<HashMap<Uuid, Entry>>,
    /// Set in a cluster: the counts of all nodes live in Redis.
    shared: Option<Shared>,
}

impl Presence {
    /// Presence over every node of a cluster, through `link`.
    pub fn clustered(link: Arc<RedisLink>) -> Self {
        Self {
            users: Mutex::default(),
            shared: Some(Shared {
                link,
                resync: AtomicBool::new(true),
                healthy_since: Mutex::new(None),
                left: AtomicBool::new(false),
            }),
        }
    }

    /// How many sockets this user has open on this node.
    pub fn sockets_of(&self, user_id: Uuid) -> usize {
        self.users
            .lock()
            .map(|u| u.get(&user_id).map_or(0, |e| e.sockets))
            .unwrap_or(0)
    }

    /// Whether the user has a socket on any node (this node's count when Redis does not
    /// answer).
    pub async fn is_online(&self, user_id: Uuid) -> bool {
        if let Some(shared) = &self.shared {
            match shared.sockets_anywhere(user_id).await {
                Ok(nodes) => return nodes > 0,
                Err(e) => tracing::debug!(error = %e, "presence read from redis failed"),
            }
        }
        self.sockets_of(user_id) > 0
    }

    /// Like [`Presence::is_online`], but an `Err` instead of this node's own count when the
    /// cluster's counts in Redis cannot be read: this node alone cannot tell whether the user
    /// is connected to another one. On one node the answer is always known.
    pub async fn is_connected_anywhere(&self, user_id: Uuid) -> Result<bool, String> {
        if self.sockets_of(user_id) > 0 {
            return Ok(true);
        }
        match &self.shared {
            Some(shared) => shared
                .sockets_anywhere(user_id)
                .await
                .map(|nodes| nodes > 0),
            None => Ok(false),
        }
    }

    fn change(&self, user_id: Uuid, delta: isize) -> Option<Arc<tokio::sync::Mutex<bool>>> {
        let mut users = self.users.lock().ok()?;
        let entry = users.entry(user_id).or_insert_with(|| Entry {
            sockets: 0,
            gate: Arc::new(tokio::sync::Mutex::new(false)),
        });
        entry.sockets = entry.sockets.saturating_add_signed(delta);
        Some(entry.gate.clone())
    }

    fn gate_of(&self, user_id: Uuid) -> Option<Arc<tokio::sync::Mutex<bool>>> {
        self.change(user_id, 0)
    }

    fn forget_if_idle(&self, user_id: Uuid) {
        if let Ok(mut users) = self.users.lock()
            && users.get(&user_id).is_some_and(|e| e.sockets == 0)
        {
            users.remove(&user_id);
        }
    }

    pub(crate) async fn connected<A: Adapter>(
        &self,
        gw: &Gateway,
        emitter: &SocketEmitter<A>,
        s: &SocketRef<A>,
        user: AuthUser,
    ) {
        if !s.connected() {
            return;
        }
        s.extensions.insert(Counted);
        let Some(gate) = self.change(user.id, 1) else {
            return;
        };
        let mut announced = gate.lock().await;
        if let Some(shared) = &self.shared {
            shared
                .publish(gw, emitter, user.id, self.sockets_of(user.id))
                .await;
        } else if !*announced && self.sockets_of(user.id) > 0 {
            *announced = true;
            announce(gw, emitter, user.id, EventName::UserOnline).await;
        }
    }

    pub(crate) async fn disconnected<A: Adapter>(
        &self,
        gw: &Gateway,
        emitter: &SocketEmitter<A>,
        s: &SocketRef<A>,
    ) {
        let (Some(user), Some(Counted)) = (
            s.extensions.get::<AuthUser>(),
            s.extensions.remove::<Counted>(),
        ) else {
            return;
        };
        let Some(gate) = self.change(user.id, -1) else {
            return;
        };
        let mut announced = gate.lock().await;
        if let Some(shared) = &self.shared {
            shared
                .publish(gw, emitter, user.id, self.sockets_of(user.id))
                .await;
            self.forget_if_idle(user.id);
        } else if *announced && self.sockets_of(user.id) == 0 {
            *announced = false;
            went_offline(gw, emitter, user.id).await;
            self.forget_if_idle(user.id);
        }
    }

    /// The cluster's presence upkeep, every [`HEARTBEAT`] until `cancel`: keeps this node
    /// alive in Redis, writes every local count again when Redis lost them (restart, or this
    /// node was taken for dead during an outage), and takes the users of dead nodes offline.
    pub(crate) async fn upkeep<A: Adapter>(
        &self,
        gw: &Gateway,
        emitter: &SocketEmitter<A>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let Some(shared) = &self.shared else {
            return;
        };
        loop {
            match shared.heartbeat().await {
                Ok(lost) => {
                    let since = shared.mark_healthy();
                    if shared.left.load(Ordering::Acquire) {
                        return;
                    }
                    if lost || shared.resync.swap(false, Ordering::AcqRel) {
                        self.resync(gw, emitter, shared).await;
                    }
                    // Only a node that has been in touch with Redis for a whole TTL judges
                    // others: after an outage every live node gets a chance to beat first.
                    if since.elapsed() >= NODE_TTL {
                        match shared.reap().await {
                            Ok(gone) => {
                                for user_id in gone {
                                    went_offline(gw, emitter, user_id).await;
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "dead nodes not reaped"),
                        }
                    }
                }
                Err(e) => {
                    shared.mark_unhealthy();
                    tracing::debug!(error = %e, "presence heartbeat failed");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
    }

    /// Leaves the cluster before this node's sockets are closed at shutdown: removes its
    /// counts and announces `user:offline` for the users who had sockets only here (while the
    /// adapter can still reach the other nodes). Later writes are skipped.
    pub(crate) async fn leave_cluster<A: Adapter>(&self, gw: &Gateway, emitter: &SocketEmitter<A>) {
        let Some(shared) = &self.shared else {
            return;
        };
        shared.left.store(true, Ordering::Release);
        match shared.leave().await {
            Ok(gone) => {
                for user_id in gone {
                    went_offline(gw, emitter, user_id).await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "node not removed from redis presence; it expires")
            }
        }
    }

    /// Writes this node's count of every user it knows of (locally, or in Redis) again.
    async fn resync<A: Adapter>(&self, gw: &Gateway, emitter: &SocketEmitter<A>, shared: &Shared) {
        let mut users: Vec<Uuid> = self
            .users
            .lock()
            .map(|u| u.keys().copied().collect())
            .unwrap_or_default();
        match shared.users_here().await {
            Ok(listed) => users.extend(listed),
            Err(e) => {
                tracing::debug!(error = %e, "presence resync postponed");
                shared.resync.store(true, Ordering::Release);
                return;
            }
        }
        users.sort_unstable();
        users.dedup();
        for user_id in users {
            let Some(gate) = self.gate_of(user_id) else {
                continue;
            };
            let _held = gate.lock().await;
            shared
                .publish(gw, emitter, user_id, self.sockets_of(user_id))
                .await;
            self.forget_if_idle(user_id);
        }
    }
}

/// How often a node tells Redis it is alive (and looks for dead ones).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(3);
/// A node not heard of for this long is dead: its users go offline within
/// `NODE_TTL + HEARTBEAT` of its death (well within ping interval + ping timeout + 10 s).
pub(crate) const NODE_TTL: Duration = Duration::from_secs(10);

/// Sets this node's socket count of one user and tells whether the user's presence over the
/// whole cluster changed (1 online, -1 offline, 0 no change). Atomic, so of several nodes
/// changing the same user at once exactly one sees each transition.
const SET_COUNT: &str = r"
local key = ARGV[1] .. ':presence:' .. ARGV[3]
local here = ARGV[1] .. ':node-users:' .. ARGV[2]
local before = redis.call('HLEN', key)
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', key, ARGV[2], ARGV[4])
  redis.call('SADD', here, ARGV[3])
else
  redis.call('HDEL', key, ARGV[2])
  redis.call('SREM', here, ARGV[3])
end
local after = redis.call('HLEN', key)
if before == 0 and after > 0 then return 1 end
if before > 0 and after == 0 then return -1 end
return 0
";

/// Marks this node alive until now + TTL (Redis' clock); 1 when the node was not listed
/// (first beat, Redis restarted, or it was reaped as dead).
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', ARGV[1] .. ':nodes', now + tonumber(ARGV[3]), ARGV[2])
";

/// Removes nodes whose time ran out, and their counts; returns the users who thereby went
/// offline. A node is reaped by exactly one other node (ZREM decides).
const REAP: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nodes = ARGV[1] .. ':nodes'
local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', now, 'LIMIT', 0, 16)
local offline = {}
for _, node in ipairs(dead) do
  if node ~= ARGV[2] and redis.call('ZREM', nodes, node) == 1 then
    local listed = ARGV[1] .. ':node-users:' .. node
    for _, u in ipairs(redis.call('SMEMBERS', listed)) do
      local key = ARGV[1] .. ':presence:' .. u
      if redis.call('HDEL', key, node) == 1 and redis.call('HLEN', key) == 0 then
        table.insert(offline, u)
      end
    end
    redis.call('DEL', listed)
  end
end
return offline
";

/// Leaves the cluster cleanly; returns the users who thereby went offline.
const LEAVE: &str = r"
redis.call('ZREM', ARGV[1] .. ':nodes', ARGV[2])
local listed = ARGV[1] .. ':node-users:' .. ARGV[2]
local offline = {}
for _, u in ipairs(redis.call('SMEMBERS', listed)) do
  local key = ARGV[1] .. ':presence:' .. u
  if redis.call('HDEL', key, ARGV[2]) == 1 and redis.call('HLEN', key) == 0 then
    table.insert(offline, u)
  end
end
redis.call('DEL', listed)
return offline
";

/// Presence state shared through Redis.
struct Shared {
    link: Arc<RedisLink>,
    /// Set when a write failed: the next successful heartbeat writes every count again.
    resync: AtomicBool,
    /// Since when heartbeats succeed without interruption.
    healthy_since: Mutex<Option<Instant>>,
    /// Set at shutdown, once this node's counts were removed.
    left: AtomicBool,
}

impl Shared {
    fn script(&self, body: &'static str) -> redis::Script {
        redis::Script::new(body)
    }

    /// Writes `count` for this node and announces a transition it caused.
    async fn publish<A: Adapter>(
        &self,
        gw: &Gateway,
        emitter: &SocketEmitter<A>,
        user_id: Uuid,
        count: usize,
    ) {
        if self.left.load(Ordering::Acquire) {
            return;
        }
        let script = self.script(SET_COUNT);
        let mut call = script.prepare_invoke();
        call.arg(self.link.prefix())
            .arg(self.link.node_id())
            .arg(user_id.to_string())
            .arg(count);
        match self.link.run::<i64>(&mut call).await {
            Ok(1) => announce(gw, emitter, user_id, EventName::UserOnline).await,
            Ok(-1) => went_offline(gw, emitter, user_id).await,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "presence not written; retried after the next heartbeat");
                self.resync.store(true, Ordering::Release);
            }
        }
    }

    async fn sockets_anywhere(&self, user_id: Uuid) -> Result<u64, String> {
        let mut conn = self.link.connection();
        let key = self.link.key(&format!("presence:{user_id}"));
        tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("HLEN").arg(key).query_async::<u64>(&mut conn),
        )
        .await
        .map_err(|_| "redis timed out".to_owned())?
        .map_err(|e| e.to_string())
    }

    async fn users_here(&self) -> Result<Vec<Uuid>, String> {
        let mut conn = self.link.connection();
        let key = self
            .link
            .key(&format!("node-users:{}", self.link.node_id()));
        let ids: Vec<String> = tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("SMEMBERS").arg(key).query_async(&mut conn),
        )
        .await
        .map_err(|_| "redis timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    /// True when Redis did not list this node (its counts must be written again).
    async fn heartbeat(&self) -> Result<bool, String> {
        let script = self.script(HEARTBEAT_SCRIPT);
        let mut call = script.prepare_invoke();
        call.arg(self.link.prefix())
            .arg(self.link.node_id())
            .arg(NODE_TTL.as_millis() as u64);
        Ok(self.link.run::<i64>(&mut call).await? == 1)
    }

    async fn reap(&self) -> Result<Vec<Uuid>, String> {
        let script = self.script(REAP);
        let mut call = script.prepare_invoke();
        call.arg(self.link.prefix()).arg(self.link.node_id());
        let users: Vec<String> = self.link.run(&mut call).await?;
        Ok(users
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect())
    }

    async fn leave(&self) -> Result<Vec<Uuid>, String> {
        let script = self.script(LEAVE);
        let mut call = script.prepare_invoke();
        call.arg(self.link.prefix()).arg(self.link.node_id());
        let users: Vec<String> = self.link.run(&mut call).await?;
        Ok(users
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect())
    }

    fn mark_healthy(&self) -> Instant {
        let Ok(mut since) = self.healthy_since.lock() else {
            return Instant::now();
        };
        *since.get_or_insert_with(Instant::now)
    }

    fn mark_unhealthy(&self) {
        if let Ok(mut since) = self.healthy_since.lock() {
            *since = None;
        }
        self.resync.store(true, Ordering::Release);
    }
}

/// Stores when the user was last seen, then announces `user:offline`.
async fn went_offline<A: Adapter>(gw: &Gateway, emitter: &SocketEmitter<A>, user_id: Uuid) {
    if let Err(e) = record_last_seen(gw.state.bus.db(), user_id, now()).await {
        tracing::debug!(error = %e, "last seen not stored");
    }
    announce(gw, emitter, user_id, EventName::UserOffline).await;
}

async fn announce<A: Adapter>(
    gw: &Gateway,
    emitter: &SocketEmitter<A>,
    user_id: Uuid,
    event: EventName,
) {
    let rooms = match gw.chats.chats_of(user_id).await {
        Ok(chats) => chats.into_iter().map(chat_room).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "presence not announced: chats unknown");
            return;
        }
    };
    if let Err(e) = emitter
        .emit_to_rooms(rooms, event.as_str(), &UserPresence { user_id })
        .await
    {
        tracing::debug!(error = %e, "presence not delivered to every socket");
    }
}

async fn record_last_seen<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    at: Timestamp,
) -> Result<(), ApiError> {
    let row = entity::ActiveModel {
        user_id: Set(user_id),
        last_seen_at: Set(at),
    };
    entity::Entity::insert(row)
        .on_conflict(
            OnConflict::column(entity::Column::UserId)
                .update_column(entity::Column::LastSeenAt)
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// When this user was last seen, if ever.
pub(crate) async fn last_seen<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Option<Timestamp>, ApiError> {
    Ok(entity::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(|r| r.last_seen_at))
}
