//! Client → server events: joining and leaving rooms (checked against the contract's room
//! table), `chat:send`, `chat:read` and the typing relay, each answered through its ack.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::Role;
use catalog::events::{ChatTyping, EventName};
use kernel::{ApiError, AuthUser, Quota};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::emitter::SocketEmitter;
use crate::gateway::Gateway;
use crate::live::join_rooms;
use catalog::rooms;

/// `chat:typing` / `chat:stopped-typing` relays: at most 5 per second per user, across all of
/// that user's sockets (and nodes, when the limits live in Redis). Beyond it a relay is
/// dropped: nothing reaches the chat and the ack says `rate_limited`.
pub const TYPING_QUOTA: Quota = Quota::new("typing", 5, Duration::from_secs(1));

/// Every `error` word an [`Ack`] can carry (the AsyncAPI document and the TypeScript types
/// list exactly these).
pub const ACK_ERRORS: &[&str] = &[
    "forbidden",
    "not_found",
    "bad_request",
    "rate_limited",
    "internal",
];

/// The answer of every client → server event (`{ ok: true, ... }` or `{ ok: false, error }`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub ok: bool,
    /// `forbidden` | `not_found` | `bad_request` | `rate_limited` | `internal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The stable problem code behind `error` (e.g. `validation_failed`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// The rooms joined or left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// `chat:send` only: the stored message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<catalog::contract::Message>,
}

impl Ack {
    pub fn ok() -> Self {
        Self {
            ok: true,
            error: None,
            code: None,
            rooms: None,
            message: None,
        }
    }
    pub fn err(error: &'static str) -> Self {
        Self {
            ok: false,
            error: Some(error),
            code: None,
            rooms: None,
            message: None,
        }
    }
    fn rooms(rooms: Vec<String>) -> Self {
        Self {
            rooms: Some(rooms),
            ..Self::ok()
        }
    }
    /// The ack for a failed port call; internal causes are logged, never sent.
    fn from_error(e: &ApiError) -> Self {
        let error = match e {
            ApiError::NotFound | ApiError::NoRoute => "not_found",
            ApiError::Forbidden(_) | ApiError::Unauthorized | ApiError::Unauthenticated { .. } => {
                "forbidden"
            }
            ApiError::BadRequest { .. }
            | ApiError::Validation { .. }
            | ApiError::Conflict { .. }
            | ApiError::PayloadTooLarge
            | ApiError::UnsupportedMediaType { .. }
            | ApiError::MethodNotAllowed => "bad_request",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_)
            | ApiError::BadGateway { .. }
            | ApiError::Unavailable { .. }
            | ApiError::Busy { .. } => {
                tracing::error!(error = %e, "socket event failed");
                "internal"
            }
        };
        Self {
            code: Some(e.code().as_str()),
            ..Self::err(error)
        }
    }
}

fn send_ack<A: Adapter>(ack: AckSender<A>, reply: &Ack) {
    if let Err(e) = ack.send(reply) {
        tracing::debug!(error = %e, "ack not sent");
    }
}

/// Which pair of room events a handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomKind {
    User,
    Seller,
    Buyer,
    Request,
    Chat,
}

/// `(event, kind, join?)` for every room event of the contract.
pub(crate) const ROOM_EVENTS: &[(&str, RoomKind, bool)] = &[
    ("join-user-room", RoomKind::User, true),
    ("join-seller-room", RoomKind::Seller, true),
    ("leave-seller-room", RoomKind::Seller, false),
    ("join-buyer-room", RoomKind::Buyer, true),
    ("leave-buyer-room", RoomKind::Buyer, false),
    ("join-request-room", RoomKind::Request, true),
    ("leave-request-room", RoomKind::Request, false),
    ("join-chat-room", RoomKind::Chat, true),
    ("leave-chat-room", RoomKind::Chat, false),
];

/// `chat:send` arguments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatSendArgs {
    pub chat_id: Uuid,
    /// 1..4000 characters; may be left out when `attachmentIds` is given.
    #[serde(default)]
    pub content: Option<String>,
    /// At most 10 of the sender's own unattached uploads.
    #[serde(default)]
    pub attachment_ids: Option<Vec<Uuid>>,
}

