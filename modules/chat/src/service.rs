//! The rules of chats: who takes part, who may read and write, what a message may hold,
//! how far each participant has read.

use std::collections::HashMap;
use std::time::Duration;

use catalog::contract::{Chat, Message, Page, Reaction, new_id, now};
use catalog::events::{ChatMessageRead, ChatNewMessage, ChatReactionAdded, ChatReactionRemoved};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AuthUser, EventBus, Limits, Quota, Result, Tx};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::dto::{ChatPosition, Draft, Emoji, MAX_DISTINCT_REACTIONS, MessageReactions};
use crate::entity::{chat, message, reaction, read_marker};
use files::{Files, Target, TargetKind};

/// Opens the chat between `buyer_id` and `seller_id` about `request_id`, inside the caller's
/// transaction (the offers module calls this when a seller makes an offer). Idempotent: when
/// the chat exists already its id is returned and nothing fails, so a repeated offer never
/// breaks on a duplicate chat.
pub async fn open_for_offer(
    tx: &mut Tx,
    request_id: Uuid,
    buyer_id: Uuid,
    seller_id: Uuid,
) -> Result<Uuid> {
    let at = now();
    let row = chat::ActiveModel {
        id: Set(new_id()),
        request_id: Set(request_id),
        buyer_id: Set(buyer_id),
        seller_id: Set(seller_id),
        last_message_at: Set(None),
        activity_at: Set(at),
        created_at: Set(at),
    };
    chat::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([chat::Column::RequestId, chat::Column::SellerId])
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(tx.conn())
        .await?;
    let found = chat::Entity::find()
        .filter(chat::Column::RequestId.eq(request_id))
        .filter(chat::Column::SellerId.eq(seller_id))
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("chat missing right after insert-or-ignore"))?;
    if found.buyer_id != buyer_id {
        return Err(ApiError::internal(
            "existing chat of this request and seller names another buyer",
        ));
    }
    Ok(found.id)
}

/// The chat when `caller` may see it: its two participants and admins. Anyone else, and an
/// unknown id, get the same 404. With `lock`, the row is locked for the rest of the
/// transaction (PostgreSQL; SQLite's write transaction already excludes other writers), so
/// writes to one chat are serialized and message ids follow commit order.
async fn visible<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    chat_id: Uuid,
    lock: bool,
) -> Result<chat::Model> {
    let mut query = chat::Entity::find_by_id(chat_id);
    if lock {
        query = query.lock_exclusive();
    }
    match query.one(conn).await? {
        Some(c) if c.is_participant(caller.id) || caller.is_admin() => Ok(c),
        _ => Err(ApiError::NotFound),
    }
}

/// Writing (posting, marking read) is for the two participants, a buyer and a seller. An
/// admin may read every chat but never writes in one: 403 whatever the chat, before it is
/// even looked up. Anyone else who is not a participant gets the 404 of [`visible`].
fn require_writer(chat: &chat::Model, caller: AuthUser) -> Result<()> {
    if chat.is_participant(caller.id) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

fn require_writer_role(caller: AuthUser) -> Result<()> {
    if caller.is_admin() {
        Err(ApiError::forbidden(
            "admins may read chats, not write in them",
        ))
    } else {
        Ok(())
    }
}

/// For each of `chat_ids`, how many messages from someone other than `user_id` are newer
/// than `user_id`'s read marker. Chats without such messages are absent.
async fn unread_counts<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    chat_ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>> {
    if chat_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let markers: HashMap<Uuid, Uuid> = read_marker::Entity::find()
        .filter(read_marker::Column::UserId.eq(user_id))
        .filter(read_marker::Column::ChatId.is_in(chat_ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.chat_id, m.last_read_message_id))
        .collect();
    let mut which = Condition::any();
    for id in chat_ids {
        let mut one = Condition::all().add(message::Column::ChatId.eq(*id));
        if let Some(marker) = markers.get(id) {
            one = one.add(message::Column::Id.gt(*marker));
        }
        which = which.add(one);
    }
    let rows: Vec<(Uuid, i64)> = message::Entity::find()
        .select_only()
        .column(message::Column::ChatId)
        .column_as(message::Column::Id.count(), "unread")
        .filter(message::Column::SenderId.ne(user_id))
        .filter(which)
        .group_by(message::Column::ChatId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(chat_id, n)| (chat_id, n.max(0) as u64))
        .collect())
}

