//! The rules of payments: who may pay what, idempotent creation, who may see a payment.

use catalog::Role;
use catalog::contract::{Page, Payment, PaymentStatus, RequestStatus, new_id, now};
use catalog::events::PaymentCreated;
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AppState, AuthUser, Result};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::Payments;
use crate::dto::{CreatePaymentBody, CryptoView, PaymentListParams};
use crate::entity::payment;
use crate::provider::InvoiceRequest;

/// A crypto name as SHKeeper spells them (`BTC`, `ETH-USDT`, `BNB-USDC`).
fn parse_crypto(raw: &str) -> Result<String> {
    let c = raw.trim();
    let ok = !c.is_empty()
        && c.len() <= 32
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if ok {
        Ok(c.to_owned())
    } else {
        Err(ApiError::invalid(
            "crypto",
            "must be a crypto name such as \"BTC\"",
        ))
    }
}

/// The cryptos the provider accepts now.
pub async fn cryptos(ctx: &Payments) -> Result<Vec<CryptoView>> {
    let list = ctx.provider.list_cryptos().await?;
    Ok(list
        .into_iter()
        .map(|c| CryptoView {
            name: c.name,
            display_name: c.display_name,
        })
        .collect())
}

/// The open (pending or partially paid) payment of a request, if any.
pub(crate) async fn open_payment<C: ConnectionTrait>(
    conn: &C,
    request_id: Uuid,
) -> Result<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::OpenKey.eq(request_id))
        .one(conn)
        .await?)
}

/// The buyer pays its accepted request: an invoice for the accepted offer's price.
///
/// Answers `(true, payment)` when it made one, `(false, payment)` when an open payment
/// already existed (asking again is idempotent). The provider is asked first, with the new
/// payment's id as `external_id`; only then is the payment written, with its event, in one
/// transaction — so a provider failure leaves nothing behind. Two racing creates both ask the
/// provider, but the unique `open_key` lets only one payment exist; the other caller gets it.
#[tracing::instrument(skip_all, fields(buyer_id = %caller.id, request_id = %body.request_id))]
pub async fn create(
    state: &AppState,
    ctx: &Payments,
    caller: AuthUser,
    body: CreatePaymentBody,
) -> Result<(bool, Payment)> {
    caller.require(&[Role::Buyer])?;
    let crypto = parse_crypto(&body.crypto)?;
    let request_id = body.request_id;
    let req = requests::find(&state.db, request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if req.buyer_id != caller.id {
        return Err(ApiError::NotFound);
    }
    if let Some(existing) = open_payment(&state.db, request_id).await? {
        return Ok((false, existing.to_api()));
    }
    if req.status != RequestStatus::Accepted {
        return Err(ApiError::conflict(
            ErrorCode::RequestNotAccepted,
            "only an accepted request can be paid",
        ));
    }
    let offer = offers::accepted_offer(&state.db, request_id)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                ErrorCode::RequestNotAccepted,
                "the request has no accepted offer",
            )
        })?;
    let price = offer.price;

    let id = new_id();
    let invoice = ctx
        .provider
        .create_invoice(&InvoiceRequest {
            crypto: crypto.clone(),
            external_id: id.to_string(),
            fiat: price.currency.clone(),
            amount: price.amount,
            callback_url: ctx.payment_callback_url(),
        })
        .await?;

    let mut tx = state.bus.begin().await?;
    let still = requests::find(tx.conn(), request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if still.status != RequestStatus::Accepted {
        drop(tx);
        if let Some(existing) = open_payment(&state.db, request_id).await? {
            return Ok((false, existing.to_api()));
        }
        return Err(ApiError::conflict(
            ErrorCode::RequestNotAccepted,
            "only an accepted request can be paid",
        ));
    }
    let at = now();
    let row = payment::ActiveModel {
        id: Set(id),
        request_id: Set(request_id),
        offer_id: Set(offer.id),
        buyer_id: Set(req.buyer_id),
        seller_id: Set(offer.seller_id),
        amount: Set(price.amount.into()),
        currency: Set(price.currency.clone()),
        crypto: Set(crypto),
        crypto_amount: Set(invoice.crypto_amount.parse().map_err(ApiError::internal)?),
        pay_address: Set(invoice.wallet),
        exchange_rate: Set(invoice.exchange_rate.parse().map_err(ApiError::internal)?),
        paid_amount: Set(Decimal::new(0, price.amount.scale()).into()),
        paid_crypto: Set(Decimal::ZERO.into()),
        status: Set(PaymentStatus::Pending.into()),
        provider_payment_id: Set(Some(invoice.provider_id).filter(|p| !p.is_empty())),
        platform_fee_percent: Set(ctx.platform_fee_percent.into()),
        open_key: Set(Some(request_id)),
        created_at: Set(at),
        updated_at: Set(at),
    };
    match payment::Entity::insert(row)
        .exec_without_returning(tx.conn())
        .await
    {
        Ok(_) => {}
        Err(e) if kernel::error::is_unique_violation(&e) => {
            drop(tx);
            tracing::info!(%request_id, "a concurrent create won; answering its payment");
            let existing = open_payment(&state.db, request_id).await?.ok_or_else(|| {
                ApiError::conflict(
                    ErrorCode::PaymentConflict,
                    "another payment of this request changed meanwhile; try again",
                )
            })?;
            return Ok((false, existing.to_api()));
        }
        Err(e) => return Err(e.into()),
    }
    let created = payment::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("inserted payment vanished"))?
        .to_api();
    tx.publish(PaymentCreated(created.clone()));
    tx.commit().await?;
    Ok((true, created))
}

/// May `caller` see this payment: its buyer, its seller, admins.
pub(crate) fn can_see(caller: AuthUser, p: &payment::Model) -> bool {
    caller.is_admin() || p.buyer_id == caller.id || p.seller_id == caller.id
}

/// The payment if `caller` may see it; 404 otherwise.
pub(crate) async fn get<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    id: Uuid,
) -> Result<payment::Model> {
    match payment::Entity::find_by_id(id).one(conn).await? {
        Some(p) if can_see(caller, &p) => Ok(p),
        _ => Err(ApiError::NotFound),
    }
}

/// Payments visible to `caller`, newest first: of one request (`requestId`), or all the
/// caller's own (admins: all).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    params: PaymentListParams,
) -> Result<Page<Payment>> {
    let paging = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = paging.limit()?;
    let cursor: Option<Uuid> = paging.cursor()?;
    if let (Some(request_id), false) = (params.request_id, caller.is_admin()) {
        let req = requests::find(conn, request_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let is_seller = || async {
            Ok::<_, ApiError>(
                offers::accepted_offer(conn, request_id)
                    .await?
                    .is_some_and(|o| o.seller_id == caller.id),
            )
        };
        if req.buyer_id != caller.id && !is_seller().await? {
            return Err(ApiError::NotFound);
        }
    }
    let mut q = payment::Entity::find();
    if let Some(request_id) = params.request_id {
        q = q.filter(payment::Column::RequestId.eq(request_id));
    }
    if !caller.is_admin() {
        q = q.filter(
            Condition::any()
                .add(payment::Column::BuyerId.eq(caller.id))
                .add(payment::Column::SellerId.eq(caller.id)),
        );
    }
    if let Some(c) = cursor {
        q = q.filter(payment::Column::Id.lt(c));
    }
    let rows = q
        .order_by_desc(payment::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let items: Vec<Payment> = rows.iter().map(payment::Model::to_api).collect();
    Ok(page(items, limit, |p| p.id))
}
