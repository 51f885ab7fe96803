//! The AsyncAPI 3.0 document of the Socket.IO interface, generated from the event table of
//! the catalog (each event's name, durability, payload type and rooms), the room-event table
//! of the gateway and the utoipa schemas of the payload types, so the document cannot drift
//! from what the server does.

use std::collections::BTreeMap;

use catalog::events::{self, EventMeta, EventName};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, schema::Schema};

use crate::client_events::{ChatReadArgs, ChatSendArgs, ChatTypingArgs, ROOM_EVENTS, RoomKind};
use crate::replay::REPLAY_LIMIT;
use catalog::rooms::RoomRule;

type Schemas = Vec<(String, RefOr<Schema>)>;

fn add<T: ToSchema>(schemas: &mut Schemas) -> Value {
    T::schemas(schemas);
    let name = T::name().into_owned();
    schemas.push((name.clone(), T::schema()));
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Adds each payload schema [`EventName::payload`] hands over.
struct PayloadSchemas<'a>(&'a mut Schemas);

impl events::PayloadVisitor for PayloadSchemas<'_> {
    type Output = Value;
    fn visit<T: ToSchema>(&mut self) -> Value {
        add::<T>(self.0)
    }
}

/// The channel (room family) a rule belongs to.
fn channel_of(rule: RoomRule) -> &'static str {
    match rule {
        RoomRule::User(_) => "user-{userId}",
        RoomRule::Seller(_) => "seller-{sellerId}",
        RoomRule::Request => "request-{requestId}",
        RoomRule::Chat => "chat-{chatId}",
        RoomRule::Sellers => "sellers",
        RoomRule::Buyers => "buyers",
        RoomRule::Admin => "admin",
        RoomRule::Everyone => "/",
    }
}

fn room_kind_arg(kind: RoomKind) -> (&'static str, &'static str) {
    match kind {
        RoomKind::User => ("userId", "own id only (admins: any)"),
        RoomKind::Seller => (
            "sellerId",
            "`seller-{id}` + `sellers`; a seller for its own id",
        ),
        RoomKind::Buyer => ("buyerId", "`buyer-{id}` + `buyers`; a buyer for its own id"),
        RoomKind::Request => (
            "requestId",
            "`request-{id}`; its buyer, a seller with an offer on it, admins (else `not_found`)",
        ),
        RoomKind::Chat => (
            "chatId",
            "`chat-{id}`; its two participants, admins (else `not_found`)",
        ),
    }
}

/// The channel of the namespace `/`.
const ROOT: &str = "root";

/// The ack shapes of [`ack_schemas`].
const ACK_SHAPES: [&str; 4] = ["OkAck", "RoomAck", "ChatSendAck", "AckError"];

/// The ack messages (success, error) of a client event.
fn ack_keys(success: &str) -> [String; 2] {
    [format!("ack.{success}"), "ack.AckError".to_owned()]
}

/// The ack of a client event: its success shape or [`AckError`](ack_schemas), told apart by
/// `ok`.
fn ack_of(success: &str) -> Value {
    json!({ "oneOf": [
        { "$ref": format!("#/components/schemas/{success}") },
        { "$ref": "#/components/schemas/AckError" },
    ] })
}

