//! The event catalog: every server→client event of the contract with its typed payload.
//!
//! A catalog event is a struct that serializes to exactly the payload clients receive.
//! Fields marked `#[serde(skip)]` are routing facts (who the buyer is, who acted) that are not
//! part of the payload; [`CatalogEvent::audience`] lifts them into an [`Audience`] that is
//! stored beside the payload in the event log. Which rooms an audience maps to is decided in
//! one table in the `connections` crate; which notifications it creates, in `notifications`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::contract::*;

/// Every event name of the contract, durable or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventName {
    #[serde(rename = "notification:received")]
    NotificationReceived,
    #[serde(rename = "notification:read")]
    NotificationRead,
    #[serde(rename = "request:created")]
    RequestCreated,
    #[serde(rename = "request:offer-received")]
    RequestOfferReceived,
    #[serde(rename = "request:status-updated")]
    RequestStatusUpdated,
    #[serde(rename = "offer:negotiation-update")]
    OfferNegotiationUpdate,
    #[serde(rename = "offer:accepted")]
    OfferAccepted,
    #[serde(rename = "payment:created")]
    PaymentCreated,
    #[serde(rename = "payment:status-updated")]
    PaymentStatusUpdated,
    #[serde(rename = "payment:completed")]
    PaymentCompleted,
    #[serde(rename = "payout:created")]
    PayoutCreated,
    #[serde(rename = "payout:completed")]
    PayoutCompleted,
    #[serde(rename = "payout:failed")]
    PayoutFailed,
    #[serde(rename = "chat:new-message")]
    ChatNewMessage,
    #[serde(rename = "chat:message-read")]
    ChatMessageRead,
    #[serde(rename = "chat:typing")]
    ChatTyping,
    #[serde(rename = "chat:stopped-typing")]
    ChatStoppedTyping,
    #[serde(rename = "dispute:opened")]
    DisputeOpened,
    #[serde(rename = "dispute:evidence-added")]
    DisputeEvidenceAdded,
    #[serde(rename = "dispute:resolved")]
    DisputeResolved,
    #[serde(rename = "user:online")]
    UserOnline,
    #[serde(rename = "user:offline")]
    UserOffline,
    #[serde(rename = "system:maintenance")]
    SystemMaintenance,
    #[serde(rename = "system:announcement")]
    SystemAnnouncement,
    #[serde(rename = "events:replay-truncated")]
    EventsReplayTruncated,
}

impl EventName {
    /// Every name, in catalog order.
    pub const ALL: [EventName; 25] = [
        Self::NotificationReceived,
        Self::NotificationRead,
        Self::RequestCreated,
        Self::RequestOfferReceived,
        Self::RequestStatusUpdated,
        Self::OfferNegotiationUpdate,
        Self::OfferAccepted,
        Self::PaymentCreated,
        Self::PaymentStatusUpdated,
        Self::PaymentCompleted,
        Self::PayoutCreated,
        Self::PayoutCompleted,
        Self::PayoutFailed,
        Self::ChatNewMessage,
        Self::ChatMessageRead,
        Self::ChatTyping,
        Self::ChatStoppedTyping,
        Self::DisputeOpened,
        Self::DisputeEvidenceAdded,
        Self::DisputeResolved,
        Self::UserOnline,
        Self::UserOffline,
        Self::SystemMaintenance,
        Self::SystemAnnouncement,
        Self::EventsReplayTruncated,
    ];

    /// The wire name, e.g. `offer:accepted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotificationReceived => "notification:received",
            Self::NotificationRead => "notification:read",
            Self::RequestCreated => "request:created",
            Self::RequestOfferReceived => "request:offer-received",
            Self::RequestStatusUpdated => "request:status-updated",
            Self::OfferNegotiationUpdate => "offer:negotiation-update",
            Self::OfferAccepted => "offer:accepted",
            Self::PaymentCreated => "payment:created",
            Self::PaymentStatusUpdated => "payment:status-updated",
            Self::PaymentCompleted => "payment:completed",
            Self::PayoutCreated => "payout:created",
            Self::PayoutCompleted => "payout:completed",
            Self::PayoutFailed => "payout:failed",
            Self::ChatNewMessage => "chat:new-message",
            Self::ChatMessageRead => "chat:message-read",
            Self::ChatTyping => "chat:typing",
            Self::ChatStoppedTyping => "chat:stopped-typing",
            Self::DisputeOpened => "dispute:opened",
            Self::DisputeEvidenceAdded => "dispute:evidence-added",
            Self::DisputeResolved => "dispute:resolved",
            Self::UserOnline => "user:online",
            Self::UserOffline => "user:offline",
            Self::SystemMaintenance => "system:maintenance",
            Self::SystemAnnouncement => "system:announcement",
            Self::EventsReplayTruncated => "events:replay-truncated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == name)
    }

    /// Durable events go through the event log and carry `{ id, at }`; typing, presence and
    /// the replay notice are live only.
    pub fn is_durable(self) -> bool {
        !matches!(
            self,
            Self::ChatTyping
                | Self::ChatStoppedTyping
                | Self::UserOnline
                | Self::UserOffline
                | Self::EventsReplayTruncated
        )
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who an event concerns, stored with it in the log. The room table of `connections` turns
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actor_id: Option<Uuid>,
}

/// An event of the catalog that goes through the durable log.
pub trait CatalogEvent: Serialize + DeserializeOwned + ToSchema + Send + Sync + 'static {
    const NAME: EventName;
    /// The routing facts of this event.
    fn audience(&self) -> Audience;
}

