//! Payouts: created once per (payment, kind), submitted to the provider by a background
//! poller with our payout id as `external_id`, and finished by polling or by the provider's
//! payout callback, whichever comes first.
//!
//! Never paying twice: before a submission the attempt is counted and committed; a payout
//! with a counted attempt is looked up at the provider by `external_id` before any new
//! submission, so a crash or a lost answer between "sent" and "recorded" cannot send it again.

use kernel::error::ErrorCode;
use std::sync::Arc;

use catalog::contract::{
    Page, PaymentStatus, Payout, PayoutKind, PayoutStatus, RequestStatus, now,
};
use catalog::events::{
    PaymentStatusUpdated, PayoutCompleted, PayoutCreated, PayoutFailed, RequestStatusUpdated,
};
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AppState, AuthUser, Result, Runtime, StoredEvent, Subscriber, Tx};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::payment;
use crate::entity::payout::{self, kind_str, status_str};
use crate::provider::{ExternalPayoutStatus, PayoutRequest, ProviderError, TaskStatus};
use crate::{Payments, money};

/// The payment a payout of this request is cut from: its completed (or refunded) payment.
async fn paid_payment<C: ConnectionTrait>(
    conn: &C,
    request_id: Uuid,
) -> Result<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::RequestId.eq(request_id))
        .filter(payment::Column::Status.is_in([
            PaymentStatus::Completed.as_str(),
            PaymentStatus::Refunded.as_str(),
        ]))
        .order_by_desc(payment::Column::Id)
        .one(conn)
        .await?)
}

/// The crypto a payout of `kind` sends: what was received (`balance_crypto`), less the
/// platform's share for a release. Rounded down, never up. `None` when the arithmetic would
/// overflow (checked, never a panic: see [`crate::money`]).
pub(crate) fn payout_amount(p: &payment::Model, kind: PayoutKind) -> Option<Decimal> {
    let mut received = p.paid_crypto.0;
    if received <= Decimal::ZERO {
        received = p.crypto_amount.0;
    }
    let scale = received.scale().max(8);
    let amount = match kind {
        PayoutKind::Refund => received.round_dp_with_strategy(scale, RoundingStrategy::ToZero),
        PayoutKind::Release => money::less_percent(received, p.platform_fee_percent.0, scale)?,
    };
    Some(amount.normalize())
}

/// Makes sure the request's `kind` payout exists, inside `tx`; idempotent: answers the
/// newest payout of the request's payment and kind when there is one, whatever its status (a
/// failed one waits for an admin's retry, see [`crate::admin`]). A new payout is `pending`
/// (the poller submits it at once) and publishes `payout:created`.
///
/// 409 `no_payment` when the request has no completed payment; 409 `no_payout_address` when
/// the recipient (the seller for a release, the buyer for a refund) has no payout address;
/// 409 `nothing_to_pay` / `amount_out_of_range` when the amount is zero or overflows.
pub async fn ensure_payout(tx: &mut Tx, request_id: Uuid, kind: PayoutKind) -> Result<Payout> {
    let pay = paid_payment(tx.conn(), request_id).await?.ok_or_else(|| {
        ApiError::conflict(
            ErrorCode::NoPayment,
            "the request has no completed payment to pay out from",
        )
    })?;
    if let Some(existing) = newest_for(tx.conn(), pay.id, kind).await? {
        return Ok(existing.to_api());
    }
    match create_payout(tx, &pay, kind).await? {
        Some(created) => Ok(created.to_api()),
        // A concurrent caller made it first: answer that one.
        None => newest_for(tx.conn(), pay.id, kind)
            .await?
            .map(|m| m.to_api())
            .ok_or_else(|| ApiError::internal("a live payout blocked the insert but is gone")),
    }
}

