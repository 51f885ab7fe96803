//! Money that needs a person: failed payouts, payments that completed for a cancelled
//! request, and provider callbacks that claimed more than they paid (an underpaid or
//! other-currency `PAID`), listed for admins with the action that applies, and the two
//! actions — retry a failed payout, refund a payment of a cancelled request.
//!
//! Never paying twice: an action creates a NEW payout (a new id, so a new `external_id` at the
//! provider), submitted by the poller with the same look-up-before-resubmit discipline as any
//! payout; the failed one stays as history. The partial unique index on live payouts (not
//! `failed`) allows at most one per payment and kind, whatever races; and no payout of one
//! kind is started while a payout of the other kind is live or done (a payment is either
//! released to the seller or refunded to the buyer, never both).

use catalog::Role;
use catalog::contract::{Page, PaymentStatus, Payout, PayoutKind, PayoutStatus, RequestStatus};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AuthUser, EventBus, Result, Tx};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::dto::AttentionItem;
use crate::entity::payout::{self, kind_str, status_str};
use crate::entity::{payment, webhook_event};
use crate::payouts::{create_payout, newest_for};
use crate::webhook::OTHER_CURRENCY;

/// `AttentionItem::kind` of a failed payout nobody has replaced yet.
pub const PAYOUT_FAILED: &str = "payout_failed";
/// `AttentionItem::kind` of a completed payment whose request is cancelled, not refunded yet.
pub const PAID_AFTER_CANCEL: &str = "paid_after_cancel";
/// `AttentionItem::kind` of a `PAID` callback short of the invoice.
pub const UNDERPAID_CALLBACK: &str = "underpaid_callback";
/// `AttentionItem::kind` of a `PAID` callback in another currency or crypto.
pub const OTHER_CURRENCY_CALLBACK: &str = "other_currency_callback";

/// A failed payout that no newer payout of the same payment and kind has replaced.
const NOT_SUPERSEDED: &str = "NOT EXISTS (SELECT 1 FROM payouts AS newer \
     WHERE newer.payment_id = payouts.payment_id AND newer.kind = payouts.kind \
     AND newer.id > payouts.id)";
/// A payment for which no refund payout was ever started.
const NO_REFUND_STARTED: &str = "NOT EXISTS (SELECT 1 FROM payouts \
     WHERE payouts.payment_id = payments.id AND payouts.kind = 'refund')";

