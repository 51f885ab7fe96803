//! The rules of purchase requests: who may create and see them, and the state machine —
//! [`transition`] is the only code that changes a request's status.

use catalog::Role;
use catalog::contract::{Page, PurchaseRequest, RequestStatus, new_id, now};
use catalog::events::{RequestCreated, RequestStatusUpdated};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AuthUser, EventBus, Result, Tx};
use sea_orm::sea_query::{Expr, OnConflict, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::dto::{NewRequest, RequestFilter};
use crate::entity::{request, request_seller};

fn invalid_transition(from: RequestStatus, to: RequestStatus) -> ApiError {
    ApiError::conflict(
        ErrorCode::InvalidTransition,
        format!(
            "a request that is {} cannot become {}",
            from.as_str(),
            to.as_str()
        ),
    )
}

async fn find_row<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<request::Model>> {
    Ok(request::Entity::find_by_id(id).one(conn).await?)
}

/// The request with this id, whoever may see it. `None` when it does not exist. For rules
/// that depend on the caller, see [`visible`].
pub async fn find<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<PurchaseRequest>> {
    Ok(find_row(conn, id)
        .await?
        .as_ref()
        .map(request::Model::to_api))
}

/// The ids of the requests that are in `status` now, as a sub-query other modules filter
/// on (`Column::RequestId.in_subquery(..)`) without naming this module's tables.
pub fn ids_with_status(status: RequestStatus) -> SelectStatement {
    Query::select()
        .column(request::Column::Id)
        .from(request::Entity)
        .and_where(request::Column::Status.eq(status.as_str()))
        .to_owned()
}

/// Whether `seller_id` has made an offer (in any state) on this request.
async fn is_offerer<C: ConnectionTrait>(
    conn: &C,
    request_id: Uuid,
    seller_id: Uuid,
) -> Result<bool> {
    Ok(request_seller::Entity::find_by_id((request_id, seller_id))
        .one(conn)
        .await?
        .is_some())
}

/// Who may see a request: its buyer, admins, and sellers while it is open or once they
/// have made an offer on it.
async fn can_view<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    req: &request::Model,
) -> Result<bool> {
    if req.buyer_id == caller.id || caller.is_admin() {
        return Ok(true);
    }
    Ok(match caller.role {
        Role::Seller => {
            req.status() == RequestStatus::Open || is_offerer(conn, req.id, caller.id).await?
        }
        Role::Buyer | Role::Admin => false,
    })
}

/// The request if `caller` may see it; 404 otherwise (also for unknown ids).
pub async fn visible<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    id: Uuid,
) -> Result<PurchaseRequest> {
    match find_row(conn, id).await? {
        Some(req) if can_view(conn, caller, &req).await? => Ok(req.to_api()),
        _ => Err(ApiError::NotFound),
    }
}

