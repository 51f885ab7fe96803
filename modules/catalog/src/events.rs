//! The event catalog: every server→client event of the contract, declared once.
//!
//! [`catalog_events!`] below is the one table: each row gives an event's variant, its wire
//! name, whether it is `durable` (logged, carries `{ id, at }`, replayed) or `live` (typing,
//! presence, the replay notice), its payload type, and its rooms (for a live event, a
//! description of where the gateway sends it). [`EventName`] with its serde names,
//! [`EventName::ALL`], `as_str`/`parse`, `is_durable`, the room rules that emits, replay and
//! `GET /api/events` follow ([`EventName::rooms`]), the AsyncAPI document and so the
//! TypeScript types are all generated from it. Adding an event is one row here plus its
//! payload struct and the `audience!` of that struct.
//!
//! A payload is a struct that serializes to exactly what clients receive. Fields marked
//! `#[serde(skip)]` are routing facts (who the buyer is, who acted) that are not part of the
//! payload; [`HasAudience::audience`] lifts them into an [`Audience`] that is stored beside
//! the payload in the event log. The rooms of a row turn an audience into rooms
//! ([`crate::rooms`]); which notifications it creates is decided in `notifications`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::contract::{
    Dispute, Evidence, Message, Notification, OfferMessage, Payment, PaymentStatus, Payout,
    PurchaseRequest, RequestStatus, Resolution, Review, SellerOffer,
};
// Every rule and field by its short name, for the table's rows.
use crate::rooms::AudienceField::*;
use crate::rooms::RoomRule::{self, *};

/// Generates [`EventName`] and its lookups, and the [`CatalogEvent`] impls of the durable
/// payloads, from the rows of one table (see the module's documentation).
macro_rules! catalog_events {
    (@durable durable) => { true };
    (@durable live) => { false };
    (@rules durable [$($rule:expr),+ $(,)?]) => { &[$($rule),+] };
    (@rules live [$where:literal]) => { &[] };
    (@live durable [$($rule:expr),+ $(,)?]) => { None };
    (@live live [$where:literal]) => { Some($where) };
    (@event durable $variant:ident $payload:ty) => {
        impl CatalogEvent for $payload {
            const NAME: EventName = EventName::$variant;
        }
    };
    (@event live $variant:ident $payload:ty) => {};
    // `$wire` is a `tt`, not a `literal`: derives (utoipa's) must see the bare string.
    ($($variant:ident => $wire:tt, $kind:ident, $payload:ty, rooms [$($rooms:tt)*];)+) => {
        /// Every event name of the contract, durable or not.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum EventName {
            $(
                #[serde(rename = $wire)]
                $variant,
            )+
        }

        /// How many rows the table has.
        const EVENT_COUNT: usize = [$(EventName::$variant),+].len();

        impl EventName {
            /// Every name, in catalog order.
            pub const ALL: [EventName; EVENT_COUNT] = [$(Self::$variant),+];

            /// The wire name, e.g. `offer:accepted`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// Durable events go through the event log and carry `{ id, at }`; typing,
            /// presence and the replay notice are live only.
            pub fn is_durable(self) -> bool {
                match self {
                    $(Self::$variant => catalog_events!(@durable $kind),)+
                }
            }

            /// The rooms a durable event is emitted to (their union, one copy per socket),
            /// and that decide who may replay or list it; empty for live-only events, which
            /// the gateway routes itself.
            pub fn rooms(self) -> &'static [RoomRule] {
                match self {
                    $(Self::$variant => {
                        const RULES: &[RoomRule] = catalog_events!(@rules $kind [$($rooms)*]);
                        RULES
                    })+
                }
            }

            /// Where the gateway sends a live-only event, as the documents describe it.
            pub fn live_rooms(self) -> Option<&'static str> {
                match self {
                    $(Self::$variant => catalog_events!(@live $kind [$($rooms)*]),)+
                }
            }

            /// Hands this event's payload type to `visitor` (e.g. to document its schema).
            pub fn payload<V: PayloadVisitor>(self, visitor: &mut V) -> V::Output {
                match self {
                    $(Self::$variant => visitor.visit::<$payload>(),)+
                }
            }
        }

        $(catalog_events!(@event $kind $variant $payload);)+
    };
}

