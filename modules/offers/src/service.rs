//! The rules of offers: who may offer, see, negotiate, accept, withdraw and reject. Every
//! status change is a compare-and-set from `pending`; accepting also moves the request
//! through [`requests::transition`], so two racing accepts cannot both win.

use catalog::Role;
use catalog::contract::{
    OfferMessage, OfferStatus, Page, PurchaseRequest, RequestStatus, SellerOffer, new_id, now,
};
use catalog::events::{
    EventName, OfferAccepted, OfferNegotiationUpdate, RequestOfferReceived, RequestStatusUpdated,
};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AuthUser, EventBus, Result, StoredEvent, Tx};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::dto::{NewCounter, NewOffer};
use crate::entity::{offer, offer_message};

fn not_pending(offer: &offer::Model) -> ApiError {
    ApiError::conflict(
        ErrorCode::InvalidTransition,
        format!("the offer is {}, not pending", offer.status),
    )
}

fn request_not_open() -> ApiError {
    ApiError::conflict(ErrorCode::RequestNotOpen, "the request is not open")
}

/// The offer with this id, whoever may see it. `None` when it does not exist.
async fn find<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<offer::Model>> {
    Ok(offer::Entity::find_by_id(id).one(conn).await?)
}

/// The accepted offer of a request (its price and seller are what the buyer pays), if any.
pub async fn accepted_offer<C: ConnectionTrait>(
    conn: &C,
    request_id: Uuid,
) -> Result<Option<SellerOffer>> {
    Ok(offer::Entity::find()
        .filter(offer::Column::RequestId.eq(request_id))
        .filter(offer::Column::Status.eq(OfferStatus::Accepted.as_str()))
        .one(conn)
        .await?
        .as_ref()
        .map(offer::Model::to_api))
}