/// Money that needs a person, newest first (admins; 403 otherwise): failed payouts with the
/// action `retry_payout`, and completed payments of cancelled requests with `refund_payment`.
/// An item leaves the list once its action has started a payout.
pub async fn attention<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    params: PageParams,
) -> Result<Page<AttentionItem>> {
    caller.require(&[Role::Admin])?;
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;

    let mut failed = payout::Entity::find()
        .filter(payout::Column::Status.eq(status_str(PayoutStatus::Failed)))
        .filter(Expr::cust(NOT_SUPERSEDED));
    let mut paid = payment::Entity::find()
        .filter(payment::Column::Status.eq(PaymentStatus::Completed.as_str()))
        .filter(
            payment::Column::RequestId
                .in_subquery(requests::ids_with_status(RequestStatus::Cancelled)),
        )
        .filter(Expr::cust(NO_REFUND_STARTED));
    if let Some(c) = cursor {
        failed = failed.filter(payout::Column::Id.lt(c));
        paid = paid.filter(payment::Column::Id.lt(c));
    }
    let failed = failed
        .order_by_desc(payout::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let paid = paid
        .order_by_desc(payment::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;

    let mut items = Vec::with_capacity(failed.len() + paid.len());
    for p in failed {
        items.push(AttentionItem {
            kind: PAYOUT_FAILED.to_owned(),
            id: p.id,
            request_id: p.request_id,
            action: Some("retry_payout".to_owned()),
            action_path: Some(format!("/api/admin/payouts/{}/retry", p.id)),
            reason: p
                .failure_reason
                .clone()
                .unwrap_or_else(|| "the payout failed".to_owned()),
            blocked_by: blocker(conn, p.recipient_id).await?,
            payout: Some(p.to_api()),
            payment: None,
            since: p.updated_at,
        });
    }
    for p in paid {
        items.push(AttentionItem {
            kind: PAID_AFTER_CANCEL.to_owned(),
            id: p.id,
            request_id: p.request_id,
            action: Some("refund_payment".to_owned()),
            action_path: Some(format!("/api/admin/payments/{}/refund", p.id)),
            reason: "the payment completed after its request was cancelled; the buyer's money \
                     is held"
                .to_owned(),
            blocked_by: blocker(conn, p.buyer_id).await?,
            payment: Some(p.to_api()),
            payout: None,
            since: p.updated_at,
        });
    }
    for (event, p) in short_claims(conn, cursor, limit).await? {
        let other_currency = event.claim_mismatch.as_deref() == Some(OTHER_CURRENCY);
        items.push(AttentionItem {
            kind: if other_currency {
                OTHER_CURRENCY_CALLBACK
            } else {
                UNDERPAID_CALLBACK
            }
            .to_owned(),
            id: event.id,
            request_id: p.request_id,
            action: None,
            action_path: None,
            reason: event
                .detail
                .clone()
                .unwrap_or_else(|| "the provider claimed more than was paid".to_owned()),
            blocked_by: None,
            payment: Some(p.to_api()),
            payout: None,
            since: event.received_at,
        });
    }
    // Ids are time-ordered UUIDs across the tables, so one cursor pages the merged list.
    items.sort_by_key(|i| std::cmp::Reverse(i.id));
    Ok(page(items, limit, |i| i.id))
}

/// Callbacks that claimed more than they paid ([`UNDERPAID`], [`OTHER_CURRENCY`]) whose
/// payment has not completed since (nor been refunded), newest first, with their payment.
async fn short_claims<C: ConnectionTrait>(
    conn: &C,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(webhook_event::Model, payment::Model)>> {
    let q = webhook_event::Entity::find()
        .filter(webhook_event::Column::ClaimMismatch.is_not_null())
        .filter(webhook_event::Column::Kind.eq("payment"));
    let mut out = Vec::new();
    // Read in pages until `limit + 1` still-open claims are found (settled ones are skipped).
    let mut before = cursor;
    loop {
        let mut page_q = q.clone();
        if let Some(b) = before {
            page_q = page_q.filter(webhook_event::Column::Id.lt(b));
        }
        let rows = page_q
            .order_by_desc(webhook_event::Column::Id)
            .limit(limit + 1)
            .all(conn)
            .await?;
        let done = rows.len() as u64 <= limit;
        for e in rows {
            before = Some(e.id);
            let Some(pid) = e
                .external_id
                .as_deref()
                .and_then(|x| Uuid::parse_str(x).ok())
            else {
                continue;
            };
            let Some(p) = payment::Entity::find_by_id(pid).one(conn).await? else {
                continue;
            };
            if matches!(
                p.status(),
                PaymentStatus::Completed | PaymentStatus::Refunded
            ) {
                continue;
            }
            out.push((e, p));
            if out.len() as u64 > limit {
                return Ok(out);
            }
        }
        if done {
            return Ok(out);
        }
    }
}

/// `Some("no_payout_address")` when this recipient has nowhere to be paid.
async fn blocker<C: ConnectionTrait>(conn: &C, recipient_id: Uuid) -> Result<Option<String>> {
    let has_address = auth::user(conn, recipient_id)
        .await?
        .and_then(|u| u.payout_address)
        .is_some_and(|a| !a.trim().is_empty());
    Ok((!has_address).then(|| "no_payout_address".to_owned()))
}

/// Takes the payment row's write lock for the rest of `tx` (a no-op update), so admin actions
/// on one payment run one at a time, and answers the row.
async fn lock_payment(tx: &Tx, payment_id: Uuid) -> Result<Option<payment::Model>> {
    let locked = payment::Entity::update_many()
        .col_expr(payment::Column::Id, Expr::col(payment::Column::Id))
        .filter(payment::Column::Id.eq(payment_id))
        .exec(tx.conn())
        .await?;
    if locked.rows_affected != 1 {
        return Ok(None);
    }
    Ok(payment::Entity::find_by_id(payment_id)
        .one(tx.conn())
        .await?)
}

/// 409 `payment_paid_out` when a payout of the other kind is live or done: a payment is
/// released to the seller or refunded to the buyer, never both.
async fn refuse_other_kind(tx: &Tx, payment_id: Uuid, kind: PayoutKind) -> Result<()> {
    let other = match kind {
        PayoutKind::Release => PayoutKind::Refund,
        PayoutKind::Refund => PayoutKind::Release,
    };
    let live = payout::Entity::find()
        .filter(payout::Column::PaymentId.eq(payment_id))
        .filter(payout::Column::Kind.eq(kind_str(other)))
        .filter(payout::Column::Status.ne(status_str(PayoutStatus::Failed)))
        .one(tx.conn())
        .await?;
    match live {
        Some(p) => Err(ApiError::conflict(
            ErrorCode::PaymentPaidOut,
            format!(
                "a {} payout ({}) of this payment is {}; it cannot also be paid the other way",
                kind_str(other),
                p.id,
                p.status
            ),
        )),
        None => Ok(()),
    }
}

/// Starts a new payout for the payment and kind of a `failed` payout (admins). The failed one
/// stays as history; the new one gets a new id, hence a new `external_id`, and the poller
/// submits it at once; emits `payout:created`. It is paid to the recipient's current
/// `payoutAddress` (which may have been corrected since).
///
/// 403 for non-admins; 404 unknown payout; 409 `payout_not_failed` (it is not failed),
/// `payout_superseded` (a newer payout of this payment and kind exists), `payout_exists` (a
/// concurrent retry won), `payment_not_completed` (the payment was refunded meanwhile),
/// `payment_paid_out` (the other kind was paid), `no_payout_address`.
#[tracing::instrument(skip_all, fields(admin_id = %caller.id, %payout_id))]
pub async fn retry_payout(bus: &EventBus, caller: AuthUser, payout_id: Uuid) -> Result<Payout> {
    caller.require(&[Role::Admin])?;
    let mut tx = bus.begin().await?;
    let failed = payout::Entity::find_by_id(payout_id)
        .one(tx.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    let pay = lock_payment(&tx, failed.payment_id)
        .await?
        .ok_or_else(|| ApiError::internal("a payout's payment is missing"))?;
    // Read again under the payment's lock: a concurrent retry may have committed meanwhile.
    let failed = payout::Entity::find_by_id(payout_id)
        .one(tx.conn())
        .await?
        .ok_or(ApiError::NotFound)?;
    if failed.status() != PayoutStatus::Failed {
        return Err(ApiError::conflict(
            ErrorCode::PayoutNotFailed,
            format!(
                "only a failed payout can be retried; this one is {}",
                failed.status
            ),
        ));
    }
    let kind = failed.kind();
    if let Some(newer) = newest_for(tx.conn(), pay.id, kind).await?
        && newer.id != failed.id
    {
        return Err(ApiError::conflict(
            ErrorCode::PayoutSuperseded,
            format!(
                "payout {} replaced this one (it is {}); act on that one",
                newer.id, newer.status
            ),
        ));
    }
    if pay.status() != PaymentStatus::Completed {
        return Err(ApiError::conflict(
            ErrorCode::PaymentNotCompleted,
            format!(
                "the payment is {}: there is nothing left to pay out",
                pay.status
            ),
        ));
    }
    refuse_other_kind(&tx, pay.id, kind).await?;
    let created = create_payout(&mut tx, &pay, kind).await?.ok_or_else(|| {
        ApiError::conflict(
            ErrorCode::PayoutExists,
            "a payout of this payment and kind is already under way",
        )
    })?;
    tx.commit().await?;
    tracing::info!(new_payout_id = %created.id, "failed payout retried as a new payout");
    Ok(created.to_api())
}

/// Starts a refund payout to the buyer's `payoutAddress` for a `completed` payment whose
/// request is `cancelled` (admins): the buyer paid after cancelling. The amount is what was
/// received (`balance_crypto`); the poller submits it at once; emits `payout:created`; the
/// payment becomes `refunded` when the payout completes.
///
/// 403 for non-admins; 404 unknown payment; 409 `payment_not_completed`,
/// `request_not_cancelled`, `refund_exists` (a refund was already started: retry it if it
/// failed), `payment_paid_out`, `no_payout_address` (the buyer has none).
#[tracing::instrument(skip_all, fields(admin_id = %caller.id, %payment_id))]
pub async fn refund_payment(bus: &EventBus, caller: AuthUser, payment_id: Uuid) -> Result<Payout> {
    caller.require(&[Role::Admin])?;
    let mut tx = bus.begin().await?;
    let pay = lock_payment(&tx, payment_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // First: a refund already started (a completed one made the payment `refunded`) is
    // what the admin needs to hear about, whatever the payment's status is now.
    if let Some(existing) = newest_for(tx.conn(), pay.id, PayoutKind::Refund).await? {
        return Err(ApiError::conflict(
            ErrorCode::RefundExists,
            format!(
                "refund payout {} was already started (it is {}); retry it if it failed",
                existing.id, existing.status
            ),
        ));
    }
    if pay.status() != PaymentStatus::Completed {
        return Err(ApiError::conflict(
            ErrorCode::PaymentNotCompleted,
            format!(
                "only a completed payment can be refunded; this one is {}",
                pay.status
            ),
        ));
    }
    let req = requests::find(tx.conn(), pay.request_id)
        .await?
        .ok_or_else(|| ApiError::internal("a payment's request is missing"))?;
    if req.status != RequestStatus::Cancelled {
        return Err(ApiError::conflict(
            ErrorCode::RequestNotCancelled,
            format!(
                "the request is {}; only a payment of a cancelled request is refunded here \
                 (disputes refund through their resolution)",
                req.status.as_str()
            ),
        ));
    }
    refuse_other_kind(&tx, pay.id, PayoutKind::Refund).await?;
    let created = create_payout(&mut tx, &pay, PayoutKind::Refund)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                ErrorCode::RefundExists,
                "a refund of this payment is already under way",
            )
        })?;
    tx.commit().await?;
    tracing::info!(payout_id = %created.id, "refund of a payment after cancel started");
    Ok(created.to_api())
}
