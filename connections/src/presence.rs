//! Presence: a user is online while at least one of their sockets is connected (to this
//! process). `user:online` / `user:offline` go to the chat rooms of the user's chats; offline
//! only when the last socket leaves, and then `lastSeenAt` is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kernel::contract::{Timestamp, now};
use kernel::events::{EventName, UserPresence};
use kernel::{ApiError, AuthUser};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::emitter::SocketEmitter;
use crate::gateway::{Counted, Gateway};
use crate::routing::chat_room;

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
    /// Serializes this user's online/offline announcements; `true` while announced online.
    gate: Arc<tokio::sync::Mutex<bool>>,
}

/// Socket counts per user.
#[derive(Default)]
pub(crate) struct Presence {
    users: Mutex<HashMap<Uuid, Entry>>,
}

impl Presence {
    /// How many sockets this user has open here.
    pub fn sockets_of(&self, user_id: Uuid) -> usize {
        self.users
            .lock()
            .map(|u| u.get(&user_id).map_or(0, |e| e.sockets))
            .unwrap_or(0)
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

    pub(crate) async fn connected(
        &self,
        gw: &Gateway,
        emitter: &SocketEmitter,
        s: &SocketRef,
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
        if !*announced && self.sockets_of(user.id) > 0 {
            *announced = true;
            announce(gw, emitter, user.id, EventName::UserOnline).await;
        }
    }

    pub(crate) async fn disconnected(&self, gw: &Gateway, emitter: &SocketEmitter, s: &SocketRef) {
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
        if *announced && self.sockets_of(user.id) == 0 {
            *announced = false;
            if let Err(e) = record_last_seen(gw.state.bus.db(), user.id, now()).await {
                tracing::debug!(error = %e, "last seen not stored");
            }
            announce(gw, emitter, user.id, EventName::UserOffline).await;
            if let Ok(mut users) = self.users.lock()
                && users.get(&user.id).is_some_and(|e| e.sockets == 0)
            {
                users.remove(&user.id);
            }
        }
    }
}

async fn announce(gw: &Gateway, emitter: &SocketEmitter, user_id: Uuid, event: EventName) {
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