macro_rules! catalog_event {
    ($ty:ty, $name:expr, |$s:ident| $audience:expr) => {
        impl CatalogEvent for $ty {
            const NAME: EventName = $name;
            fn audience(&$s) -> Audience {
                $audience
            }
        }
    };
}

/// `notification:received` → `user-{recipientId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(transparent)]
pub struct NotificationReceived(pub Notification);
catalog_event!(
    NotificationReceived,
    EventName::NotificationReceived,
    |self| Audience {
        recipient_id: Some(self.0.recipient_id),
        ..Default::default()
    }
);

/// `notification:read` → `user-{recipientId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRead {
    pub id: Uuid,
    pub read_at: DateTime<Utc>,
    #[serde(skip)]
    pub recipient_id: Uuid,
}
catalog_event!(NotificationRead, EventName::NotificationRead, |self| {
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
catalog_event!(RequestCreated, EventName::RequestCreated, |self| Audience {
    buyer_id: Some(self.0.buyer_id),
    request_id: Some(self.0.id),
    actor_id: Some(self.0.buyer_id),
    ..Default::default()
});

/// `request:offer-received` → `user-{buyerId}`, `request-{requestId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestOfferReceived {
    pub request_id: Uuid,
    pub offer: SellerOffer,
    #[serde(skip)]
    pub buyer_id: Uuid,
}
catalog_event!(
    RequestOfferReceived,
    EventName::RequestOfferReceived,
    |self| Audience {
        buyer_id: Some(self.buyer_id),
        seller_id: Some(self.offer.seller_id),
        request_id: Some(self.request_id),
        actor_id: Some(self.offer.seller_id),
        ..Default::default()
    }
);

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
catalog_event!(
    RequestStatusUpdated,
    EventName::RequestStatusUpdated,
    |self| Audience {
        buyer_id: Some(self.buyer_id),
        request_id: Some(self.request_id),
        actor_id: self.actor_id,
        ..Default::default()
    }
);

/// `offer:negotiation-update` → `request-{requestId}`.
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
catalog_event!(
    OfferNegotiationUpdate,
    EventName::OfferNegotiationUpdate,
    |self| Audience {
        buyer_id: Some(self.buyer_id),
        seller_id: Some(self.seller_id),
        request_id: Some(self.request_id),
        actor_id: Some(self.message.author_id),
        ..Default::default()
    }
);

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
catalog_event!(OfferAccepted, EventName::OfferAccepted, |self| Audience {
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
catalog_event!(PaymentCreated, EventName::PaymentCreated, |self| Audience {
    buyer_id: Some(self.0.buyer_id),
    seller_id: Some(self.0.seller_id),
    request_id: Some(self.0.request_id),
    actor_id: Some(self.0.buyer_id),
    ..Default::default()
});

/// `payment:status-updated` → `user-{buyerId}`, `request-{requestId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusUpdated {
    pub payment_id: Uuid,
    pub request_id: Uuid,
    pub status: PaymentStatus,
    pub provider_payment_id: Option<String>,
    #[serde(skip)]
    pub buyer_id: Uuid,
}
catalog_event!(
    PaymentStatusUpdated,
    EventName::PaymentStatusUpdated,
    |self| Audience {
        buyer_id: Some(self.buyer_id),
        request_id: Some(self.request_id),
        ..Default::default()
    }
);

/// `payment:completed` → `user-{buyerId}`, `user-{sellerId}`, `request-{requestId}`.
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
catalog_event!(PaymentCompleted, EventName::PaymentCompleted, |self| {
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
catalog_event!(PayoutCreated, EventName::PayoutCreated, |self| Audience {
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
catalog_event!(PayoutCompleted, EventName::PayoutCompleted, |self| {
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
catalog_event!(PayoutFailed, EventName::PayoutFailed, |self| Audience {
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
catalog_event!(ChatNewMessage, EventName::ChatNewMessage, |self| Audience {
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
catalog_event!(ChatMessageRead, EventName::ChatMessageRead, |self| {
    Audience {
        chat_id: Some(self.chat_id),
        actor_id: Some(self.user_id),
        ..Default::default()
    }
});

/// `dispute:opened` → `request-{requestId}`, `admin`.
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
catalog_event!(DisputeOpened, EventName::DisputeOpened, |self| Audience {
    buyer_id: Some(self.buyer_id),
    seller_id: Some(self.seller_id),
    request_id: Some(self.dispute.request_id),
    actor_id: Some(self.dispute.opened_by),
    ..Default::default()
});

/// `dispute:evidence-added` → `request-{requestId}`, `admin`.
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
catalog_event!(
    DisputeEvidenceAdded,
    EventName::DisputeEvidenceAdded,
    |self| Audience {
        buyer_id: Some(self.buyer_id),
        seller_id: Some(self.seller_id),
        request_id: Some(self.request_id),
        actor_id: Some(self.evidence.author_id),
        ..Default::default()
    }
);

/// `dispute:resolved` → `request-{requestId}`, `user-{buyerId}`, `user-{sellerId}`, `admin`.
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
catalog_event!(DisputeResolved, EventName::DisputeResolved, |self| {
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
catalog_event!(SystemMaintenance, EventName::SystemMaintenance, |self| {
    Audience::default()
});

/// `system:announcement` → everyone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SystemAnnouncement {
    pub message: String,
}
catalog_event!(SystemAnnouncement, EventName::SystemAnnouncement, |self| {
    Audience::default()
});

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