/// The caller's chats (as buyer or seller; an admin's own too, which is none), newest
/// activity first: by the last message's time, or the opening time before any message, then
/// by id. Each carries the caller's unread count.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn list_chats(
    db: &DatabaseConnection,
    caller: AuthUser,
    params: &PageParams,
) -> Result<Page<Chat>> {
    let limit = params.limit()?;
    let cursor: Option<ChatPosition> = params.cursor()?;
    let mut query = chat::Entity::find().filter(
        Condition::any()
            .add(chat::Column::BuyerId.eq(caller.id))
            .add(chat::Column::SellerId.eq(caller.id)),
    );
    if let Some(p) = cursor {
        query = query.filter(
            Condition::any().add(chat::Column::ActivityAt.lt(p.a)).add(
                Condition::all()
                    .add(chat::Column::ActivityAt.eq(p.a))
                    .add(chat::Column::Id.lt(p.i)),
            ),
        );
    }
    let rows = query
        .order_by_desc(chat::Column::ActivityAt)
        .order_by_desc(chat::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let rows = page(rows, limit, |c| ChatPosition {
        a: c.activity_at,
        i: c.id,
    });
    let ids: Vec<Uuid> = rows.items.iter().map(|c| c.id).collect();
    let counts = unread_counts(db, caller.id, &ids).await?;
    Ok(Page {
        items: rows
            .items
            .iter()
            .map(|c| c.to_api(counts.get(&c.id).copied().unwrap_or(0)))
            .collect(),
        next_cursor: rows.next_cursor,
    })
}

/// One chat, for its participants (with their unread count) and admins (unread 0).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %chat_id))]
pub async fn get_chat(db: &DatabaseConnection, caller: AuthUser, chat_id: Uuid) -> Result<Chat> {
    let chat = visible(db, caller, chat_id, false).await?;
    let unread = if chat.is_participant(caller.id) {
        unread_counts(db, caller.id, &[chat.id])
            .await?
            .get(&chat.id)
            .copied()
            .unwrap_or(0)
    } else {
        0
    };
    Ok(chat.to_api(unread))
}

/// A chat's messages, newest first; the cursor is the last id of the previous page, so
/// messages arriving between pages neither shift nor repeat anything.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %chat_id))]
pub async fn list_messages(
    db: &DatabaseConnection,
    files: &Files,
    caller: AuthUser,
    chat_id: Uuid,
    params: &PageParams,
) -> Result<Page<Message>> {
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    let chat = visible(db, caller, chat_id, false).await?;
    let mut query = message::Entity::find().filter(message::Column::ChatId.eq(chat.id));
    if let Some(before) = cursor {
        query = query.filter(message::Column::Id.lt(before));
    }
    let rows = query
        .order_by_desc(message::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let rows = page(rows, limit, |m| m.id);
    let ids: Vec<Uuid> = rows.items.iter().map(|m| m.id).collect();
    let mut attachments = files.of_targets(db, &ids).await?;
    let mut reactions = reactions_of(db, caller.id, &ids).await?;
    Ok(Page {
        items: rows
            .items
            .iter()
            .map(|m| {
                m.to_api(
                    attachments.remove(&m.id).unwrap_or_default(),
                    reactions.remove(&m.id).unwrap_or_default(),
                )
            })
            .collect(),
        next_cursor: rows.next_cursor,
    })
}

/// At most 20 chat messages per user per 10 s, REST and socket counted together (and across
/// nodes when the limits live in Redis).
pub const SEND_QUOTA: Quota = Quota::new("chat-messages", 20, Duration::from_secs(10));

/// Counts one message `caller` tries to send: 429 `rate_limited` (with `Retry-After`) beyond
/// [`SEND_QUOTA`]. Checked before anything else, so a flood costs no database work; other
/// users are counted apart and never slowed by it.
pub async fn within_send_limit(limits: &Limits, caller: AuthUser) -> Result<()> {
    limits.enforce(&SEND_QUOTA, &caller.id.to_string()).await
}

/// Posts a message as `caller`, with the files of `draft` attached to it (each one of the
/// caller's unattached uploads, else 422 on `attachmentIds` and nothing is sent): 403 for an
/// admin (who may read but never write), 404 when the chat is not the caller's. Emits
/// `chat:new-message` to the chat and the other participant.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %chat_id))]
pub async fn send_message(
    bus: &EventBus,
    files: &Files,
    caller: AuthUser,
    chat_id: Uuid,
    draft: Draft,
) -> Result<Message> {
    require_writer_role(caller)?;
    let mut tx = bus.begin().await?;
    let chat = visible(tx.conn(), caller, chat_id, true).await?;
    require_writer(&chat, caller)?;
    let at = now();
    let row = message::Model {
        id: new_id(),
        chat_id: chat.id,
        sender_id: caller.id,
        content: draft.content,
        created_at: at,
    };
    message::Entity::insert(message::ActiveModel::from(row.clone()))
        .exec_without_returning(tx.conn())
        .await?;
    let attachments = if draft.attachment_ids.is_empty() {
        Vec::new()
    } else {
        files
            .attach(
                tx.conn(),
                caller.id,
                &draft.attachment_ids,
                Target {
                    kind: TargetKind::Message,
                    id: row.id,
                    parties: [chat.buyer_id, chat.seller_id],
                },
            )
            .await?
    };
    chat::Entity::update_many()
        .col_expr(chat::Column::LastMessageAt, Expr::value(at))
        .col_expr(chat::Column::ActivityAt, Expr::value(at))
        .filter(chat::Column::Id.eq(chat.id))
        .exec(tx.conn())
        .await?;
    let message = row.to_api(attachments, Vec::new());
    tx.publish(ChatNewMessage {
        message: message.clone(),
        other_participant_id: chat.other_participant(caller.id),
        request_id: chat.request_id,
    });
    tx.commit().await?;
    Ok(message)
}

/// Marks everything up to `message_id` as read by `caller` (a participant). The marker only
/// moves forward: marking an older message again changes nothing but is not an error.
/// A message id that is not of this chat is a 422 on `messageId`. Emits `chat:message-read`.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %chat_id))]
pub async fn mark_read(
    bus: &EventBus,
    caller: AuthUser,
    chat_id: Uuid,
    message_id: Uuid,
) -> Result<()> {
    require_writer_role(caller)?;
    let mut tx = bus.begin().await?;
    let chat = visible(tx.conn(), caller, chat_id, true).await?;
    require_writer(&chat, caller)?;
    let message = message::Entity::find_by_id(message_id)
        .one(tx.conn())
        .await?
        .filter(|m| m.chat_id == chat.id)
        .ok_or_else(|| ApiError::invalid("messageId", "no such message in this chat"))?;
    let at = now();
    let marker = read_marker::ActiveModel {
        chat_id: Set(chat.id),
        user_id: Set(caller.id),
        last_read_message_id: Set(message.id),
        read_at: Set(at),
    };
    match read_marker::Entity::find_by_id((chat.id, caller.id))
        .one(tx.conn())
        .await?
    {
        None => {
            read_marker::Entity::insert(marker)
                .exec_without_returning(tx.conn())
                .await?;
        }
        Some(current) if current.last_read_message_id < message.id => {
            read_marker::Entity::update(marker).exec(tx.conn()).await?;
        }
        Some(_) => {}
    }
    tx.publish(ChatMessageRead {
        chat_id: chat.id,
        message_id: message.id,
        user_id: caller.id,
        read_at: at,
    });
    tx.commit().await?;
    Ok(())
}

/// May `user` follow the chat live: its participants and admins. `false` for an unknown id.
pub async fn can_follow(db: &DatabaseConnection, user: AuthUser, chat_id: Uuid) -> Result<bool> {
    Ok(chat::Entity::find_by_id(chat_id)
        .one(db)
        .await?
        .is_some_and(|c| c.is_participant(user.id) || user.is_admin()))
}

/// Do `a` and `b` take part in one chat together (either as buyer or as seller).
pub async fn share_a_chat(db: &DatabaseConnection, a: Uuid, b: Uuid) -> Result<bool> {
    let found: Option<Uuid> = chat::Entity::find()
        .select_only()
        .column(chat::Column::Id)
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(chat::Column::BuyerId.eq(a))
                        .add(chat::Column::SellerId.eq(b)),
                )
                .add(
                    Condition::all()
                        .add(chat::Column::BuyerId.eq(b))
                        .add(chat::Column::SellerId.eq(a)),
                ),
        )
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// The ids of every chat `user_id` takes part in.
pub async fn chats_of(db: &DatabaseConnection, user_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(chat::Entity::find()
        .select_only()
        .column(chat::Column::Id)
        .filter(
            Condition::any()
                .add(chat::Column::BuyerId.eq(user_id))
                .add(chat::Column::SellerId.eq(user_id)),
        )
        .into_tuple()
        .all(db)
        .await?)
}

/// The reactions on each of `message_ids`, per emoji in the order it was first used, with
/// `me` for `viewer_id`. Messages without reactions are absent.
pub async fn reactions_of<C: ConnectionTrait>(
    conn: &C,
    viewer_id: Uuid,
    message_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Reaction>>> {
    if message_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = reaction::Entity::find()
        .filter(reaction::Column::MessageId.is_in(message_ids.iter().copied()))
        .order_by_asc(reaction::Column::CreatedAt)
        .order_by_asc(reaction::Column::UserId)
        .all(conn)
        .await?;
    let mut out: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
    for row in rows {
        let list = out.entry(row.message_id).or_default();
        let me = row.user_id == viewer_id;
        match list.iter_mut().find(|r| r.emoji == row.emoji) {
            Some(r) => {
                r.count += 1;
                r.me |= me;
            }
            None => list.push(Reaction {
                emoji: row.emoji,
                count: 1,
                me,
            }),
        }
    }
    Ok(out)
}

/// The message `message_id` of the chat, for a participant writing to it (reacting): 403 for
/// admins, 404 for anyone else who is not a participant, and for a message of another chat.
/// The chat row is locked for the rest of the transaction, so reactions to one chat are
/// serialized and the limit of distinct emoji holds under concurrent calls.
async fn message_to_react_on(
    tx: &Tx,
    caller: AuthUser,
    chat_id: Uuid,
    message_id: Uuid,
) -> Result<message::Model> {
    require_writer_role(caller)?;
    let chat = visible(tx.conn(), caller, chat_id, true).await?;
    require_writer(&chat, caller)?;
    message::Entity::find_by_id(message_id)
        .one(tx.conn())
        .await?
        .filter(|m| m.chat_id == chat.id)
        .ok_or(ApiError::NotFound)
}

/// How many users react to `message_id` with `emoji`.
async fn count_of<C: ConnectionTrait>(conn: &C, message_id: Uuid, emoji: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(reaction::Entity::find()
        .filter(reaction::Column::MessageId.eq(message_id))
        .filter(reaction::Column::Emoji.eq(emoji))
        .count(conn)
        .await?)
}

/// `caller` reacts to a message with `emoji`. Idempotent: reacting again with the same emoji
/// changes nothing and publishes nothing. A new emoji beyond
/// [`MAX_DISTINCT_REACTIONS`](crate::dto::MAX_DISTINCT_REACTIONS) distinct ones on the message
/// is a 409 `too_many_reactions`. Emits `chat:reaction-added` to the chat.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %chat_id, %message_id))]
pub async fn react(
    bus: &EventBus,
    caller: AuthUser,
    chat_id: Uuid,
    message_id: Uuid,
    emoji: Emoji,
) -> Result<MessageReactions> {
    let mut tx = bus.begin().await?;
    let message = message_to_react_on(&tx, caller, chat_id, message_id).await?;
    let mut current = reactions_of(tx.conn(), caller.id, &[message.id])
        .await?
        .remove(&message.id)
        .unwrap_or_default();
    let existing = current.iter().find(|r| r.emoji == emoji.as_str());
    if existing.is_some_and(|r| r.me) {
        tx.commit().await?;
        return Ok(MessageReactions {
            message_id: message.id,
            reactions: current,
        });
    }
    if existing.is_none() && current.len() >= MAX_DISTINCT_REACTIONS {
        return Err(ApiError::conflict(
            ErrorCode::TooManyReactions,
            format!("a message has at most {MAX_DISTINCT_REACTIONS} distinct emoji"),
        ));
    }
    let row = reaction::ActiveModel {
        message_id: Set(message.id),
        user_id: Set(caller.id),
        emoji: Set(emoji.as_str().to_owned()),
        chat_id: Set(message.chat_id),
        created_at: Set(now()),
    };
    reaction::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                reaction::Column::MessageId,
                reaction::Column::UserId,
                reaction::Column::Emoji,
            ])
            .do_nothing()
            .to_owned(),
        )
        .try_insert()
        .exec_without_returning(tx.conn())
        .await?;
    let count = count_of(tx.conn(), message.id, emoji.as_str()).await?;
    match current.iter_mut().find(|r| r.emoji == emoji.as_str()) {
        Some(r) => {
            r.count = count;
            r.me = true;
        }
        None => current.push(Reaction {
            emoji: emoji.as_str().to_owned(),
            count,
            me: true,
        }),
    }
    tx.publish(ChatReactionAdded {
        chat_id: message.chat_id,
        message_id: message.id,
        emoji: emoji.as_str().to_owned(),
        user_id: caller.id,
        count,
    });
    tx.commit().await?;
    Ok(MessageReactions {
        message_id: message.id,
        reactions: current,
    })
}