// The catalog. Order is the documents' order.
catalog_events! {
    NotificationReceived => "notification:received", durable, NotificationReceived, rooms [User(RecipientId)];
    NotificationRead => "notification:read", durable, NotificationRead, rooms [User(RecipientId)];
    RequestCreated => "request:created", durable, RequestCreated, rooms [Sellers];
    RequestOfferReceived => "request:offer-received", durable, RequestOfferReceived, rooms [User(BuyerId), User(SellerId)];
    RequestStatusUpdated => "request:status-updated", durable, RequestStatusUpdated, rooms [Request, User(BuyerId)];
    OfferNegotiationUpdate => "offer:negotiation-update", durable, OfferNegotiationUpdate, rooms [User(BuyerId), User(SellerId)];
    OfferAccepted => "offer:accepted", durable, OfferAccepted, rooms [Seller(SellerId), User(BuyerId)];
    PaymentCreated => "payment:created", durable, PaymentCreated, rooms [User(BuyerId)];
    PaymentStatusUpdated => "payment:status-updated", durable, PaymentStatusUpdated, rooms [User(BuyerId), User(SellerId)];
    PaymentCompleted => "payment:completed", durable, PaymentCompleted, rooms [User(BuyerId), User(SellerId)];
    PayoutCreated => "payout:created", durable, PayoutCreated, rooms [User(RecipientId)];
    PayoutCompleted => "payout:completed", durable, PayoutCompleted, rooms [User(RecipientId)];
    PayoutFailed => "payout:failed", durable, PayoutFailed, rooms [User(RecipientId), Admin];
    ChatNewMessage => "chat:new-message", durable, ChatNewMessage, rooms [Chat, User(OtherParticipantId)];
    ChatMessageRead => "chat:message-read", durable, ChatMessageRead, rooms [Chat];
    ChatReactionAdded => "chat:reaction-added", durable, ChatReactionAdded, rooms [Chat];
    ChatReactionRemoved => "chat:reaction-removed", durable, ChatReactionRemoved, rooms [Chat];
    ChatTyping => "chat:typing", live, ChatTyping, rooms ["chat-{chatId} (not the sender's own sockets)"];
    ChatStoppedTyping => "chat:stopped-typing", live, ChatTyping, rooms ["chat-{chatId} (not the sender's own sockets)"];
    ReviewPublished => "review:published", durable, ReviewPublished, rooms [User(SubjectId), User(AuthorId)];
    DisputeOpened => "dispute:opened", durable, DisputeOpened, rooms [User(BuyerId), User(SellerId), Admin];
    DisputeEvidenceAdded => "dispute:evidence-added", durable, DisputeEvidenceAdded, rooms [User(BuyerId), User(SellerId), Admin];
    DisputeResolved => "dispute:resolved", durable, DisputeResolved, rooms [User(BuyerId), User(SellerId), Admin];
    UserOnline => "user:online", live, UserPresence, rooms ["chat-{chatId} of each of the user's chats"];
    UserOffline => "user:offline", live, UserPresence, rooms ["chat-{chatId} of each of the user's chats"];
    SystemMaintenance => "system:maintenance", durable, SystemMaintenance, rooms [Everyone];
    SystemAnnouncement => "system:announcement", durable, SystemAnnouncement, rooms [Everyone];
    EventsReplayTruncated => "events:replay-truncated", live, ReplayTruncated, rooms ["the reconnecting socket only"];
}

impl EventName {
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == name)
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives an event's payload type from [`EventName::payload`].
pub trait PayloadVisitor {
    type Output;
    fn visit<T: ToSchema>(&mut self) -> Self::Output;
}

/// An event of the catalog that goes through the durable log: implemented by the table for
/// the payload of every `durable` row.
pub trait CatalogEvent:
    HasAudience + Serialize + DeserializeOwned + ToSchema + Send + Sync + 'static
{
    const NAME: EventName;
}

/// The routing facts of a durable payload (written beside its struct with `audience!`).
pub trait HasAudience {
    fn audience(&self) -> Audience;
}

