//! What comes in and goes out of the push routes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::entity::subscription;

/// The server's VAPID public key, for `pushManager.subscribe({ applicationServerKey })`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// base64url (no padding) uncompressed P-256 point, 87 characters.
    #[schema(
        example = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
    )]
    pub public_key: String,
}

/// The browser's keys of a subscription (`PushSubscription.toJSON().keys`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionKeys {
    /// base64url uncompressed P-256 public key (65 bytes).
    #[schema(min_length = 86, max_length = 88)]
    pub p256dh: String,
    /// base64url 16-byte authentication secret.
    #[schema(min_length = 22, max_length = 24)]
    pub auth: String,
}

/// `PushSubscription.toJSON()` as a browser gives it (`expirationTime` and other fields are
/// ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeBody {
    /// The push service URL: `https://`, never a loopback, private or link-local address.
    #[schema(
        max_length = 2048,
        example = "https://fcm.googleapis.com/fcm/send/abc123"
    )]
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// One of the caller's push subscriptions (the keys are never sent back).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    pub id: Uuid,
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
}

impl From<&subscription::Model> for PushSubscription {
    fn from(s: &subscription::Model) -> Self {
        Self {
            id: s.id,
            endpoint: s.endpoint.clone(),
            created_at: s.created_at,
        }
    }
}