/// Inserts a new `pending` payout of `kind` out of `pay`, to the recipient's current payout
/// address, and publishes `payout:created`. Answers `None` (and changes nothing) when a live
/// payout (not `failed`) of that payment and kind already exists: the partial unique index
/// `uq_payouts_live_payment_kind` decides, so two racing callers cannot both create one.
///
/// 409 `no_payout_address`, `nothing_to_pay` or `amount_out_of_range` as for
/// [`ensure_payout`].
pub(crate) async fn create_payout(
    tx: &mut Tx,
    pay: &payment::Model,
    kind: PayoutKind,
) -> Result<Option<payout::Model>> {
    let recipient_id = match kind {
        PayoutKind::Release => pay.seller_id,
        PayoutKind::Refund => pay.buyer_id,
    };
    let destination = auth::user(tx.conn(), recipient_id)
        .await?
        .and_then(|u| u.payout_address)
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            let who = if kind == PayoutKind::Release {
                "seller"
            } else {
                "buyer"
            };
            ApiError::conflict(
                ErrorCode::NoPayoutAddress,
                format!("the {who} has no payoutAddress to pay to"),
            )
        })?;
    let amount = payout_amount(pay, kind).ok_or_else(|| {
        ApiError::conflict(
            ErrorCode::AmountOutOfRange,
            "the payout amount is out of range; the payment needs a person",
        )
    })?;
    if amount <= Decimal::ZERO {
        return Err(ApiError::conflict(
            ErrorCode::NothingToPay,
            "the payment received nothing to pay out",
        ));
    }
    let at = now();
    let id = catalog::contract::new_id();
    let row = payout::ActiveModel {
        id: Set(id),
        payment_id: Set(pay.id),
        request_id: Set(pay.request_id),
        recipient_id: Set(recipient_id),
        kind: Set(kind.into()),
        amount: Set(amount.into()),
        crypto: Set(pay.crypto.clone()),
        destination: Set(destination),
        status: Set(PayoutStatus::Pending.into()),
        provider_task_id: Set(None),
        tx_hash: Set(None),
        failure_reason: Set(None),
        submit_attempts: Set(0),
        created_at: Set(at),
        updated_at: Set(at),
    };
    // The conflict target names the partial index with its predicate as a literal (not a
    // bound parameter), which both PostgreSQL and SQLite need to infer that index.
    let inserted = payout::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([payout::Column::PaymentId, payout::Column::Kind])
                .target_and_where(Expr::cust(LIVE_PAYOUT_PREDICATE))
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(tx.conn())
        .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok(None);
    }
    let model = payout::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("payout vanished after insert"))?;
    tx.publish(PayoutCreated(model.to_api()));
    // The poller submits it at once, not on its next tick; woken only after the commit, so
    // it finds the row.
    tx.signal_after_commit(PAYOUT_SIGNAL);
    Ok(Some(model))
}

/// The predicate of the partial unique index on live payouts (see the migration
/// `m20261130_000401_payments_live_payout_index`).
pub const LIVE_PAYOUT_PREDICATE: &str = "status <> 'failed'";

/// The newest payout of this payment and kind, in any status.
pub(crate) async fn newest_for<C: ConnectionTrait>(
    conn: &C,
    payment_id: Uuid,
    kind: PayoutKind,
) -> Result<Option<payout::Model>> {
    Ok(payout::Entity::find()
        .filter(payout::Column::PaymentId.eq(payment_id))
        .filter(payout::Column::Kind.eq(kind_str(kind)))
        .order_by_desc(payout::Column::Id)
        .one(conn)
        .await?)
}

/// How a payout ended.
#[derive(Debug, Clone)]
pub enum Finish {
    Completed { tx_hash: String },
    Failed { reason: String },
}

