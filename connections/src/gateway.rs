//! The Socket.IO side: handshake auth (connect middleware), rooms on connect, the
//! client → server events with their acks, typing relay, and the durable-event delivery the
//! bus subscriber drives.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::Role;
use catalog::events::{ChatTyping, EventMeta, EventName};
use kernel::ports::{ChatPort, RequestAccess};
use kernel::{ApiError, AppState, AuthUser, Quota, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::emitter::SocketEmitter;
use crate::presence::Presence;
use catalog::rooms::{self, own_rooms};

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

/// `chat:typing` / `chat:stopped-typing` relays: at most 5 per second per user, across all of
/// that user's sockets (and nodes, when the limits live in Redis). Beyond it a relay is
/// dropped: nothing reaches the chat and the ack says `rate_limited`.
pub const TYPING_QUOTA: Quota = Quota::new("typing", 5, Duration::from_secs(1));

/// Why a handshake was refused. The client's `connect_error` carries this text.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unauthorized: a valid token is required")]
    Unauthorized,
    #[error("unauthorized: origin not allowed for cookie authentication")]
    Origin,
    #[error("unavailable: try again later")]
    Unavailable,
}

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

/// Ends the socket when its token expires; aborted when the socket leaves first.
#[derive(Clone)]
struct ExpiryTimer(tokio::task::AbortHandle);

/// Disconnects `s` (the client sees `disconnect` with `io server disconnect`) at `until`
/// (Unix seconds), the moment its token stops being accepted.
fn schedule_expiry<A: Adapter>(s: &SocketRef<A>, until: i64) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left_ms = until.saturating_mul(1000).saturating_sub(now_ms).max(0);
    let delay = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
    let socket = s.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(e) = socket.disconnect() {
            tracing::debug!(error = %e, "expired socket already gone");
        }
    });
    s.extensions.insert(ExpiryTimer(task.abort_handle()));
}

/// Marks a socket counted by presence, so its disconnect is counted once.
#[derive(Clone)]
pub(crate) struct Counted;

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

/// The handshake token: `auth.token`, then `Authorization: Bearer`, then the `token` cookie.
/// Returns the token and whether it came from the cookie.
fn handshake_token(auth: &Value, headers: &http::HeaderMap) -> Option<(String, bool)> {
    if let Some(t) = auth
        .get("token")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some((t.to_owned(), false));
    }
    if let Some(h) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = h
            .trim()
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
    {
        return Some((t.to_owned(), false));
    }
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k.trim() == "token"
                && !v.trim().is_empty()
            {
                return Some((v.trim().trim_matches('"').to_owned(), true));
            }
        }
    }
    None
}

/// `auth.lastEventId` as a non-negative integer (a number or a numeric string).
fn last_event_id(auth: &Value) -> Option<i64> {
    let v = auth.get("lastEventId")?;
    let id = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (id >= 0).then_some(id)
}

/// Connect middleware: authenticates the handshake and registers the socket's handlers.
pub(crate) async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    State(gw): State<Arc<Gateway>>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refusal> {
    let auth = auth.unwrap_or(Value::Null);
    let parts = s.req_parts();
    let (token, from_cookie) =
        handshake_token(&auth, &parts.headers).ok_or(Refusal::Unauthorized)?;
    if from_cookie
        && !crate::origin::cookie_origin_allowed(parts, &gw.cors_origins, &gw.state.proxies)
    {
        return Err(Refusal::Origin);
    }
    let (user, until) = match gw.state.auth.authenticate_until(&token).await {
        Ok(u) => u,
        Err(ApiError::Unauthorized) => return Err(Refusal::Unauthorized),
        Err(e) => {
            tracing::warn!(error = %e, "socket handshake could not be checked");
            return Err(Refusal::Unavailable);
        }
    };
    // Without a replay the socket joins its rooms here, before socketioxide sends the connect
    // packet: every event committed after the client saw `connect` then reaches it. (The
    // connect handler runs only after that packet is out.) With `lastEventId` the connect
    // handler replays and then joins, under the lock live delivery takes.
    if last_event_id(&auth).is_none() {
        if let Err(e) = gw.fix_live_start().await {
            tracing::warn!(error = %e, "socket handshake could not fix where live delivery starts");
            return Err(Refusal::Unavailable);
        }
        s.join(own_rooms(user.id, user.role));
    }
    s.extensions.insert(user);
    register_handlers(&s);
    schedule_expiry(&s, until);
    Ok(())
}

