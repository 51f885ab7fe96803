//! The rules of purchase requests: who may create and see them, and the state machine —
//! `transition_from` is the only code that changes a request's status, and `complete_in`
//! the one road to `completed` for its buyer and for the automatic completion alike.

use std::sync::Arc;
use std::time::Duration;

use catalog::Role;
use catalog::contract::{Page, PurchaseRequest, RequestStatus, Timestamp, new_id, now};
use catalog::events::{RequestCreated, RequestStatusUpdated};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::timers::{self, Job, NewTimer, Outcome, TimerHandler};
use kernel::{ApiError, AuthUser, EventBus, Result, Tx};
use sea_orm::sea_query::{Expr, OnConflict, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
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
        accepted_seller_id: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        delivered_at: Set(None),
        auto_complete_at: Set(None),
        completed_at: Set(None),
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

/// The buyer confirms delivery of a `paid` or `delivered` request: it becomes `completed`
/// through `complete_in`, the same road as the automatic completion. The payout to the
/// seller is started by the payments module when it hears `request:status-updated`.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %request_id))]
pub async fn complete(
    bus: &EventBus,
    caller: AuthUser,
    request_id: Uuid,
) -> Result<PurchaseRequest> {
    // Only buyers complete: 403 for any other role, whatever the id.
    caller.require(&[Role::Buyer])?;
    let mut tx = bus.begin().await?;
    let req = visible(tx.conn(), caller, request_id).await?;
    if req.buyer_id != caller.id {
        return Err(ApiError::NotFound);
    }
    let updated = complete_in(
        &mut tx,
        request_id,
        &[RequestStatus::Paid, RequestStatus::Delivered],
        Some(caller.id),
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// The one road to `completed` after a payment, for the buyer ([`complete`]) and for the
/// automatic completion ([`AutoComplete`]): the same compare-and-set from one of `from`, the
/// same `request:status-updated` (whose `completed` starts the seller's payout in the
/// payments module), and the end of the automatic-completion timer, all inside `tx`.
async fn complete_in(
    tx: &mut Tx,
    request_id: Uuid,
    from: &[RequestStatus],
    actor: Option<Uuid>,
) -> Result<PurchaseRequest> {
    transition_from(
        tx,
        request_id,
        Some(from),
        RequestStatus::Completed,
        actor,
        None,
    )
    .await
}

/// The accepted seller says the goods are delivered (`paid` only): the request becomes
/// `delivered`, emits `request:status-updated`, and its automatic completion is scheduled
/// `after` from now in the same transaction (a durable timer, [`AUTO_COMPLETE`]).
///
/// 403 for buyers and admins (only sellers deliver), whatever the id; 404 for a seller whose
/// offer is not the accepted one (and unknown ids); 409 `invalid_transition` unless `paid`.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %request_id))]
pub async fn deliver(
    bus: &EventBus,
    caller: AuthUser,
    request_id: Uuid,
    after: Duration,
) -> Result<PurchaseRequest> {
    caller.require(&[Role::Seller])?;
    let mut tx = bus.begin().await?;
    let row = find_row(tx.conn(), request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if row.accepted_seller_id != Some(caller.id) {
        return Err(ApiError::NotFound);
    }
    let updated = transition_from(
        &mut tx,
        request_id,
        Some(&[RequestStatus::Paid]),
        RequestStatus::Delivered,
        Some(caller.id),
        Some(after),
    )
    .await?;
    let due = updated
        .auto_complete_at
        .ok_or_else(|| ApiError::internal("a delivered request without its completion time"))?;
    timers::schedule(
        tx.conn(),
        NewTimer {
            kind: AUTO_COMPLETE,
            key: request_id.to_string(),
            payload: json!({ "requestId": request_id }),
            run_at: due,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// The kind of the durable timer that completes a delivered request by itself, keyed by the
/// request's id (one per request).
pub const AUTO_COMPLETE: &str = "requests.auto-complete";

/// Runs [`AUTO_COMPLETE`] jobs: a request still `delivered` at its `autoCompleteAt` completes
/// through `complete_in` exactly as if its buyer had completed it (the same event, so the
/// same payout), the job ending in the same transaction, so a crash or a second node can never
/// complete it twice (the compare-and-set on the status decides any race). A request that was
/// completed or disputed meanwhile is left alone (leaving `delivered` also cancels the job
/// when it is not running, see `transition_from`).
pub struct AutoComplete {
    pub bus: EventBus,
}

impl AutoComplete {
    /// The handler, for [`kernel::Module::timers`].
    pub fn handler(bus: EventBus) -> Arc<dyn TimerHandler> {
        Arc::new(Self { bus })
    }
}

#[async_trait::async_trait]
impl TimerHandler for AutoComplete {
    fn kind(&self) -> &'static str {
        AUTO_COMPLETE
    }

    async fn run(&self, job: &Job) -> Result<Outcome> {
        let Some(request_id) = job
            .payload
            .get("requestId")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            tracing::error!(key = %job.key, "automatic-completion job without a request id; dropped");
            return Ok(Outcome::Done);
        };
        let mut tx = self.bus.begin().await?;
        let Some(row) = find_row(tx.conn(), request_id).await? else {
            return Ok(Outcome::Done);
        };
        if row.status() != RequestStatus::Delivered {
            return Ok(Outcome::Done);
        }
        if let Some(due) = row.auto_complete_at
            && due > now()
        {
            return Ok(Outcome::At(due));
        }
        match complete_in(&mut tx, request_id, &[RequestStatus::Delivered], None).await {
            Ok(_) => {}
            // The buyer completed it or a party disputed it a moment ago: nothing left to do.
            Err(ApiError::Conflict { .. }) => return Ok(Outcome::Done),
            Err(e) => return Err(e),
        }
        job.complete_in(tx.conn()).await?;
        tx.commit().await?;
        tracing::info!(%request_id, "delivered request completed automatically");
        Ok(Outcome::Done)
    }
}

/// Who takes part in a request and where it stands: what rules about both sides need
/// (reviews).
#[derive(Debug, Clone, PartialEq)]
pub struct Parties {
    pub request_id: Uuid,
    pub buyer_id: Uuid,
    /// The accepted offer's seller, once there is one.
    pub seller_id: Option<Uuid>,
    pub status: RequestStatus,
    /// When it became `completed`; `None` before.
    pub completed_at: Option<Timestamp>,
}

impl Parties {
    fn of(row: request::Model) -> Self {
        Self {
            request_id: row.id,
            buyer_id: row.buyer_id,
            seller_id: row.accepted_seller_id,
            status: row.status(),
            completed_at: row.completed_at,
        }
    }
}

/// A request's [`Parties`], whoever asks. `None` for an unknown id.
pub async fn parties<C: ConnectionTrait>(conn: &C, request_id: Uuid) -> Result<Option<Parties>> {
    Ok(find_row(conn, request_id).await?.map(Parties::of))
}

/// The [`Parties`] of a request, read inside `tx` while holding the request's row until `tx`
/// ends: a no-op update takes the row's write lock before the read, so transactions that
/// both hold it take turns and the later one sees what the earlier committed (two reviews of
/// one request, a review and its deadline). `None` for an unknown id.
pub async fn hold_parties(tx: &mut Tx, request_id: Uuid) -> Result<Option<Parties>> {
    request::Entity::update_many()
        .col_expr(request::Column::Status, Expr::col(request::Column::Status))
        .filter(request::Column::Id.eq(request_id))
        .exec(tx.conn())
        .await?;
    parties(tx.conn(), request_id).await
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
    let updated =
        transition_from(&mut tx, request_id, Some(from), next, Some(caller.id), None).await?;
    tx.commit().await?;
    Ok(updated)
}

/// The contract's state machine of a request: `open → accepted → paid → delivered →
/// completed` (`paid → completed` too), `open|accepted → cancelled`, `paid|delivered →
/// disputed → completed | refunded`.
fn can_become(current: RequestStatus, next: RequestStatus) -> bool {
    use RequestStatus::*;
    matches!(
        (current, next),
        (Open, Accepted)
            | (Accepted, Paid)
            | (Paid, Delivered)
            | (Paid | Delivered, Completed)
            | (Open | Accepted, Cancelled)
            | (Paid | Delivered, Disputed)
            | (Disputed, Completed | Refunded)
    )
}

/// Moves a request to `next` inside `tx`: how other modules change a request's status
/// (accepting an offer, a payment, a dispute and its resolution). `delivered` is reached only
/// through [`deliver`], which schedules the automatic completion with it.
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
    if next == RequestStatus::Delivered {
        return Err(ApiError::internal(
            "a request becomes delivered only through requests::service::deliver",
        ));
    }
    transition_from(tx, request_id, None, next, actor, None).await
}

/// The one place the state machine is enforced: [`transition`], further limited to requests
/// currently in one of `from`. Stamps the times that go with the new status (`deliveredAt`
/// and `autoCompleteAt` = `deliveredAt` + `deliver_after`, which `delivered` needs; the
/// completion time for `completed`), and leaving `delivered` cancels the pending
/// automatic-completion timer in the same transaction (a job already running finds the status
/// changed and does nothing).
async fn transition_from(
    tx: &mut Tx,
    request_id: Uuid,
    from: Option<&[RequestStatus]>,
    next: RequestStatus,
    actor: Option<Uuid>,
    deliver_after: Option<Duration>,
) -> Result<PurchaseRequest> {
    let mut row = find_row(tx.conn(), request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let current = row.status();
    if from.is_some_and(|allowed| !allowed.contains(&current)) || !can_become(current, next) {
        return Err(invalid_transition(current, next));
    }
    let at = now();
    let mut update = request::Entity::update_many()
        .col_expr(request::Column::Status, Expr::value(next.as_str()))
        .col_expr(request::Column::UpdatedAt, Expr::value(at));
    match next {
        RequestStatus::Delivered => {
            let Some(after) = deliver_after else {
                return Err(ApiError::internal("a delivery needs its completion delay"));
            };
            let due = chrono::Duration::from_std(after)
                .ok()
                .and_then(|d| at.checked_add_signed(d))
                .ok_or_else(|| ApiError::internal("the automatic completion is out of range"))?;
            update = update
                .col_expr(request::Column::DeliveredAt, Expr::value(at))
                .col_expr(request::Column::AutoCompleteAt, Expr::value(due));
            row.delivered_at = Some(at);
            row.auto_complete_at = Some(due);
        }
        RequestStatus::Completed => {
            update = update.col_expr(request::Column::CompletedAt, Expr::value(at));
            row.completed_at = Some(at);
        }
        _ => {}
    }
    let res = update
        .filter(request::Column::Id.eq(request_id))
        .filter(request::Column::Status.eq(current.as_str()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected != 1 {
        return Err(invalid_transition(current, next));
    }
    if current == RequestStatus::Delivered {
        timers::cancel(tx.conn(), AUTO_COMPLETE, &request_id.to_string()).await?;
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

/// Records the winning offer of a request that [`transition`] just moved to `accepted`, and
/// its seller (who may deliver, and who is reviewed), in the same transaction. 409
/// `invalid_transition` unless the request is `accepted` and has no accepted offer yet.
pub async fn set_accepted_offer(
    tx: &mut Tx,
    request_id: Uuid,
    offer_id: Uuid,
    seller_id: Uuid,
) -> Result<()> {
    let res = request::Entity::update_many()
        .col_expr(request::Column::AcceptedOfferId, Expr::value(offer_id))
        .col_expr(request::Column::AcceptedSellerId, Expr::value(seller_id))
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
            Open, Accepted, Paid, Delivered, Completed, Cancelled, Disputed, Refunded,
        ];
        let allowed = [
            (Open, Accepted),
            (Accepted, Paid),
            (Paid, Delivered),
            (Paid, Completed),
            (Delivered, Completed),
            (Open, Cancelled),
            (Accepted, Cancelled),
            (Paid, Disputed),
            (Delivered, Disputed),
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