/// Finishes a payout that is still pending or processing, inside `tx`, with its event. A
/// payout already finished is left alone (`false`): the poll and the callback may race.
pub async fn finish(tx: &mut Tx, payout_id: Uuid, how: Finish) -> Result<bool> {
    let Some(p) = payout::Entity::find_by_id(payout_id).one(tx.conn()).await? else {
        return Ok(false);
    };
    let at = now();
    let mut update = payout::Entity::update_many()
        .col_expr(payout::Column::UpdatedAt, Expr::value(at))
        .filter(payout::Column::Id.eq(payout_id))
        .filter(payout::Column::Status.is_in([
            status_str(PayoutStatus::Pending),
            status_str(PayoutStatus::Processing),
        ]));
    update = match &how {
        Finish::Completed { tx_hash } => update
            .col_expr(
                payout::Column::Status,
                Expr::value(status_str(PayoutStatus::Completed)),
            )
            .col_expr(payout::Column::TxHash, Expr::value(tx_hash.clone())),
        Finish::Failed { reason } => update
            .col_expr(
                payout::Column::Status,
                Expr::value(status_str(PayoutStatus::Failed)),
            )
            .col_expr(payout::Column::FailureReason, Expr::value(reason.clone())),
    };
    if update.exec(tx.conn()).await?.rows_affected != 1 {
        return Ok(false);
    }
    match how {
        Finish::Completed { tx_hash } => {
            tx.publish(PayoutCompleted {
                payout_id,
                tx_hash,
                recipient_id: p.recipient_id,
                request_id: p.request_id,
            });
            if p.kind() == PayoutKind::Refund {
                mark_refunded(tx, p.payment_id).await?;
            }
        }
        Finish::Failed { reason } => {
            tracing::warn!(%payout_id, %reason, "payout failed");
            tx.publish(PayoutFailed {
                payout_id,
                reason,
                recipient_id: p.recipient_id,
                request_id: p.request_id,
            });
        }
    }
    Ok(true)
}