/// `chat:read` arguments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatReadArgs {
    pub chat_id: Uuid,
    pub message_id: Uuid,
}

/// `chat:typing` / `chat:stopped-typing` arguments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatTypingArgs {
    pub chat_id: Uuid,
}

/// Per-socket state that only some sockets need (created on first use): the chats this
/// socket was found to take part in, so typing asks the chat module once per chat.
struct SocketLocal {
    typing_chats: Mutex<HashSet<Uuid>>,
}

/// An id argument: the id itself as a string, or the first argument when several came.
fn id_arg(v: &Value) -> Option<Uuid> {
    match v {
        Value::String(s) => Uuid::parse_str(s.trim()).ok(),
        Value::Array(items) => items.first().and_then(id_arg),
        _ => None,
    }
}

/// An object argument, unwrapping the first argument when several came.
fn object_arg<T: serde::de::DeserializeOwned>(v: Value) -> Option<T> {
    let v = match v {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    serde_json::from_value(v).ok()
}

/// Every client → server event: the room events of [`ROOM_EVENTS`], `chat:send`,
/// `chat:read`, `chat:typing` and `chat:stopped-typing`; anything else is a `bad_request`.
pub(crate) async fn on_event<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    Event(event): Event,
    TryData(arg): TryData<Value>,
    ack: AckSender<A>,
    State(gw): State<Arc<Gateway>>,
) {
    let typing = match event.as_str() {
        "chat:send" => return chat_send(s, TryData(arg), ack, State(gw)).await,
        "chat:read" => return chat_read(s, TryData(arg), ack, State(gw)).await,
        "chat:typing" => Some(EventName::ChatTyping),
        "chat:stopped-typing" => Some(EventName::ChatStoppedTyping),
        _ => None,
    };
    let arg = arg.unwrap_or(Value::Null);
    let reply = if let Some(name) = typing {
        gw.typing(&s, io, name, arg).await
    } else if let Some(&(_, kind, join)) = ROOM_EVENTS.iter().find(|(e, ..)| *e == event) {
        match s.extensions.get::<AuthUser>() {
            Some(user) => gw.room_event(&s, user, kind, join, arg).await,
            None => Ack::err("forbidden"),
        }
    } else {
        Ack::err("bad_request")
    };
    send_ack(ack, &reply);
}

async fn chat_send<A: Adapter>(
    s: SocketRef<A>,
    TryData(arg): TryData<Value>,
    ack: AckSender<A>,
    State(gw): State<Arc<Gateway>>,
) {
    let reply = match (
        s.extensions.get::<AuthUser>(),
        arg.ok().and_then(object_arg::<ChatSendArgs>),
    ) {
        (None, _) => Ack::err("forbidden"),
        (_, None) => Ack::err("bad_request"),
        (Some(user), Some(args)) => match gw
            .chats
            .send(user, args.chat_id, args.content, args.attachment_ids)
            .await
        {
            Ok(message) => Ack {
                message: Some(message),
                ..Ack::ok()
            },
            Err(e) => Ack::from_error(&e),
        },
    };
    send_ack(ack, &reply);
}

async fn chat_read<A: Adapter>(
    s: SocketRef<A>,
    TryData(arg): TryData<Value>,
    ack: AckSender<A>,
    State(gw): State<Arc<Gateway>>,
) {
    let reply = match (
        s.extensions.get::<AuthUser>(),
        arg.ok().and_then(object_arg::<ChatReadArgs>),
    ) {
        (None, _) => Ack::err("forbidden"),
        (_, None) => Ack::err("bad_request"),
        (Some(user), Some(args)) => match gw
            .chats
            .mark_read(user, args.chat_id, args.message_id)
            .await
        {
            Ok(()) => Ack::ok(),
            Err(e) => Ack::from_error(&e),
        },
    };
    send_ack(ack, &reply);
}

