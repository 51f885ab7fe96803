//! `/api/chats/*`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use catalog::contract::{Chat, Message, Page};
use files::Files;
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::pagination::PageParams;
use kernel::{AppState, AuthUser, EventBus, Limits, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::dto::{Draft, Emoji, MarkReadBody, MessageReactions, SendMessageBody};
use crate::service;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_chats))
        .routes(routes!(get_chat))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(mark_read))
        .routes(routes!(add_reaction, remove_reaction))
}

/// The caller's chats, newest activity first (last message, or opening before any message),
/// each with the caller's `unreadCount`. Admins see their own chats here too.
#[utoipa::path(get, path = "/api/chats", operation_id = "listChats", tag = "chat", security(("bearer" = [])), params(PageParams),
    responses(
        (status = 200, body = Page<Chat>),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "bad `limit` or `cursor`"),
    ))]
async fn list_chats(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<Chat>>> {
    Ok(axum::Json(service::list_chats(&db, caller, &params).await?))
}

/// One chat: for its buyer and seller, and admins; anyone else gets 404.
#[utoipa::path(get, path = "/api/chats/{id}", operation_id = "getChat", tag = "chat", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "chat id")),
    responses((status = 200, body = Chat), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_chat(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Chat>> {
    Ok(axum::Json(service::get_chat(&db, caller, id).await?))
}

/// The chat's messages, newest first. Pages follow message ids, so messages that arrive
/// while paging neither repeat nor push anything off a page.
#[utoipa::path(get, path = "/api/chats/{id}/messages", operation_id = "listChatMessages", tag = "chat", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "chat id"), PageParams),
    responses(
        (status = 200, body = Page<Message>),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 422, body = Problem, description = "bad `limit` or `cursor`"),
    ))]
async fn list_messages(
    State(db): State<DatabaseConnection>,
    Extension(files): Extension<Files>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<Message>>> {
    Ok(axum::Json(
        service::list_messages(&db, &files, caller, id, &params).await?,
    ))
}

/// Post a message (participants only): text, files (`attachmentIds`: at most 10 of the
/// sender's own unattached uploads, see `POST /api/uploads`), or both. Emits
/// `chat:new-message`.
#[utoipa::path(post, path = "/api/chats/{id}/messages", operation_id = "sendChatMessage", tag = "chat", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "chat id")), request_body = SendMessageBody,
    responses(
        (status = 201, body = Message),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "an admin: admins may read chats, not write in them"),
        (status = 404, body = Problem, description = "no such chat of this user"),
        (status = 422, body = Problem, description = "`content` over 4000 characters, or empty without `attachmentIds`; `attachmentIds` over 10, repeated, or not the sender's unattached uploads"),
        (status = 429, body = Problem, description = "`rate_limited`: more than 20 messages in 10 s from this user (REST and socket together); see Retry-After"),
    ))]
async fn send_message(
    State(bus): State<EventBus>,
    State(limits): State<Limits>,
    Extension(files): Extension<Files>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<SendMessageBody>,
) -> Result<(StatusCode, axum::Json<Message>)> {
    service::within_send_limit(&limits, caller).await?;
    let draft = Draft::parse(body.content.as_deref(), body.attachment_ids)?;
    let message = service::send_message(&bus, &files, caller, id, draft).await?;
    Ok((StatusCode::CREATED, axum::Json(message)))
}

/// Mark the chat read up to `messageId` (participants only); the marker never moves back.
/// Emits `chat:message-read`.
#[utoipa::path(post, path = "/api/chats/{id}/read", operation_id = "markChatRead", tag = "chat", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "chat id")), request_body = MarkReadBody,
    responses(
        (status = 204, description = "marked"),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "an admin: admins may read chats, not mark them read"),
        (status = 404, body = Problem, description = "no such chat of this user"),
        (status = 422, body = Problem, description = "`messageId` is not a message of this chat"),
    ))]
async fn mark_read(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<MarkReadBody>,
) -> Result<StatusCode> {
    service::mark_read(&bus, caller, id, body.message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// React to a message with one emoji (participants). Idempotent: reacting again changes
/// nothing. Emits `chat:reaction-added` when the reaction is new.
#[utoipa::path(put, path = "/api/chats/{chatId}/messages/{messageId}/reactions/{emoji}", operation_id = "addReaction", tag = "chat",
    security(("bearer" = [])),
    params(
        ("chatId" = Uuid, Path, description = "chat id"),
        ("messageId" = Uuid, Path, description = "a message of that chat"),
        ("emoji" = String, Path, description = "one emoji (URL-encoded), a single grapheme cluster; compared after NFC normalization without U+FE0F"),
    ),
    responses(
        (status = 200, body = MessageReactions),
        (status = 403, body = Problem, description = "an admin: admins may read chats, not react in them"),
        (status = 404, body = Problem, description = "no such chat of this user, or no such message in it"),
        (status = 409, body = Problem, description = "`too_many_reactions`: the message has 20 distinct emoji already"),
        (status = 422, body = Problem, description = "`emoji` is not exactly one emoji"),
    ))]
async fn add_reaction(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path((chat_id, message_id, emoji)): Path<(Uuid, Uuid, String)>,
) -> Result<axum::Json<MessageReactions>> {
    let emoji = Emoji::parse(&emoji)?;
    Ok(axum::Json(
        service::react(&bus, caller, chat_id, message_id, emoji).await?,
    ))
}

/// Take back one's reaction (participants). Idempotent: without such a reaction nothing
/// changes. Emits `chat:reaction-removed` when one was removed.
#[utoipa::path(delete, path = "/api/chats/{chatId}/messages/{messageId}/reactions/{emoji}", operation_id = "removeReaction", tag = "chat",
    security(("bearer" = [])),
    params(
        ("chatId" = Uuid, Path, description = "chat id"),
        ("messageId" = Uuid, Path, description = "a message of that chat"),
        ("emoji" = String, Path, description = "one emoji (URL-encoded)"),
    ),
    responses(
        (status = 200, body = MessageReactions),
        (status = 403, body = Problem, description = "an admin: admins may read chats, not react in them"),
        (status = 404, body = Problem, description = "no such chat of this user, or no such message in it"),
        (status = 422, body = Problem, description = "`emoji` is not exactly one emoji"),
    ))]
async fn remove_reaction(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path((chat_id, message_id, emoji)): Path<(Uuid, Uuid, String)>,
) -> Result<axum::Json<MessageReactions>> {
    let emoji = Emoji::parse(&emoji)?;
    Ok(axum::Json(
        service::unreact(&bus, caller, chat_id, message_id, emoji).await?,
    ))
}