fn register_handlers<A: Adapter>(s: &SocketRef<A>) {
    // One handler for every client event rather than one `on` per event: socketioxide keeps
    // a handler table per socket, and 13 entries cost ~1 KB on each of them.
    s.on_fallback(on_event::<A>);
    s.on_disconnect(
        |s: SocketRef<A>, io: SocketIo<A>, State(gw): State<Arc<Gateway>>| async move {
            if let Some(ExpiryTimer(timer)) = s.extensions.get::<ExpiryTimer>() {
                timer.abort();
            }
            metrics::gauge!(kernel::monitor::SOCKETS_CONNECTED).decrement(1.0);
            gw.presence
                .disconnected(&gw, &SocketEmitter::new(io), &s)
                .await;
        },
    );
}

/// Every client → server event: the room events of [`ROOM_EVENTS`], `chat:send`,
/// `chat:read`, `chat:typing` and `chat:stopped-typing`; anything else is a `bad_request`.
async fn on_event<A: Adapter>(
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

/// Connect handler: with `auth.lastEventId`, replays and then joins the socket's own rooms
/// (without it [`authenticate`] joined them); counts the socket for presence.
pub(crate) async fn on_connect<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(gw): State<Arc<Gateway>>,
    TryData(auth): TryData<Value>,
) {
    // Called once per connected socket, as its disconnect handler is (which decrements).
    metrics::gauge!(kernel::monitor::SOCKETS_CONNECTED).increment(1.0);
    let Some(user) = s.extensions.get::<AuthUser>() else {
        let _ = s.disconnect();
        return;
    };
    let emitter = SocketEmitter::new(io);
    // Without `lastEventId` the middleware has joined the rooms already.
    if let Some(after) = auth.ok().as_ref().and_then(last_event_id) {
        let rooms = own_rooms(user.id, user.role);
        gw.replay_then_join(&emitter, &s, user, after, rooms).await;
    }
    gw.presence.connected(&gw, &emitter, &s, user).await;
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

/// Joins rooms unless the socket is already gone (a room entry of a disconnected socket
/// would never be cleaned up).
pub(crate) fn join_rooms<A: Adapter>(s: &SocketRef<A>, rooms: Vec<String>) {
    if s.connected() {
        s.join(rooms);
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
    fn the_token_comes_from_auth_then_header_then_cookie() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=b; token=fromcookie".parse().unwrap(),
        );
        assert_eq!(
            handshake_token(&json!({}), &h),
            Some(("fromcookie".into(), true))
        );
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer fromheader".parse().unwrap(),
        );
        assert_eq!(
            handshake_token(&json!({}), &h),
            Some(("fromheader".into(), false))
        );
        assert_eq!(
            handshake_token(&json!({ "token": "Bearer x" }), &h),
            Some(("Bearer x".into(), false))
        );
        assert_eq!(
            handshake_token(&json!({ "token": 5 }), &http::HeaderMap::new()),
            None
        );
    }

    #[test]
    fn arguments_that_are_not_ids_are_rejected() {
        assert_eq!(id_arg(&json!("nope")), None);
        assert_eq!(id_arg(&json!({ "id": 1 })), None);
        let id = Uuid::now_v7();
        assert_eq!(id_arg(&json!([id.to_string(), 1])), Some(id));
        assert_eq!(last_event_id(&json!({ "lastEventId": "12" })), Some(12));
        assert_eq!(last_event_id(&json!({ "lastEventId": -1 })), None);
    }
}