/// Creates an open request for a buyer and announces it to sellers (`request:created`).
#[tracing::instrument(skip_all, fields(buyer_id = %caller.id))]
pub async fn create(bus: &EventBus, caller: AuthUser, new: NewRequest) -> Result<PurchaseRequest> {
    caller.require(&[Role::Buyer])?;
    let at = now();
    let row = request::ActiveModel {
        id: Set(new_id()),
        buyer_id: Set(caller.id),
        title: Set(new.title),
        description: Set(new.description),
        category: Set(new.category),
        budget_amount: Set(new.budget.as_ref().map(|m| m.amount.into())),
        budget_currency: Set(new.budget.as_ref().map(|m| m.currency.clone())),
        status: Set(RequestStatus::Open.into()),
        accepted_offer_id: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let mut tx = bus.begin().await?;
    let model = row.insert(tx.conn()).await?;
    let api = model.to_api();
    tx.publish(RequestCreated(api.clone()));
    tx.commit().await?;
    Ok(api)
}

/// The requests `caller` may list, newest first, or as `filter.search` asks (text, budget,
/// sort: see [`crate::search`]). Pages are cut on the (time-ordered) id, or on the sort key
/// and the id, so requests created between two pages never shift the next one.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    filter: RequestFilter,
    params: PageParams,
) -> Result<Page<PurchaseRequest>> {
    let cond = list_visibility(caller, &filter);
    if filter.search.is_active() {
        return crate::search::page_of(conn, cond, &filter.search, &params).await;
    }
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    let mut cond = cond;
    if let Some(after) = cursor {
        cond = cond.add(request::Column::Id.lt(after));
    }
    let rows = request::Entity::find()
        .filter(cond)
        .order_by_desc(request::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let items: Vec<PurchaseRequest> = rows.iter().map(request::Model::to_api).collect();
    Ok(page(items, limit, |r| r.id))
}

/// Which requests a list shows `caller` (status, category and `mine` included): buyers
/// their own; sellers the open ones, or those they made an offer on; admins the open ones,
/// or any status they ask for.
fn list_visibility(caller: AuthUser, filter: &RequestFilter) -> Condition {
    let offered = || {
        request::Column::Id.in_subquery(
            Query::select()
                .column(request_seller::Column::RequestId)
                .from(request_seller::Entity)
                .and_where(request_seller::Column::SellerId.eq(caller.id))
                .to_owned(),
        )
    };
    let status_is = |s: RequestStatus| request::Column::Status.eq(s.as_str());
    let mut cond = Condition::all();
    match caller.role {
        Role::Buyer => {
            cond = cond.add(request::Column::BuyerId.eq(caller.id));
            if let Some(s) = filter.status {
                cond = cond.add(status_is(s));
            }
        }
        Role::Seller if filter.mine => {
            cond = cond.add(offered());
            if let Some(s) = filter.status {
                cond = cond.add(status_is(s));
            }
        }
        Role::Seller => match filter.status {
            None | Some(RequestStatus::Open) => cond = cond.add(status_is(RequestStatus::Open)),
            Some(s) => cond = cond.add(status_is(s)).add(offered()),
        },
        Role::Admin if filter.mine => {
            cond = cond.add(request::Column::BuyerId.eq(caller.id));
            if let Some(s) = filter.status {
                cond = cond.add(status_is(s));
            }
        }
        Role::Admin => cond = cond.add(status_is(filter.status.unwrap_or(RequestStatus::Open))),
    }
    if let Some(category) = &filter.category {
        cond = cond.add(request::Column::Category.eq(category.as_str()));
    }
    cond
}

/// The buyer cancels its request (`open` or `accepted` only).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %request_id))]
pub async fn cancel(bus: &EventBus, caller: AuthUser, request_id: Uuid) -> Result<PurchaseRequest> {
    by_its_buyer(
        bus,
        caller,
        request_id,
        &[RequestStatus::Open, RequestStatus::Accepted],
        RequestStatus::Cancelled,
    )
    .await
}

/// The buyer confirms delivery of a paid request: it becomes `completed`. The payout to the
/// seller is started by the payments module when it hears `request:status-updated`.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %request_id))]
pub async fn complete(
    bus: &EventBus,
    caller: AuthUser,
    request_id: Uuid,
) -> Result<PurchaseRequest> {
    by_its_buyer(
        bus,
        caller,
        request_id,
        &[RequestStatus::Paid],
        RequestStatus::Completed,
    )
    .await
}

async fn by_its_buyer(
    bus: &EventBus,
    caller: AuthUser,
    request_id: Uuid,
    from: &[RequestStatus],
    next: RequestStatus,
) -> Result<PurchaseRequest> {
    // Only buyers ever act on requests this way: 403 for any other role, whatever the id.
    caller.require(&[Role::Buyer])?;
    let mut tx = bus.begin().await?;
    let req = visible(tx.conn(), caller, request_id).await?;
    if req.buyer_id != caller.id {
        return Err(ApiError::NotFound);
    }
    let updated = transition_from(&mut tx, request_id, Some(from), next, Some(caller.id)).await?;
    tx.commit().await?;
    Ok(updated)
}

/// The contract's state machine of a request: `open → accepted → paid → completed`,
/// `open|accepted → cancelled`, `paid → disputed → completed | refunded`.
fn can_become(current: RequestStatus, next: RequestStatus) -> bool {
    use RequestStatus::*;
    matches!(
        (current, next),
        (Open, Accepted)
            | (Accepted, Paid)
            | (Paid, Completed)
            | (Open | Accepted, Cancelled)
            | (Paid, Disputed)
            | (Disputed, Completed | Refunded)
    )
}

/// Moves a request to `next` inside `tx` — the one place the state machine is enforced.
///
/// Reads the current status, checks [`can_become`], and writes with a
/// compare-and-set (`UPDATE .. WHERE id = ? AND status = <current>`), so two racing
/// transitions cannot both win. Publishes `request:status-updated` (audience: the buyer,
/// the request; `actor` is who caused it, `None` for the system).
///
/// Fails with 404 for an unknown id and 409 `invalid_transition` when the move is illegal or
/// another transaction changed the status first. On error, drop `tx` (roll back).
pub async fn transition(
    tx: &mut Tx,
    request_id: Uuid,
    next: RequestStatus,
    actor: Option<Uuid>,
) -> Result<PurchaseRequest> {
    transition_from(tx, request_id, None, next, actor).await
}

/// [`transition`], further limited to requests currently in one of `from`.
async fn transition_from(
    tx: &mut Tx,
    request_id: Uuid,
    from: Option<&[RequestStatus]>,
    next: RequestStatus,
    actor: Option<Uuid>,
) -> Result<PurchaseRequest> {
    let mut row = find_row(tx.conn(), request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let current = row.status();
    if from.is_some_and(|allowed| !allowed.contains(&current)) || !can_become(current, next) {
        return Err(invalid_transition(current, next));
    }
    let at = now();
    let res = request::Entity::update_many()
        .col_expr(request::Column::Status, Expr::value(next.as_str()))
        .col_expr(request::Column::UpdatedAt, Expr::value(at))
        .filter(request::Column::Id.eq(request_id))
        .filter(request::Column::Status.eq(current.as_str()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected != 1 {
        return Err(invalid_transition(current, next));
    }
    tx.publish(RequestStatusUpdated {
        request_id,
        status: next,
        buyer_id: row.buyer_id,
        actor_id: actor,
    });
    row.status = next.into();
    row.updated_at = at;
    Ok(row.to_api())
}

/// Records the winning offer of a request that [`transition`] just moved to `accepted`, in
/// the same transaction. 409 `invalid_transition` unless the request is `accepted` and has
/// no accepted offer yet.
pub async fn set_accepted_offer(tx: &mut Tx, request_id: Uuid, offer_id: Uuid) -> Result<()> {
    let res = request::Entity::update_many()
        .col_expr(request::Column::AcceptedOfferId, Expr::value(offer_id))
        .filter(request::Column::Id.eq(request_id))
        .filter(request::Column::Status.eq(RequestStatus::Accepted.as_str()))
        .filter(request::Column::AcceptedOfferId.is_null())
        .exec(tx.conn())
        .await?;
    if res.rows_affected != 1 {
        return Err(ApiError::conflict(
            ErrorCode::InvalidTransition,
            "the request already has an accepted offer",
        ));
    }
    Ok(())
}

/// Inside `tx`, confirms the request is `open` and keeps it so until `tx` ends: a no-op
/// compare-and-set update that takes the row's write lock, so a concurrent accept or cancel
/// waits for this transaction (or this one sees their result). `false` when it is not open
/// or does not exist.
pub async fn hold_open(tx: &mut Tx, request_id: Uuid) -> Result<bool> {
    let res = request::Entity::update_many()
        .col_expr(request::Column::Status, Expr::col(request::Column::Status))
        .filter(request::Column::Id.eq(request_id))
        .filter(request::Column::Status.eq(RequestStatus::Open.as_str()))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Remembers, inside the offer's transaction, that `seller_id` made an offer on this
/// request (it may see the request from now on). Idempotent.
pub async fn record_offerer(tx: &mut Tx, request_id: Uuid, seller_id: Uuid) -> Result<()> {
    let row = request_seller::ActiveModel {
        request_id: Set(request_id),
        seller_id: Set(seller_id),
        created_at: Set(now()),
    };
    request_seller::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                request_seller::Column::RequestId,
                request_seller::Column::SellerId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .try_insert()
        .exec(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    #[test]
    fn the_state_machine_allows_exactly_the_contracts_moves() {
        let all = [
            Open, Accepted, Paid, Completed, Cancelled, Disputed, Refunded,
        ];
        let allowed = [
            (Open, Accepted),
            (Accepted, Paid),
            (Paid, Completed),
            (Open, Cancelled),
            (Accepted, Cancelled),
            (Paid, Disputed),
            (Disputed, Completed),
            (Disputed, Refunded),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    can_become(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }
}