/// A completed refund turns its payment `refunded`.
async fn mark_refunded(tx: &mut Tx, payment_id: Uuid) -> Result<()> {
    let res = payment::Entity::update_many()
        .col_expr(
            payment::Column::Status,
            Expr::value(PaymentStatus::Refunded.as_str()),
        )
        .col_expr(payment::Column::UpdatedAt, Expr::value(now()))
        .filter(payment::Column::Id.eq(payment_id))
        .filter(payment::Column::Status.eq(PaymentStatus::Completed.as_str()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected == 1
        && let Some(p) = payment::Entity::find_by_id(payment_id)
            .one(tx.conn())
            .await?
    {
        tx.publish(PaymentStatusUpdated {
            payment_id,
            request_id: p.request_id,
            status: PaymentStatus::Refunded,
            provider_payment_id: p.provider_payment_id.clone(),
            buyer_id: p.buyer_id,
            seller_id: p.seller_id,
        });
    }
    Ok(())
}

/// `payments.payouts`: a request that became `completed` gets its release payout, one that
/// became `refunded` its refund payout. Idempotent; a payout that cannot be made (no address)
/// is logged, not retried: an admin resolves it.
pub fn subscriber(state: AppState) -> Arc<dyn Subscriber> {
    kernel::subscriber(
        "payments.payouts",
        &[catalog::events::EventName::RequestStatusUpdated],
        move |event: StoredEvent| {
            let state = state.clone();
            async move {
                let Some(update) = event.decode::<RequestStatusUpdated>() else {
                    return Ok(());
                };
                let kind = match update.status {
                    RequestStatus::Completed => PayoutKind::Release,
                    RequestStatus::Refunded => PayoutKind::Refund,
                    _ => return Ok(()),
                };
                let mut tx = state.bus.begin().await?;
                match ensure_payout(&mut tx, update.request_id, kind).await {
                    Ok(_) => tx.commit().await,
                    Err(e @ ApiError::Conflict { .. }) => {
                        tracing::warn!(request_id = %update.request_id, error = %e, "no payout could be started");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        },
    )
}

/// Wakes this node's payout poller after a transaction that made a payout has committed.
const PAYOUT_SIGNAL: &str = "payments.payouts";

/// Starts the payout poller: every `payout_poll`, and at once when a transaction that made a
/// payout on this node has committed ([`PAYOUT_SIGNAL`]), submit pending payouts and poll
/// processing ones. Stops when
/// `rt.cancel` fires, abandoning any call in flight (which the look-up by `external_id`
/// covers on the next start).
pub fn start_poller(rt: &Runtime, ctx: Arc<Payments>) {
    let state = rt.state.clone();
    let cancel = rt.cancel.clone();
    let wake = state.bus.signal(PAYOUT_SIGNAL);
    rt.tracker.spawn(async move {
        let mut interval = tokio::time::interval(ctx.payout_poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = interval.tick() => {}
                _ = wake.notified() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                res = tick(&state, &ctx) => {
                    if let Err(e) = res {
                        tracing::warn!(error = %e, "payout poll failed; retrying next tick");
                    }
                }
            }
        }
        tracing::debug!("payout poller stopped");
    });
}

/// One pass over unfinished payouts.
pub async fn tick(state: &AppState, ctx: &Payments) -> Result<()> {
    let pending = payout::Entity::find()
        .filter(payout::Column::Status.eq(status_str(PayoutStatus::Pending)))
        .order_by_asc(payout::Column::Id)
        .limit(50)
        .all(&state.db)
        .await?;
    for p in pending {
        if let Err(e) = submit(state, ctx, p).await {
            tracing::warn!(error = %e, "payout submission failed; retrying next tick");
        }
    }
    let processing = payout::Entity::find()
        .filter(payout::Column::Status.eq(status_str(PayoutStatus::Processing)))
        .order_by_asc(payout::Column::Id)
        .limit(50)
        .all(&state.db)
        .await?;
    for p in processing {
        if let Err(e) = poll(state, ctx, p).await {
            tracing::warn!(error = %e, "payout poll failed; retrying next tick");
        }
    }
    Ok(())
}

async fn finish_now(state: &AppState, payout_id: Uuid, how: Finish) -> Result<()> {
    let mut tx = state.bus.begin().await?;
    if finish(&mut tx, payout_id, how).await? {
        tx.commit().await?;
    }
    Ok(())
}

async fn mark_processing(
    db: &DatabaseConnection,
    payout_id: Uuid,
    task_id: Option<String>,
) -> Result<()> {
    let mut update = payout::Entity::update_many()
        .col_expr(
            payout::Column::Status,
            Expr::value(status_str(PayoutStatus::Processing)),
        )
        .col_expr(payout::Column::UpdatedAt, Expr::value(now()))
        .filter(payout::Column::Id.eq(payout_id))
        .filter(payout::Column::Status.eq(status_str(PayoutStatus::Pending)));
    if let Some(task) = task_id {
        update = update.col_expr(payout::Column::ProviderTaskId, Expr::value(task));
    }
    update.exec(db).await?;
    Ok(())
}

/// How long after an unanswered submission the payout is looked up (and only then perhaps
/// submitted again): longer than any provider call may take.
pub const RESUBMIT_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(15);

/// Submits one pending payout — after looking it up first when an earlier attempt may have
/// reached the provider.
async fn submit(state: &AppState, ctx: &Payments, p: payout::Model) -> Result<()> {
    let external_id = p.id.to_string();
    if p.submit_attempts > 0 {
        // An earlier attempt (perhaps another instance's) may still be on the wire: give it
        // time to arrive before asking whether the provider has it.
        if now() - p.updated_at < RESUBMIT_GRACE {
            return Ok(());
        }
        match ctx
            .provider
            .payout_status_by_external_id(&p.crypto, &external_id)
            .await
        {
            Ok(ExternalPayoutStatus::NotFound) => {}
            Ok(ExternalPayoutStatus::InProgress)
            | Ok(ExternalPayoutStatus::Success { txid: None }) => {
                return mark_processing(&state.db, p.id, None).await;
            }
            Ok(ExternalPayoutStatus::Success {
                txid: Some(tx_hash),
            }) => {
                return finish_now(state, p.id, Finish::Completed { tx_hash }).await;
            }
            Ok(ExternalPayoutStatus::Failed { reason }) => {
                return finish_now(state, p.id, Finish::Failed { reason }).await;
            }
            // Unknown whether it was sent: never resubmit blind.
            Err(e) => {
                tracing::warn!(payout_id = %p.id, error = %e, "cannot look the payout up; not resubmitting yet");
                return Ok(());
            }
        }
    }
    // Count the attempt durably before the call; a racing poller loses this compare-and-set.
    let claimed = payout::Entity::update_many()
        .col_expr(
            payout::Column::SubmitAttempts,
            Expr::value(p.submit_attempts + 1),
        )
        .col_expr(payout::Column::UpdatedAt, Expr::value(now()))
        .filter(payout::Column::Id.eq(p.id))
        .filter(payout::Column::Status.eq(status_str(PayoutStatus::Pending)))
        .filter(payout::Column::SubmitAttempts.eq(p.submit_attempts))
        .exec(&state.db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(());
    }
    let amount = p.amount.0;
    let req = PayoutRequest {
        crypto: p.crypto.clone(),
        amount,
        destination: p.destination.clone(),
        external_id,
        callback_url: ctx.payout_callback_url(),
    };
    match ctx.provider.create_payout(&req).await {
        Ok(task_id) => mark_processing(&state.db, p.id, Some(task_id)).await,
        Err(ProviderError::Rejected(reason)) => {
            finish_now(state, p.id, Finish::Failed { reason }).await
        }
        Err(ProviderError::Unavailable(e)) => {
            tracing::warn!(payout_id = %p.id, error = %e, "payout submission unanswered; will look it up before retrying");
            Ok(())
        }
    }
}

/// Polls one processing payout: by its task when we know it, else by `external_id`.
async fn poll(state: &AppState, ctx: &Payments, p: payout::Model) -> Result<()> {
    let how = match &p.provider_task_id {
        Some(task) => match ctx.provider.payout_task_status(&p.crypto, task).await {
            Ok(TaskStatus::Pending) => None,
            Ok(TaskStatus::Success { txid }) => Some(Finish::Completed { tx_hash: txid }),
            Ok(TaskStatus::Failure { reason }) => Some(Finish::Failed { reason }),
            Err(e) => {
                tracing::debug!(payout_id = %p.id, error = %e, "task poll failed");
                None
            }
        },
        None => match ctx
            .provider
            .payout_status_by_external_id(&p.crypto, &p.id.to_string())
            .await
        {
            Ok(ExternalPayoutStatus::Success {
                txid: Some(tx_hash),
            }) => Some(Finish::Completed { tx_hash }),
            Ok(ExternalPayoutStatus::Failed { reason }) => Some(Finish::Failed { reason }),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(payout_id = %p.id, error = %e, "status poll failed");
                None
            }
        },
    };
    match how {
        Some(how) => finish_now(state, p.id, how).await,
        None => Ok(()),
    }
}

/// May `caller` see this payout: its recipient and admins.
pub async fn get<C: ConnectionTrait>(conn: &C, caller: AuthUser, id: Uuid) -> Result<Payout> {
    match payout::Entity::find_by_id(id).one(conn).await? {
        Some(p) if caller.is_admin() || p.recipient_id == caller.id => Ok(p.to_api()),
        _ => Err(ApiError::NotFound),
    }
}

/// The caller's payouts (admins: all), newest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    params: PageParams,
) -> Result<Page<Payout>> {
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    let mut q = payout::Entity::find();
    if !caller.is_admin() {
        q = q.filter(payout::Column::RecipientId.eq(caller.id));
    }
    if let Some(c) = cursor {
        q = q.filter(payout::Column::Id.lt(c));
    }
    let rows = q
        .order_by_desc(payout::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let items: Vec<Payout> = rows.iter().map(payout::Model::to_api).collect();
    Ok(page(items, limit, |p| p.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(paid_crypto: &str, fee: &str) -> payment::Model {
        let at = now();
        let d = |s: &str| s.parse().unwrap();
        payment::Model {
            id: Uuid::now_v7(),
            request_id: Uuid::now_v7(),
            offer_id: Uuid::now_v7(),
            buyer_id: Uuid::now_v7(),
            seller_id: Uuid::now_v7(),
            amount: d("100.00"),
            currency: "USD".into(),
            crypto: "BTC".into(),
            crypto_amount: d("0.002"),
            pay_address: "bc1q".into(),
            exchange_rate: d("50000"),
            paid_amount: d("100.00"),
            paid_crypto: d(paid_crypto),
            status: payment::Status::Completed,
            provider_payment_id: None,
            platform_fee_percent: d(fee),
            open_key: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_release_keeps_the_fee_and_rounds_down() {
        let p = paid("0.002", "10");
        assert_eq!(
            payout_amount(&p, PayoutKind::Release),
            Some(Decimal::new(18, 4))
        );
        assert_eq!(
            payout_amount(&p, PayoutKind::Refund),
            Some(Decimal::new(2, 3))
        );
    }

    #[test]
    fn a_huge_balance_overflows_to_none_not_a_panic() {
        let p = paid(&Decimal::MAX.to_string(), "10");
        assert_eq!(payout_amount(&p, PayoutKind::Release), None);
        assert_eq!(payout_amount(&p, PayoutKind::Refund), Some(Decimal::MAX));
    }
}