/// The ack shapes, exactly as `client_events::Ack` serializes them in each case (a union
/// discriminated by `ok`, which one struct with optional fields cannot say).
fn ack_schemas() -> serde_json::Map<String, Value> {
    let errors: Vec<&str> = crate::client_events::ACK_ERRORS.to_vec();
    let mut m = serde_json::Map::new();
    m.insert("AckError".into(), json!({
        "type": "object",
        "description": "A refused or failed client event. Someone else's request or chat is `not_found`.",
        "required": ["ok", "error"],
        "properties": {
            "ok": { "const": false },
            "error": { "type": "string", "enum": errors },
            "code": { "type": "string", "description": "The stable problem code behind `error` (e.g. `validation_failed`), when there is one." },
        },
    }));
    m.insert(
        "OkAck".into(),
        json!({
            "type": "object", "description": "Done.",
            "required": ["ok"], "properties": { "ok": { "const": true } },
        }),
    );
    m.insert("RoomAck".into(), json!({
        "type": "object", "description": "Joined or left; the rooms concerned.",
        "required": ["ok", "rooms"],
        "properties": { "ok": { "const": true }, "rooms": { "type": "array", "items": { "type": "string" } } },
    }));
    m.insert("ChatSendAck".into(), json!({
        "type": "object", "description": "The message was stored and sent.",
        "required": ["ok", "message"],
        "properties": { "ok": { "const": true }, "message": { "$ref": "#/components/schemas/Message" } },
    }));
    m
}