/// `caller` takes back their reaction with `emoji`. Idempotent: without such a reaction
/// nothing changes and nothing is published. Emits `chat:reaction-removed` to the chat.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %chat_id, %message_id))]
pub async fn unreact(
    bus: &EventBus,
    caller: AuthUser,
    chat_id: Uuid,
    message_id: Uuid,
    emoji: Emoji,
) -> Result<MessageReactions> {
    let mut tx = bus.begin().await?;
    let message = message_to_react_on(&tx, caller, chat_id, message_id).await?;
    let removed = reaction::Entity::delete_many()
        .filter(reaction::Column::MessageId.eq(message.id))
        .filter(reaction::Column::UserId.eq(caller.id))
        .filter(reaction::Column::Emoji.eq(emoji.as_str()))
        .exec(tx.conn())
        .await?
        .rows_affected;
    if removed > 0 {
        let count = count_of(tx.conn(), message.id, emoji.as_str()).await?;
        tx.publish(ChatReactionRemoved {
            chat_id: message.chat_id,
            message_id: message.id,
            emoji: emoji.as_str().to_owned(),
            user_id: caller.id,
            count,
        });
    }
    let reactions = reactions_of(tx.conn(), caller.id, &[message.id])
        .await?
        .remove(&message.id)
        .unwrap_or_default();
    tx.commit().await?;
    Ok(MessageReactions {
        message_id: message.id,
        reactions,
    })
}
