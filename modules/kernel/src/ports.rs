//! Questions one part of the system asks another without reading its tables. `connections`
//! asks these when a socket joins a room or replays events; the owning modules answer.

use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use catalog::contract::Message;

/// Answered by the offers module (it knows requests and who has an offer on them).
#[async_trait::async_trait]
pub trait RequestAccess: Send + Sync + 'static {
    /// May `user` be in `request-{request_id}`: its buyer, a seller with an offer on it, an
    /// admin. `false` (never an error) for an unknown request.
    async fn can_follow_request(&self, user: AuthUser, request_id: Uuid) -> Result<bool, ApiError>;
}

/// Answered by the chat module.
#[async_trait::async_trait]
pub trait ChatPort: Send + Sync + 'static {
    /// May `user` be in `chat-{chat_id}`: its two participants and admins.
    async fn can_follow_chat(&self, user: AuthUser, chat_id: Uuid) -> Result<bool, ApiError>;
    /// The chats `user_id` takes part in (for presence).
    async fn chats_of(&self, user_id: Uuid) -> Result<Vec<Uuid>, ApiError>;
    /// Do `a` and `b` take part in one chat together (presence is visible to chat partners).
    /// The default asks [`ChatPort::chats_of`] twice; implementations may ask once.
    async fn share_a_chat(&self, a: Uuid, b: Uuid) -> Result<bool, ApiError> {
        let of_a = self.chats_of(a).await?;
        Ok(self
            .chats_of(b)
            .await?
            .iter()
            .any(|chat| of_a.contains(chat)))
    }
    /// Same rules, limit and effects as `POST /api/chats/{id}/messages` (429
    /// `rate_limited` beyond the per-user message quota): text, the ids of the sender's
    /// uploads to attach, or both.
    async fn send(
        &self,
        user: AuthUser,
        chat_id: Uuid,
        content: Option<String>,
        attachment_ids: Option<Vec<Uuid>>,
    ) -> Result<Message, ApiError>;
    /// Same rules and effects as `POST /api/chats/{id}/read`.
    async fn mark_read(
        &self,
        user: AuthUser,
        chat_id: Uuid,
        message_id: Uuid,
    ) -> Result<(), ApiError>;
}

/// Why presence could not be told: the shared presence store (Redis, in a cluster) did not
/// answer in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("presence is unknown: {0}")]
pub struct PresenceUnknown(pub String);

/// Answered by `connections` (it alone knows sockets): is a user connected right now.
/// Domain modules ask it before reaching someone outside the app (an email digest, a web
/// push), which the contract only does for users with no connected socket on any node.
#[async_trait::async_trait]
pub trait Presence: Send + Sync + 'static {
    /// `Ok(true)` while the user has at least one connected socket on any node of the
    /// cluster (on one node: on this process). In a cluster whose Redis does not answer the
    /// answer is `Err`, never a guess: this node's own count cannot see the other nodes, and
    /// each caller decides what "unknown" means for it (the email digest waits and asks
    /// again, so nobody is mailed while connected elsewhere and nobody is skipped).
    async fn is_connected(&self, user_id: Uuid) -> Result<bool, PresenceUnknown>;
}