impl Gateway {
    /// Join or leave a room after checking the authenticated user against the contract table.
    /// Someone else's request or chat answers `not_found` (no leak); a wrong role or another
    /// user's own room answers `forbidden`.
    async fn room_event<A: Adapter>(
        &self,
        s: &SocketRef<A>,
        user: AuthUser,
        kind: RoomKind,
        join: bool,
        arg: Value,
    ) -> Ack {
        let Some(id) = id_arg(&arg) else {
            return Ack::err("bad_request");
        };
        let rooms = match kind {
            RoomKind::User if id == user.id || user.is_admin() => vec![rooms::user_room(id)],
            RoomKind::Seller if user.role == Role::Seller && id == user.id => {
                vec![rooms::seller_room(id), rooms::SELLERS.to_owned()]
            }
            RoomKind::Buyer if user.role == Role::Buyer && id == user.id => {
                vec![rooms::buyer_room(id), rooms::BUYERS.to_owned()]
            }
            RoomKind::User | RoomKind::Seller | RoomKind::Buyer => return Ack::err("forbidden"),
            RoomKind::Request => match self
                .requests
                .can_follow_request(user, id)
                .await
                .unwrap_or_else(log_false)
            {
                true => vec![rooms::request_room(id)],
                false => return Ack::err("not_found"),
            },
            RoomKind::Chat => match self
                .chats
                .can_follow_chat(user, id)
                .await
                .unwrap_or_else(log_false)
            {
                true => vec![rooms::chat_room(id)],
                false => return Ack::err("not_found"),
            },
        };
        if join {
            join_rooms(s, rooms.clone());
        } else {
            s.leave(rooms.clone());
        }
        Ack::rooms(rooms)
    }

    /// Relays typing to the chat's room, except the sender's own sockets. Participants only,
    /// at most [`TYPING_QUOTA`] per user, never stored.
    async fn typing<A: Adapter>(
        &self,
        s: &SocketRef<A>,
        io: SocketIo<A>,
        event: EventName,
        arg: Value,
    ) -> Ack {
        let Some(user) = s.extensions.get::<AuthUser>() else {
            return Ack::err("forbidden");
        };
        let Some(args) = object_arg::<ChatTypingArgs>(arg) else {
            return Ack::err("bad_request");
        };
        if self
            .state
            .limits
            .check(&TYPING_QUOTA, &user.id.to_string())
            .await
            .is_err()
        {
            return Ack::err("rate_limited");
        }
        let local = match s.extensions.get::<Arc<SocketLocal>>() {
            Some(l) => l,
            None => {
                let l = Arc::new(SocketLocal {
                    typing_chats: Mutex::new(HashSet::new()),
                });
                s.extensions.insert(l.clone());
                l
            }
        };
        let known = local
            .typing_chats
            .lock()
            .is_ok_and(|c| c.contains(&args.chat_id));
        if !known {
            if user.is_admin() {
                return Ack::err("forbidden");
            }
            match self.chats.can_follow_chat(user, args.chat_id).await {
                Ok(true) => {
                    if let Ok(mut c) = local.typing_chats.lock() {
                        c.insert(args.chat_id);
                    }
                }
                Ok(false) => return Ack::err("not_found"),
                Err(e) => return Ack::from_error(&e),
            }
        }
        let payload = ChatTyping {
            chat_id: args.chat_id,
            user_id: user.id,
        };
        let emitter = SocketEmitter::new(io);
        if let Err(e) = emitter
            .emit_to_rooms_except(
                vec![rooms::chat_room(args.chat_id)],
                rooms::user_room(user.id),
                event.as_str(),
                &payload,
            )
            .await
        {
            tracing::debug!(error = %e, "typing relay incomplete");
        }
        Ack::ok()
    }
}

fn log_false(e: ApiError) -> bool {
    tracing::warn!(error = %e, "room access check failed; refusing");
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_that_are_not_ids_are_rejected() {
        assert_eq!(id_arg(&json!("nope")), None);
        assert_eq!(id_arg(&json!({ "id": 1 })), None);
        let id = Uuid::now_v7();
        assert_eq!(id_arg(&json!([id.to_string(), 1])), Some(id));
    }
}