macro_rules! audience {
    ($ty:ty, |$s:ident| $audience:expr) => {
        impl HasAudience for $ty {
            fn audience(&$s) -> Audience {
                $audience
            }
        }
    };
}

/// Who an event concerns, stored with it in the log. The rooms of the event's row turn
/// these into rooms; `notifications` into recipients. `actor_id` is who caused it (never
/// notified about their own action).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub buyer_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seller_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recipient_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub other_participant_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chat_id: Option<Uuid>,
    /// Who a review is about.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subject_id: Option<Uuid>,
    /// Who wrote a review.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub author_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actor_id: Option<Uuid>,
}

/// `notification:received` → `user-{recipientId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(transparent)]
pub struct NotificationReceived(pub Notification);
audience!(NotificationReceived, |self| Audience {
    recipient_id: Some(self.0.recipient_id),
    ..Default::default()
});

/// `notification:read` → `user-{recipientId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRead {
    pub id: Uuid,
    pub read_at: DateTime<Utc>,
    #[serde(skip)]
    pub recipient_id: Uuid,
}
audience!(NotificationRead, |self| {
    Audience {
        recipient_id: Some(self.recipient_id),
        actor_id: Some(self.recipient_id),
        ..Default::default()
    }
});

/// `request:created` → `sellers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(transparent)]
pub struct RequestCreated(pub PurchaseRequest);
audience!(RequestCreated, |self| Audience {
    buyer_id: Some(self.0.buyer_id),
    request_id: Some(self.0.id),
    actor_id: Some(self.0.buyer_id),
    ..Default::default()
});

/// `request:offer-received` → `user-{buyerId}`, `user-{sellerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestOfferReceived {
    pub request_id: Uuid,
    pub offer: SellerOffer,
    #[serde(skip)]
    pub buyer_id: Uuid,
}
audience!(RequestOfferReceived, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.offer.seller_id),
    request_id: Some(self.request_id),
    actor_id: Some(self.offer.seller_id),
    ..Default::default()
});

/// `request:status-updated` → `request-{requestId}`, `user-{buyerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatusUpdated {
    pub request_id: Uuid,
    pub status: RequestStatus,
    #[serde(skip)]
    pub buyer_id: Uuid,
    /// Who changed it; `None` for the system (a payment callback, a resolution).
    #[serde(skip)]
    pub actor_id: Option<Uuid>,
}
audience!(RequestStatusUpdated, |self| Audience {
    buyer_id: Some(self.buyer_id),
    request_id: Some(self.request_id),
    actor_id: self.actor_id,
    ..Default::default()
});

/// `offer:negotiation-update` → `user-{buyerId}`, `user-{sellerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferNegotiationUpdate {
    pub offer_id: Uuid,
    pub request_id: Uuid,
    pub message: OfferMessage,
    #[serde(skip)]
    pub buyer_id: Uuid,
    #[serde(skip)]
    pub seller_id: Uuid,
}
audience!(OfferNegotiationUpdate, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.seller_id),
    request_id: Some(self.request_id),
    actor_id: Some(self.message.author_id),
    ..Default::default()
});

/// `offer:accepted` → `seller-{sellerId}`, `user-{buyerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferAccepted {
    pub offer_id: Uuid,
    pub request_id: Uuid,
    #[serde(skip)]
    pub seller_id: Uuid,
    #[serde(skip)]
    pub buyer_id: Uuid,
}
audience!(OfferAccepted, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.seller_id),
    request_id: Some(self.request_id),
    actor_id: Some(self.buyer_id),
    ..Default::default()
});

/// `payment:created` → `user-{buyerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(transparent)]
pub struct PaymentCreated(pub Payment);
audience!(PaymentCreated, |self| Audience {
    buyer_id: Some(self.0.buyer_id),
    seller_id: Some(self.0.seller_id),
    request_id: Some(self.0.request_id),
    actor_id: Some(self.0.buyer_id),
    ..Default::default()
});