/// The offer and its request if `caller` may see the offer: the request's buyer, the
/// offer's seller, admins. 404 for everyone else and for unknown ids.
async fn visible<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    offer_id: Uuid,
) -> Result<(offer::Model, PurchaseRequest)> {
    let offer = find(conn, offer_id).await?.ok_or(ApiError::NotFound)?;
    let req = requests::find(conn, offer.request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if caller.is_admin() || offer.seller_id == caller.id || req.buyer_id == caller.id {
        Ok((offer, req))
    } else {
        Err(ApiError::NotFound)
    }
}

/// A seller makes an offer on an open request. Opens the chat between that buyer and seller
/// and tells the buyer (`request:offer-received`), all in one transaction.
///
/// 404 when the request is not visible to the seller, 422 `payout_address_required`, 409
/// `request_not_open`, 409 `offer_exists` when this seller already has a pending offer on it
/// (enforced by a unique index, so concurrent duplicates fail too).
#[tracing::instrument(skip_all, fields(seller_id = %caller.id, %request_id))]
pub async fn create(
    bus: &EventBus,
    caller: AuthUser,
    request_id: Uuid,
    new: NewOffer,
) -> Result<SellerOffer> {
    caller.require(&[Role::Seller])?;
    let mut tx = bus.begin().await?;
    let req = requests::visible(tx.conn(), caller, request_id).await?;
    let seller = auth::user(tx.conn(), caller.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if seller
        .payout_address
        .as_deref()
        .is_none_or(|a| a.trim().is_empty())
    {
        return Err(ApiError::invalid_with_code(
            ErrorCode::PayoutAddressRequired,
            "payoutAddress",
            "set a payout address (PATCH /api/users/me) before making offers",
        ));
    }
    if !requests::hold_open(&mut tx, request_id).await? {
        return Err(request_not_open());
    }
    let at = now();
    let row = offer::ActiveModel {
        id: Set(new_id()),
        request_id: Set(request_id),
        seller_id: Set(caller.id),
        price_amount: Set(new.price.amount.into()),
        price_currency: Set(new.price.currency.clone()),
        message: Set(new.message.clone()),
        status: Set(OfferStatus::Pending.into()),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = match row.insert(tx.conn()).await {
        Ok(m) => m,
        Err(e) if kernel::error::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                ErrorCode::OfferExists,
                "you already have a pending offer on this request",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    offer_message::ActiveModel {
        id: Set(new_id()),
        offer_id: Set(model.id),
        author_id: Set(caller.id),
        message: Set(new.message),
        price_amount: Set(Some(model.price_amount)),
        price_currency: Set(Some(model.price_currency.clone())),
        created_at: Set(at),
    }
    .insert(tx.conn())
    .await?;
    requests::record_offerer(&mut tx, request_id, caller.id).await?;
    chat::open_for_offer(&mut tx, request_id, req.buyer_id, caller.id).await?;
    let api = model.to_api();
    tx.publish(RequestOfferReceived {
        request_id,
        offer: api.clone(),
        buyer_id: req.buyer_id,
    });
    tx.commit().await?;
    Ok(api)
}

/// The offers on a request, newest first: all of them for its buyer and admins, a seller's
/// own for a seller, each with its seller's name and rating (`seller`). 404 when the request
/// is not visible to `caller`.
pub async fn list_for_request<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    request_id: Uuid,
    params: PageParams,
) -> Result<Page<SellerOffer>> {
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    let req = requests::visible(conn, caller, request_id).await?;
    let mut cond = Condition::all().add(offer::Column::RequestId.eq(request_id));
    if !(caller.is_admin() || req.buyer_id == caller.id) {
        cond = cond.add(offer::Column::SellerId.eq(caller.id));
    }
    if let Some(after) = cursor {
        cond = cond.add(offer::Column::Id.lt(after));
    }
    let rows = offer::Entity::find()
        .filter(cond)
        .order_by_desc(offer::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let mut seller_ids: Vec<Uuid> = rows.iter().map(|o| o.seller_id).collect();
    seller_ids.sort_unstable();
    seller_ids.dedup();
    let sellers = auth::profiles(conn, &seller_ids).await?;
    let items = rows
        .iter()
        .map(|o| SellerOffer {
            seller: sellers.get(&o.seller_id).cloned(),
            ..o.to_api()
        })
        .collect();
    Ok(page(items, limit, |o| o.id))
}

/// The negotiation thread of an offer, oldest first (the opening message, then each
/// counter). Same visibility as the offer.
pub async fn messages<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    offer_id: Uuid,
    params: PageParams,
) -> Result<Page<OfferMessage>> {
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    visible(conn, caller, offer_id).await?;
    let mut cond = Condition::all().add(offer_message::Column::OfferId.eq(offer_id));
    if let Some(after) = cursor {
        cond = cond.add(offer_message::Column::Id.gt(after));
    }
    let rows = offer_message::Entity::find()
        .filter(cond)
        .order_by_asc(offer_message::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    Ok(page(
        rows.iter().map(offer_message::Model::to_api).collect(),
        limit,
        |m| m.id,
    ))
}

/// The request's buyer or the offer's seller adds a message to a pending offer's
/// negotiation; a price, when given, becomes the offer's price. Emits
/// `offer:negotiation-update`. 403 for admins (they see negotiations, never take part),
/// whatever the id; 404 when the offer is not the caller's; 409 `invalid_transition` when the
/// offer is not pending, `request_not_open` when its request is no longer open.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %offer_id))]
pub async fn counter(
    bus: &EventBus,
    caller: AuthUser,
    offer_id: Uuid,
    new: NewCounter,
) -> Result<OfferMessage> {
    caller
        .require(&[Role::Buyer, Role::Seller])
        .map_err(|_| ApiError::forbidden("admins see negotiations but do not negotiate"))?;
    let mut tx = bus.begin().await?;
    let (current, req) = visible(tx.conn(), caller, offer_id).await?;
    if caller.id != req.buyer_id && caller.id != current.seller_id {
        return Err(ApiError::NotFound);
    }
    if current.status() != OfferStatus::Pending {
        return Err(not_pending(&current));
    }
    if !requests::hold_open(&mut tx, req.id).await? {
        return Err(request_not_open());
    }
    let at = now();
    let mut update =
        offer::Entity::update_many().col_expr(offer::Column::UpdatedAt, Expr::value(at));
    if let Some(price) = &new.price {
        update = update
            .col_expr(
                offer::Column::PriceAmount,
                Expr::value(price.amount.to_string()),
            )
            .col_expr(
                offer::Column::PriceCurrency,
                Expr::value(price.currency.clone()),
            );
    }
    let res = update
        .filter(offer::Column::Id.eq(offer_id))
        .filter(offer::Column::Status.eq(OfferStatus::Pending.as_str()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected != 1 {
        return Err(not_pending(&current));
    }
    let message = offer_message::ActiveModel {
        id: Set(new_id()),
        offer_id: Set(offer_id),
        author_id: Set(caller.id),
        message: Set(new.message),
        price_amount: Set(new.price.as_ref().map(|p| p.amount.into())),
        price_currency: Set(new.price.as_ref().map(|p| p.currency.clone())),
        created_at: Set(at),
    }
    .insert(tx.conn())
    .await?
    .to_api();
    tx.publish(OfferNegotiationUpdate {
        offer_id,
        request_id: req.id,
        message: message.clone(),
        buyer_id: req.buyer_id,
        seller_id: current.seller_id,
    });
    tx.commit().await?;
    Ok(message)
}

/// The request's buyer accepts a pending offer of an open request: the offer becomes
/// `accepted`, the request's other pending offers `rejected`, the request `accepted` with
/// this offer. Emits `request:status-updated` and `offer:accepted`. 403 for any role but
/// buyers, whatever the id; 404 when the offer is not on the caller's request.
///
/// The request moves first (a compare-and-set from `open`), so of two racing accepts on one
/// request exactly one commits; the other gets 409 `request_not_open` (or
/// `invalid_transition` when its offer was already rejected).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %offer_id))]
pub async fn accept(bus: &EventBus, caller: AuthUser, offer_id: Uuid) -> Result<SellerOffer> {
    caller.require(&[Role::Buyer])?;
    let mut tx = bus.begin().await?;
    let (current, req) = visible(tx.conn(), caller, offer_id).await?;
    if caller.id != req.buyer_id {
        return Err(ApiError::NotFound);
    }
    if current.status() != OfferStatus::Pending {
        return Err(not_pending(&current));
    }
    match requests::transition(&mut tx, req.id, RequestStatus::Accepted, Some(caller.id)).await {
        Ok(_) => {}
        Err(ApiError::Conflict { .. }) => return Err(request_not_open()),
        Err(e) => return Err(e),
    }
    let accepted = set_status(&mut tx, &current, OfferStatus::Accepted).await?;
    offer::Entity::update_many()
        .col_expr(
            offer::Column::Status,
            Expr::value(OfferStatus::Rejected.as_str()),
        )
        .col_expr(offer::Column::UpdatedAt, Expr::value(accepted.updated_at))
        .filter(offer::Column::RequestId.eq(req.id))
        .filter(offer::Column::Status.eq(OfferStatus::Pending.as_str()))
        .filter(offer::Column::Id.ne(offer_id))
        .exec(tx.conn())
        .await?;
    requests::set_accepted_offer(&mut tx, req.id, offer_id, current.seller_id).await?;
    tx.publish(OfferAccepted {
        offer_id,
        request_id: req.id,
        seller_id: current.seller_id,
        buyer_id: req.buyer_id,
    });
    tx.commit().await?;
    Ok(accepted.to_api())
}

/// The offer's seller withdraws its pending offer. 403 for any role but sellers, whatever
/// the id; 404 when the offer is not the caller's.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %offer_id))]
pub async fn withdraw(bus: &EventBus, caller: AuthUser, offer_id: Uuid) -> Result<SellerOffer> {
    caller.require(&[Role::Seller])?;
    let mut tx = bus.begin().await?;
    let (current, _) = visible(tx.conn(), caller, offer_id).await?;
    if caller.id != current.seller_id {
        return Err(ApiError::NotFound);
    }
    let withdrawn = set_status(&mut tx, &current, OfferStatus::Withdrawn).await?;
    tx.commit().await?;
    Ok(withdrawn.to_api())
}

/// The request's buyer rejects a pending offer. 403 for any role but buyers, whatever the
/// id; 404 when the offer is not on the caller's request.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, %offer_id))]
pub async fn reject(bus: &EventBus, caller: AuthUser, offer_id: Uuid) -> Result<SellerOffer> {
    caller.require(&[Role::Buyer])?;
    let mut tx = bus.begin().await?;
    let (current, req) = visible(tx.conn(), caller, offer_id).await?;
    if caller.id != req.buyer_id {
        return Err(ApiError::NotFound);
    }
    let rejected = set_status(&mut tx, &current, OfferStatus::Rejected).await?;
    tx.commit().await?;
    Ok(rejected.to_api())
}

/// Moves a pending offer to `next` with a compare-and-set; 409 `invalid_transition` when it
/// is no longer pending.
async fn set_status(
    tx: &mut Tx,
    current: &offer::Model,
    next: OfferStatus,
) -> Result<offer::Model> {
    if current.status() != OfferStatus::Pending {
        return Err(not_pending(current));
    }
    let at = now();
    let res = offer::Entity::update_many()
        .col_expr(offer::Column::Status, Expr::value(next.as_str()))
        .col_expr(offer::Column::UpdatedAt, Expr::value(at))
        .filter(offer::Column::Id.eq(current.id))
        .filter(offer::Column::Status.eq(OfferStatus::Pending.as_str()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected != 1 {
        return Err(not_pending(current));
    }
    let mut updated = current.clone();
    updated.status = next.into();
    updated.updated_at = at;
    Ok(updated)
}

/// Subscriber: when a request is cancelled, its pending offers can never be accepted; they
/// become `rejected`. Idempotent. (An accept rejects the other offers in its own transaction,
/// and no other status leaves a pending offer behind.)
pub async fn close_pending_offers(db: &DatabaseConnection, event: &StoredEvent) -> Result<()> {
    if event.name != EventName::RequestStatusUpdated {
        return Ok(());
    }
    let Some(update) = event.decode::<RequestStatusUpdated>() else {
        tracing::warn!(
            event_id = event.id,
            "request:status-updated with an unreadable payload; skipped"
        );
        return Ok(());
    };
    if update.status != RequestStatus::Cancelled {
        return Ok(());
    }
    offer::Entity::update_many()
        .col_expr(
            offer::Column::Status,
            Expr::value(OfferStatus::Rejected.as_str()),
        )
        .col_expr(offer::Column::UpdatedAt, Expr::value(now()))
        .filter(offer::Column::RequestId.eq(update.request_id))
        .filter(offer::Column::Status.eq(OfferStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Answers `connections`: may this user be in `request-{id}`?
pub struct Access {
    pub db: DatabaseConnection,
}

#[async_trait::async_trait]
impl kernel::ports::RequestAccess for Access {
    /// Its buyer, a seller with an offer on it (in any state), any admin; `false` for an
    /// unknown request.
    async fn can_follow_request(&self, user: AuthUser, request_id: Uuid) -> Result<bool> {
        let Some(req) = requests::find(&self.db, request_id).await? else {
            return Ok(false);
        };
        if user.is_admin() || req.buyer_id == user.id {
            return Ok(true);
        }
        let mine = offer::Entity::find()
            .filter(offer::Column::RequestId.eq(request_id))
            .filter(offer::Column::SellerId.eq(user.id))
            .one(&self.db)
            .await?;
        Ok(mine.is_some())
    }
}
