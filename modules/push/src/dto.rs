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

/// A push that failed for good (`failed`: refused by the push service, or still failing after
/// its retries) or is failing now (`retrying`), for admins.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushFailure {
    /// The delivery (one notification to one subscription).
    pub id: Uuid,
    pub notification_id: Uuid,
    /// Whose subscription.
    pub user_id: Uuid,
    pub subscription_id: Uuid,
    /// The push service, e.g. `https://fcm.googleapis.com` (the rest of the endpoint is the
    /// subscription's secret and is not shown).
    pub endpoint_origin: String,
    /// `failed` or `retrying`.
    #[schema(example = "failed")]
    pub state: String,
    pub attempts: i32,
    /// The push service's answer or the network error of the last attempt.
    pub last_error: Option<String>,
    /// When the next attempt is due (`retrying` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}