/// `payment:status-updated` → `user-{buyerId}`, `user-{sellerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusUpdated {
    pub payment_id: Uuid,
    pub request_id: Uuid,
    pub status: PaymentStatus,
    pub provider_payment_id: Option<String>,
    #[serde(skip)]
    pub buyer_id: Uuid,
    /// The accepted seller's id: the payment is theirs to follow too.
    #[serde(skip)]
    pub seller_id: Uuid,
}
audience!(PaymentStatusUpdated, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.seller_id),
    request_id: Some(self.request_id),
    ..Default::default()
});

/// `payment:completed` → `user-{buyerId}`, `user-{sellerId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCompleted {
    pub payment_id: Uuid,
    pub request_id: Uuid,
    #[serde(skip)]
    pub buyer_id: Uuid,
    #[serde(skip)]
    pub seller_id: Uuid,
}
audience!(PaymentCompleted, |self| {
    Audience {
        buyer_id: Some(self.buyer_id),
        seller_id: Some(self.seller_id),
        request_id: Some(self.request_id),
        ..Default::default()
    }
});

/// `payout:created` → `user-{recipientId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(transparent)]
pub struct PayoutCreated(pub Payout);
audience!(PayoutCreated, |self| Audience {
    recipient_id: Some(self.0.recipient_id),
    request_id: Some(self.0.request_id),
    ..Default::default()
});

/// `payout:completed` → `user-{recipientId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PayoutCompleted {
    pub payout_id: Uuid,
    pub tx_hash: String,
    #[serde(skip)]
    pub recipient_id: Uuid,
    #[serde(skip)]
    pub request_id: Uuid,
}
audience!(PayoutCompleted, |self| {
    Audience {
        recipient_id: Some(self.recipient_id),
        request_id: Some(self.request_id),
        ..Default::default()
    }
});

/// `payout:failed` → `user-{recipientId}`, `admin`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PayoutFailed {
    pub payout_id: Uuid,
    pub reason: String,
    #[serde(skip)]
    pub recipient_id: Uuid,
    #[serde(skip)]
    pub request_id: Uuid,
}
audience!(PayoutFailed, |self| Audience {
    recipient_id: Some(self.recipient_id),
    request_id: Some(self.request_id),
    ..Default::default()
});

/// `chat:new-message` → `chat-{chatId}`, `user-{otherParticipantId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatNewMessage {
    #[serde(flatten)]
    pub message: Message,
    #[serde(skip)]
    pub other_participant_id: Uuid,
    #[serde(skip)]
    pub request_id: Uuid,
}
audience!(ChatNewMessage, |self| Audience {
    other_participant_id: Some(self.other_participant_id),
    chat_id: Some(self.message.chat_id),
    request_id: Some(self.request_id),
    actor_id: Some(self.message.sender_id),
    ..Default::default()
});

/// `chat:message-read` → `chat-{chatId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessageRead {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub user_id: Uuid,
    pub read_at: DateTime<Utc>,
}
audience!(ChatMessageRead, |self| {
    Audience {
        chat_id: Some(self.chat_id),
        actor_id: Some(self.user_id),
        ..Default::default()
    }
});

/// `chat:reaction-added` → `chat-{chatId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatReactionAdded {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    /// The emoji in its compared form (NFC, without U+FE0F).
    pub emoji: String,
    /// Who reacted.
    pub user_id: Uuid,
    /// How many users now react to the message with this emoji.
    pub count: u64,
}
audience!(ChatReactionAdded, |self| Audience {
    chat_id: Some(self.chat_id),
    actor_id: Some(self.user_id),
    ..Default::default()
});

/// `chat:reaction-removed` → `chat-{chatId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatReactionRemoved {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    /// The emoji in its compared form (NFC, without U+FE0F).
    pub emoji: String,
    /// Who took their reaction back.
    pub user_id: Uuid,
    /// How many users still react to the message with this emoji (0: it is gone).
    pub count: u64,
}
audience!(ChatReactionRemoved, |self| Audience {
    chat_id: Some(self.chat_id),
    actor_id: Some(self.user_id),
    ..Default::default()
});