/// The whole document.
pub fn document() -> Value {
    let mut schemas: Schemas = Vec::new();
    let meta_ref = add::<EventMeta>(&mut schemas);
    let mut messages = BTreeMap::<String, Value>::new();
    let mut server_keys: Vec<String> = Vec::new();
    let mut channel_keys: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();

    for name in EventName::ALL {
        let payload = name.payload(&mut PayloadSchemas(&mut schemas));
        let durable = name.is_durable();
        let rules = name.rooms();
        let rooms: Vec<String> = match name.live_rooms() {
            Some(live) => vec![live.to_owned()],
            None => rules.iter().map(|r| r.pattern()).collect(),
        };
        let key = format!("server.{}", name.as_str().replace(':', "."));
        let args = if durable {
            json!({ "type": "array", "minItems": 2, "maxItems": 2, "items": [payload, meta_ref],
                    "description": "Socket.IO arguments: (payload, { id, at })" })
        } else {
            payload
        };
        messages.insert(
            key.clone(),
            json!({
                "name": name.as_str(),
                "title": name.as_str(),
                "summary": format!("Rooms: {}. {}", rooms.join(", "),
                    if durable { "Durable: logged, replayed on reconnect with `auth.lastEventId`, listed by `GET /api/events`." } else { "Live only: never stored or replayed." }),
                "payload": args,
                "x-rooms": rooms,
                "x-durable": durable,
            }),
        );
        server_keys.push(key.clone());
        for rule in rules {
            let keys = channel_keys.entry(channel_of(*rule)).or_default();
            if !keys.contains(&key) {
                keys.push(key.clone());
            }
        }
    }

    // (message key, ack message keys)
    let mut client_keys: Vec<(String, [String; 2])> = Vec::new();
    let id_schema = json!({ "type": "string", "format": "uuid" });
    for &(event, kind, join) in ROOM_EVENTS {
        let (arg, who) = room_kind_arg(kind);
        let key = format!("client.{event}");
        messages.insert(
            key.clone(),
            json!({
                "name": event, "title": event,
                "summary": format!("{} {who}. Argument: `{arg}`.", if join { "Join" } else { "Leave" }),
                "payload": id_schema,
                "x-argument": arg,
                "x-ack": ack_of("RoomAck"),
            }),
        );
        client_keys.push((key, ack_keys("RoomAck")));
    }
    // (event, argument, ack on success, ack optional?, summary)
    let chat_events = [
        (
            "chat:send",
            add::<ChatSendArgs>(&mut schemas),
            "ChatSendAck",
            false,
            "As `POST /api/chats/{id}/messages`; ack `{ ok, message }`. At most 20 messages per user per 10 s, counted together with REST: beyond, ack `{ ok: false, error: \"rate_limited\" }` and nothing is stored.",
        ),
        (
            "chat:read",
            add::<ChatReadArgs>(&mut schemas),
            "OkAck",
            false,
            "As `POST /api/chats/{id}/read`.",
        ),
        (
            "chat:typing",
            add::<ChatTypingArgs>(&mut schemas),
            "OkAck",
            true,
            "Participants; relayed to `chat-{chatId}` except the sender's own sockets; never stored. At most 5 relays per second per user over all of that user's sockets: beyond, dropped (ack `rate_limited`).",
        ),
        (
            "chat:stopped-typing",
            add::<ChatTypingArgs>(&mut schemas),
            "OkAck",
            true,
            "As `chat:typing`.",
        ),
    ];
    for (event, payload, ack, ack_optional, summary) in chat_events {
        let key = format!("client.{event}").replace(':', ".");
        messages.insert(
            key.clone(),
            json!({ "name": event, "title": event, "summary": summary, "payload": payload,
                    "x-argument": "args", "x-ack": ack_of(ack), "x-ack-optional": ack_optional }),
        );
        client_keys.push((key, ack_keys(ack)));
    }

    for name in ACK_SHAPES {
        let key = format!("ack.{name}");
        messages.insert(
            key.clone(),
            json!({ "name": key, "title": format!("ack {name}"),
                    "summary": "An ack: the answer a client event's callback receives.",
                    "payload": { "$ref": format!("#/components/schemas/{name}") } }),
        );
    }

    // Channels: the namespace (every message), and each room family (what it receives).
    let component = |key: &str| json!({ "$ref": format!("#/components/messages/{key}") });
    let root_messages: serde_json::Map<String, Value> =
        messages.keys().map(|k| (k.clone(), component(k))).collect();
    let mut channels = serde_json::Map::new();
    channels.insert(
        ROOT.into(),
        json!({
            "address": "/",
            "title": "Namespace /",
            "description": "The Socket.IO namespace `/` (path `/socket.io`, protocol v5, WebSocket and HTTP long-polling). Every client → server event answers through its ack callback (the operation's `reply`).",
            "messages": root_messages,
        }),
    );
    let mut operations = serde_json::Map::new();
    let in_channel = |channel: &str, key: &str| json!({ "$ref": format!("#/channels/{channel}/messages/{key}") });
    for key in &server_keys {
        operations.insert(
            key.clone(),
            json!({
                "action": "send",
                "title": messages[key]["name"],
                "summary": messages[key]["summary"],
                "channel": { "$ref": format!("#/channels/{ROOT}") },
                "messages": [in_channel(ROOT, key)],
            }),
        );
    }
    for (key, acks) in &client_keys {
        operations.insert(
            key.clone(),
            json!({
                "action": "receive",
                "title": messages[key]["name"],
                "summary": messages[key]["summary"],
                "channel": { "$ref": format!("#/channels/{ROOT}") },
                "messages": [in_channel(ROOT, key)],
                "reply": {
                    "channel": { "$ref": format!("#/channels/{ROOT}") },
                    "messages": acks.iter().map(|a| in_channel(ROOT, a)).collect::<Vec<_>>(),
                },
            }),
        );
    }
    for (channel, keys) in channel_keys {
        if channel == "/" {
            continue;
        }
        let id = format!(
            "room-{}",
            channel.split(['-', '{']).next().unwrap_or(channel)
        );
        let mut c = json!({
            "address": channel,
            "title": format!("Room {channel}"),
            "description": format!("Room `{channel}`: the events it receives."),
            "messages": keys.iter().map(|k| (k.clone(), component(k))).collect::<serde_json::Map<_, _>>(),
        });
        if let Some(param) = channel
            .split_once('{')
            .and_then(|(_, p)| p.strip_suffix('}'))
        {
            c["parameters"] = json!({ param: { "description": format!("`{param}`: a UUID") } });
        }
        operations.insert(
            format!("{id}.receives"),
            json!({
                "action": "send",
                "summary": format!("What the server emits to `{channel}`."),
                "channel": { "$ref": format!("#/channels/{id}") },
                "messages": keys.iter().map(|k| in_channel(&id, k)).collect::<Vec<_>>(),
            }),
        );
        channels.insert(id, c);
    }

    let mut schemas: serde_json::Map<String, Value> = schemas
        .into_iter()
        .map(|(name, s)| (name, serde_json::to_value(s).unwrap_or(Value::Null)))
        .collect();
    // Everything here but the client's arguments is sent by the server, which writes every
    // `Option` field (as `null` when empty).
    for (name, schema) in schemas.iter_mut() {
        if !name.ends_with("Args") {
            kernel::schema::require_nullables(schema);
        }
    }
    schemas.extend(ack_schemas());

    json!({
        "asyncapi": "3.0.0",
        "id": "urn:marketplace:socket.io",
        "info": {
            "title": "Marketplace live events",
            "version": env!("CARGO_PKG_VERSION"),
            "contact": { "name": "Marketplace backend", "url": "https://docs.marketplace.local" },
            "license": { "name": "MIT", "url": "https://opensource.org/licenses/MIT" },
            "tags": [{ "name": "socket.io", "description": "Socket.IO v5 events of the marketplace" }],
            "description": format!(
                "Socket.IO v5 on the API's host and port, path `/socket.io`, namespace `/`.\n\n\
                 Connecting: the JWT is read, first found wins, from `auth.token` (with or without `Bearer `), \
                 the `Authorization: Bearer` header, or the cookie `token` (same origin or a `CORS_ORIGINS` origin only). \
                 Missing, invalid or expired: `connect_error` with a message containing `unauthorized`.\n\n\
                 On connect a socket joins `user-{{id}}`; sellers also `seller-{{id}}` and `sellers`; buyers also \
                 `buyer-{{id}}` and `buyers`; admins also `admin`, before the client sees `connect`: every durable \
                 event committed after that reaches it, on whichever node it is connected.\n\n\
                 Durable events carry a second argument `{{ id, at }}`. Reconnecting with `auth.lastEventId` first \
                 replays, in order, the durable events after it whose rooms the user may be in now (at most {REPLAY_LIMIT}; \
                 then `events:replay-truncated` `{{ lastEventId }}`: continue with `GET /api/events?after=`), then live ones, \
                 with no gap and no duplicate. A client that has handled no event yet connects with the id of \
                 `GET /api/events/head` (`{{ id }}`, the newest in the log) as `lastEventId`, so nothing committed after \
                 that answer is missed. A socket in several rooms of one emit receives it once.\n\n\
                 Acks: `{{ ok: true, ... }}` or `{{ ok: false, error }}` with `error` one of `forbidden`, `not_found`, \
                 `bad_request`, `rate_limited` (`chat:send`, typing), `internal`; someone else's request or chat is `not_found`.\n\n\
                 A socket lives no longer than its token: when the token expires the server disconnects it (the client \
                 sees `disconnect` with `io server disconnect`) and it reconnects with a fresh token and `lastEventId`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "api": { "host": "localhost:3000", "pathname": "/socket.io", "protocol": "ws",
                     "description": "The API server: the same host and port as REST (`ws`/`wss`, or HTTP long-polling)." }
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_and_room_of_the_table_is_documented() {
        let doc = document();
        for name in EventName::ALL {
            let key = format!("server.{}", name.as_str().replace(':', "."));
            let message = &doc["components"]["messages"][&key];
            assert_eq!(message["name"], name.as_str());
            assert_eq!(message["x-durable"], name.is_durable());
            let rooms = message["x-rooms"].as_array().unwrap().len();
            assert_eq!(rooms, name.rooms().len().max(1), "{name}");
        }
        assert!(doc["components"]["schemas"]["EventMeta"].is_object());
        let room = &doc["channels"]["room-request"];
        assert_eq!(room["address"], "request-{requestId}");
        assert!(room["messages"]["server.request.status-updated"].is_object());
        assert!(
            room["messages"]["server.dispute.opened"].is_null(),
            "disputes are private to their parties"
        );
        assert_eq!(
            doc["operations"]["client.join-request-room"]["reply"]["messages"][1]["$ref"],
            "#/channels/root/messages/ack.AckError"
        );
    }
}
