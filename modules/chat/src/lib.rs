//! The chat module: one chat per (request, seller) between the request's buyer and that
//! seller, opened by the seller's first offer ([`service::open_for_offer`]). It owns
//! `chats`, `chat_messages` and `chat_read_markers`, and answers [`kernel::ports::ChatPort`]
//! for the socket gateway through the same service functions as its REST routes.
//!
//! # Public API
//! What other modules may call (nothing else; its tables are private to it):
//! - [`service::open_for_offer`]: opens (or finds) the chat of a request and seller, inside
//!   the offer's transaction.
//! - [`Port`]: its answer to [`kernel::ports::ChatPort`] (the socket gateway's chat rooms,
//!   `chat:send`, `chat:read`, presence).

mod dto;
pub(crate) mod entity;
mod routes;
mod service;

pub use service::open_for_offer;

use catalog::contract::Message;
use kernel::ports::ChatPort;
use kernel::{ApiError, AppState, AuthUser, EventBus, Limits, Module};
use sea_orm::DatabaseConnection;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// Registers `/api/chats/*`.
pub struct ChatModule;

impl Module for ChatModule {
    fn name(&self) -> &'static str {
        "chat"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
}

/// The chat module's answers to the socket gateway (`join-chat-room`, `chat:send`,
/// `chat:read`, presence).
#[derive(Clone)]
pub struct Port {
    db: DatabaseConnection,
    bus: EventBus,
    limits: Limits,
    files: files::Files,
}

impl Port {
    pub fn new(state: &AppState, files: files::Files) -> Self {
        Self {
            db: state.db.clone(),
            bus: state.bus.clone(),
            limits: state.limits.clone(),
            files,
        }
    }
}

#[async_trait::async_trait]
impl ChatPort for Port {
    async fn can_follow_chat(&self, user: AuthUser, chat_id: Uuid) -> Result<bool, ApiError> {
        service::can_follow(&self.db, user, chat_id).await
    }

    async fn chats_of(&self, user_id: Uuid) -> Result<Vec<Uuid>, ApiError> {
        service::chats_of(&self.db, user_id).await
    }

    async fn share_a_chat(&self, a: Uuid, b: Uuid) -> Result<bool, ApiError> {
        service::share_a_chat(&self.db, a, b).await
    }

    async fn send(
        &self,
        user: AuthUser,
        chat_id: Uuid,
        content: Option<String>,
        attachment_ids: Option<Vec<Uuid>>,
    ) -> Result<Message, ApiError> {
        service::within_send_limit(&self.limits, user).await?;
        let draft = dto::Draft::parse(content.as_deref(), attachment_ids)?;
        service::send_message(&self.bus, &self.files, user, chat_id, draft).await
    }

    async fn mark_read(
        &self,
        user: AuthUser,
        chat_id: Uuid,
        message_id: Uuid,
    ) -> Result<(), ApiError> {
        service::mark_read(&self.bus, user, chat_id, message_id).await
    }
}