/// `review:published` → `user-{subjectId}`, `user-{authorId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(transparent)]
pub struct ReviewPublished(pub Review);
audience!(ReviewPublished, |self| Audience {
    subject_id: Some(self.0.subject_id),
    author_id: Some(self.0.author_id),
    request_id: Some(self.0.request_id),
    actor_id: Some(self.0.author_id),
    ..Default::default()
});

/// `dispute:opened` → `user-{buyerId}`, `user-{sellerId}`, `admin`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DisputeOpened {
    #[serde(flatten)]
    pub dispute: Dispute,
    #[serde(skip)]
    pub buyer_id: Uuid,
    #[serde(skip)]
    pub seller_id: Uuid,
}
audience!(DisputeOpened, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.seller_id),
    request_id: Some(self.dispute.request_id),
    actor_id: Some(self.dispute.opened_by),
    ..Default::default()
});

/// `dispute:evidence-added` → `user-{buyerId}`, `user-{sellerId}`, `admin`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DisputeEvidenceAdded {
    pub dispute_id: Uuid,
    pub evidence: Evidence,
    #[serde(skip)]
    pub request_id: Uuid,
    #[serde(skip)]
    pub buyer_id: Uuid,
    #[serde(skip)]
    pub seller_id: Uuid,
}
audience!(DisputeEvidenceAdded, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.seller_id),
    request_id: Some(self.request_id),
    actor_id: Some(self.evidence.author_id),
    ..Default::default()
});

/// `dispute:resolved` → `user-{buyerId}`, `user-{sellerId}`, `admin`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DisputeResolved {
    pub dispute_id: Uuid,
    pub resolution: Resolution,
    #[serde(skip)]
    pub request_id: Uuid,
    #[serde(skip)]
    pub buyer_id: Uuid,
    #[serde(skip)]
    pub seller_id: Uuid,
    #[serde(skip)]
    pub actor_id: Uuid,
}
audience!(DisputeResolved, |self| {
    Audience {
        buyer_id: Some(self.buyer_id),
        seller_id: Some(self.seller_id),
        request_id: Some(self.request_id),
        actor_id: Some(self.actor_id),
        ..Default::default()
    }
});

/// `system:maintenance` → everyone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SystemMaintenance {
    pub message: String,
    pub starts_at: DateTime<Utc>,
}
audience!(SystemMaintenance, |self| Audience::default());

/// `system:announcement` → everyone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SystemAnnouncement {
    pub message: String,
}
audience!(SystemAnnouncement, |self| Audience::default());

/// Live-only payloads (not in the log).
/// `chat:typing` / `chat:stopped-typing` → `chat-{chatId}` except the sender.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatTyping {
    pub chat_id: Uuid,
    pub user_id: Uuid,
}

/// `user:online` / `user:offline` → the chat rooms of that user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserPresence {
    pub user_id: Uuid,
}

/// `events:replay-truncated`: more durable events were missed than a reconnect replays.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplayTruncated {
    /// The id of the last event replayed; fetch the rest from `GET /api/events?after=`.
    pub last_event_id: i64,
}

/// The second argument of every durable event: `{ id, at }`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EventMeta {
    pub id: i64,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands back the description of a payload's schema.
    struct Description;

    impl PayloadVisitor for Description {
        type Output = Option<String>;
        fn visit<T: ToSchema>(&mut self) -> Option<String> {
            let schema = serde_json::to_value(T::schema()).ok()?;
            schema["description"].as_str().map(str::to_owned)
        }
    }

    /// The documents show each payload's doc comment; for a durable event it must say the
    /// rooms of its row, so the prose cannot drift from the table.
    #[test]
    fn durable_payload_docs_name_the_rooms_of_their_row() {
        for name in EventName::ALL.into_iter().filter(|n| n.is_durable()) {
            let rooms: Vec<String> = name
                .rooms()
                .iter()
                .map(|rule| match rule {
                    RoomRule::Everyone => "everyone".to_owned(),
                    other => format!("`{}`", other.pattern()),
                })
                .collect();
            let expected = format!("`{}` → {}.", name.as_str(), rooms.join(", "));
            assert_eq!(
                name.payload(&mut Description).as_deref(),
                Some(expected.as_str()),
                "the doc comment of {name}'s payload"
            );
        }
    }
}
