//! The rules of notifications: what each event tells whom, and their read state.

use catalog::contract::{Notification, Page, now};
use catalog::events::{NotificationRead, NotificationReceived};
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AuthUser, EventBus, Result};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
};
use uuid::Uuid;

use crate::entity::notification;
use crate::subscribers::Draft;

/// Stores the notifications one event makes, at most one per (event, recipient) however
/// often the event is handled, and emits `notification:received` for each one that is new,
/// in the same transaction.
pub async fn record(
    bus: &EventBus,
    source_event_id: i64,
    kind: &str,
    drafts: Vec<Draft>,
) -> Result<usize> {
    if drafts.is_empty() {
        return Ok(0);
    }
    let mut tx = bus.begin().await?;
    let mut created = 0;
    for draft in drafts {
        let row = notification::Model {
            id: catalog::contract::new_id(),
            recipient_id: draft.recipient_id,
            kind: kind.to_owned(),
            title: draft.title,
            body: draft.body,
            data: draft.data,
            read_at: None,
            created_at: now(),
            source_event_id,
        };
        let inserted = notification::Entity::insert(notification::ActiveModel::from(row.clone()))
            .on_conflict(
                OnConflict::columns([
                    notification::Column::SourceEventId,
                    notification::Column::RecipientId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .try_insert()
            .exec_without_returning(tx.conn())
            .await?;
        if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
            tx.publish(NotificationReceived(row.to_api()));
            created += 1;
        }
    }
    tx.commit().await?;
    Ok(created)
}

/// The caller's notifications, newest first (by their time-ordered id); with `unread_only`,
/// those not read yet.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn list(
    db: &DatabaseConnection,
    caller: AuthUser,
    unread_only: bool,
    params: &PageParams,
) -> Result<Page<Notification>> {
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    let mut query =
        notification::Entity::find().filter(notification::Column::RecipientId.eq(caller.id));
    if unread_only {
        query = query.filter(notification::Column::ReadAt.is_null());
    }
    if let Some(before) = cursor {
        query = query.filter(notification::Column::Id.lt(before));
    }
    let rows = query
        .order_by_desc(notification::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let rows = page(rows, limit, |n| n.id);
    Ok(Page {
        items: rows.items.iter().map(notification::Model::to_api).collect(),
        next_cursor: rows.next_cursor,
    })
}

/// How many of the caller's notifications are not read yet.
pub async fn unread_count(db: &DatabaseConnection, caller: AuthUser) -> Result<u64> {
    Ok(notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(caller.id))
        .filter(notification::Column::ReadAt.is_null())
        .count(db)
        .await?)
}

/// Marks one of the caller's notifications read. Idempotent: an already read one is answered
/// as it is, and `notification:read` is emitted only when this call changed it. Someone
/// else's, or an unknown id, is a 404.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %id))]
pub async fn mark_read(bus: &EventBus, caller: AuthUser, id: Uuid) -> Result<Notification> {
    let mut tx = bus.begin().await?;
    let at = now();
    let changed = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(at))
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::RecipientId.eq(caller.id))
        .filter(notification::Column::ReadAt.is_null())
        .exec(tx.conn())
        .await?
        .rows_affected;
    let row = notification::Entity::find_by_id(id)
        .filter(notification::Column::RecipientId.eq(caller.id))
        .one(tx.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    if changed > 0 {
        tx.publish(NotificationRead {
            id: row.id,
            read_at: row.read_at.unwrap_or(at),
            recipient_id: row.recipient_id,
        });
    }
    tx.commit().await?;
    Ok(row.to_api())
}

/// Marks every unread notification of the caller read; emits `notification:read` for each
/// one this call changed, and answers how many that was.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn read_all(bus: &EventBus, caller: AuthUser) -> Result<u64> {
    let mut tx = bus.begin().await?;
    let at = now();
    let update = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(at))
        .filter(notification::Column::RecipientId.eq(caller.id))
        .filter(notification::Column::ReadAt.is_null());
    let ids: Vec<Uuid> = if tx.conn().support_returning() {
        update
            .exec_with_returning(tx.conn())
            .await?
            .into_iter()
            .map(|n| n.id)
            .collect()
    } else {
        // SQLite without RETURNING: this write transaction (BEGIN IMMEDIATE) already excludes
        // every other writer, so the rows read here are exactly the rows the update changes.
        let ids: Vec<Uuid> = notification::Entity::find()
            .select_only()
            .column(notification::Column::Id)
            .filter(notification::Column::RecipientId.eq(caller.id))
            .filter(notification::Column::ReadAt.is_null())
            .into_tuple()
            .all(tx.conn())
            .await?;
        update.exec(tx.conn()).await?;
        ids
    };
    for id in &ids {
        tx.publish(NotificationRead {
            id: *id,
            read_at: at,
            recipient_id: caller.id,
        });
    }
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// The newest `limit` unread notifications of `user_id` created at or before `until`, in
/// order, oldest first: what an email digest may list (the mail module then leaves out those
/// already in a digest and the muted kinds). The newest, so that a pile of old unread ones
/// (mailed long ago) never hides new ones. Works on a pool or inside a transaction.
pub async fn unread_until<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    until: catalog::contract::Timestamp,
    limit: u64,
) -> Result<Vec<Notification>> {
    Ok(notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(user_id))
        .filter(notification::Column::ReadAt.is_null())
        .filter(notification::Column::CreatedAt.lte(until))
        .order_by_desc(notification::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .iter()
        .rev()
        .map(notification::Model::to_api)
        .collect())
}

/// These notifications of `user_id` (those that exist), oldest first, read or not: what a
/// digest recorded before a crash still sends.
pub async fn by_ids<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Notification>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(user_id))
        .filter(notification::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(notification::Column::Id)
        .all(db)
        .await?
        .iter()
        .map(notification::Model::to_api)
        .collect())
}
