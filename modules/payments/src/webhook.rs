//! Provider callbacks: authenticated over the raw body, stored before they are answered, and
//! applied exactly once per (`external_id`, triggering txid) — a primary key on
//! `webhook_applications` decides, so concurrent duplicates cannot both apply.
//!
//! Outcomes kept for admins: `applied`, `duplicate`, `unmatched` (unknown `external_id`),
//! `rejected` (signed but unusable: not JSON, missing fields, an unknown status, or an amount
//! out of bounds — see [`crate::money`]), and `received` while being applied (left so only
//! when applying failed; the provider then retries).
//!
//! Every refusal is an [`ApiError`], so it answers a problem document like any other route.

use axum::http::{HeaderMap, HeaderValue};
use catalog::contract::{Page, Payment, PaymentStatus, RequestStatus, now};
use catalog::events::{PaymentCompleted, PaymentStatusUpdated};
use kernel::error::ErrorCode;
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, AppState, AuthUser, Result, Tx};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::dto::{WebhookEventView, WebhookListParams};
use crate::entity::payment;
use crate::entity::{webhook_application, webhook_event};
use crate::payouts::{self, Finish};
use crate::signature;
use crate::{Payments, money};

/// Which callback endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    Payment,
    Payout,
}

impl CallbackKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Payout => "payout",
        }
    }
}

/// A string or number field as text.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What a callback says, as far as we use it.
struct Callback {
    external_id: Option<String>,
    status: Option<String>,
    txid: Option<String>,
}

fn read_callback(kind: CallbackKind, v: &Value) -> Callback {
    let external_id = text(v.get("external_id"));
    let status = text(v.get("status"));
    let txid = match kind {
        CallbackKind::Payout => text(v.get("tx_hash")),
        CallbackKind::Payment => {
            let txs = v
                .get("transactions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let trigger = txs
                .iter()
                .find(|t| t.get("trigger").and_then(Value::as_bool) == Some(true));
            trigger
                .or(txs.last())
                .and_then(|t| text(t.get("txid")))
                .or_else(|| text(v.get("txid")))
        }
    };
    Callback {
        external_id,
        status,
        txid,
    }
}

/// Authenticates, stores and applies one callback. `Ok(outcome)` answers 202 (`rejected`
/// included: see the route's description). A failed authentication is 401
/// `invalid_signature` and stores nothing; a signed body that is not a JSON object is stored
/// as `rejected` and answered 400.
///
/// Every callback is counted by outcome (`marketplace_webhooks_total{outcome}`): the stored
/// outcome when answered 202, else `unauthenticated` (401), `rejected` (400) or `error`.
pub async fn receive(
    state: &AppState,
    ctx: &Payments,
    kind: CallbackKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Outcome> {
    let res = receive_uncounted(state, ctx, kind, headers, body).await;
    let outcome = match &res {
        Ok(outcome) => *outcome,
        Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED => Outcome::Unauthenticated,
        Err(e) if e.status() == axum::http::StatusCode::BAD_REQUEST => Outcome::Rejected,
        Err(_) => Outcome::Error,
    };
    metrics::counter!(kernel::monitor::WEBHOOKS, "outcome" => outcome.as_str()).increment(1);
    res
}

#[tracing::instrument(skip_all, fields(kind = kind.as_str()))]
async fn receive_uncounted(
    state: &AppState,
    ctx: &Payments,
    kind: CallbackKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Outcome> {
    let auth = signature::verify(
        headers,
        body,
        ctx.webhook_key.expose_secret(),
        ctx.allow_legacy_api_key,
        now().timestamp(),
    )
    .map_err(|r| {
        tracing::warn!(reason = r.message(), "provider callback refused");
        ApiError::unauthenticated(ErrorCode::InvalidSignature, r.message())
    })?;
    let raw = String::from_utf8_lossy(body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    let cb = parsed.as_ref().map(|v| read_callback(kind, v));
    let event_id = catalog::contract::new_id();
    let row = webhook_event::ActiveModel {
        id: Set(event_id),
        kind: Set(kind.as_str().to_owned()),
        external_id: Set(cb.as_ref().and_then(|c| c.external_id.clone())),
        provider_status: Set(cb.as_ref().and_then(|c| c.status.clone())),
        txid: Set(cb.as_ref().and_then(|c| c.txid.clone())),
        outcome: Set(Outcome::Received.as_str().to_owned()),
        auth: Set(auth.as_str().to_owned()),
        detail: Set(None),
        claim_mismatch: Set(None),
        body: Set(raw),
        received_at: Set(now()),
    };
    // Stored on its own first: whatever happens next, the callback is on record.
    let stored = state.bus.begin().await?;
    webhook_event::Entity::insert(row)
        .exec_without_returning(stored.conn())
        .await?;
    stored.commit().await?;

    let (Some(v), Some(cb)) = (parsed, cb) else {
        set_outcome_now(
            state,
            event_id,
            &Applied::rejected("the body is not a JSON object"),
        )
        .await?;
        return Err(ApiError::bad_request(
            ErrorCode::MalformedJson,
            "the callback body is not a JSON object",
        ));
    };
    let mut tx = state.bus.begin().await?;
    let applied = match kind {
        CallbackKind::Payment => {
            apply_payment(&mut tx, event_id, &v, &cb, ctx.underpaid_tolerance_percent).await?
        }
        CallbackKind::Payout => apply_payout(&mut tx, event_id, &v, &cb).await?,
    };
    set_outcome(tx.conn(), event_id, &applied).await?;
    tx.commit().await?;
    let (outcome, detail) = (applied.outcome.as_str(), &applied.detail);
    if applied.outcome == Outcome::Rejected {
        tracing::warn!(outcome, external_id = ?cb.external_id, status = ?cb.status, txid = ?cb.txid, detail = ?detail, "provider callback rejected; no money moved");
    } else {
        tracing::info!(outcome, external_id = ?cb.external_id, status = ?cb.status, txid = ?cb.txid, "provider callback");
    }
    Ok(applied.outcome)
}

async fn set_outcome<C: ConnectionTrait>(conn: &C, id: Uuid, applied: &Applied) -> Result<()> {
    webhook_event::Entity::update_many()
        .col_expr(
            webhook_event::Column::Outcome,
            Expr::value(applied.outcome.as_str()),
        )
        .col_expr(
            webhook_event::Column::Detail,
            Expr::value(applied.detail.clone()),
        )
        .filter(webhook_event::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

async fn set_outcome_now(state: &AppState, id: Uuid, applied: &Applied) -> Result<()> {
    let tx = state.bus.begin().await?;
    set_outcome(tx.conn(), id, applied).await?;
    tx.commit().await
}

/// Claims an application key; `false` when a callback with this key was applied before.
async fn claim<C: ConnectionTrait>(conn: &C, key: String, event_id: Uuid) -> Result<bool> {
    let row = webhook_application::ActiveModel {
        key: Set(key),
        event_id: Set(event_id),
        created_at: Set(now()),
    };
    let res = webhook_application::Entity::insert(row)
        .on_conflict(
            OnConflict::column(webhook_application::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .try_insert()
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(res, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

/// What became of one provider callback: `webhook_events.outcome`, and the label of
/// `marketplace_webhooks_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, not applied yet (a crash in between leaves it so).
    Received,
    /// Applied: the payment or payout moved, or the callback was news without a move.
    Applied,
    /// This status of this payment or payout was applied before (a replay).
    Duplicate,
    /// It names no payment or payout of ours.
    Unmatched,
    /// Malformed or claiming what cannot be: nothing moved.
    Rejected,
    /// Not counted as stored: its signature or key was refused (401).
    Unauthenticated,
    /// Not counted as stored: the server failed (5xx).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Unmatched => "unmatched",
            Self::Rejected => "rejected",
            Self::Unauthenticated => "unauthenticated",
            Self::Error => "error",
        }
    }
}

/// An applied callback's outcome and what the admins read about it (`detail`).
struct Applied {
    outcome: Outcome,
    detail: Option<String>,
}

impl Applied {
    fn moved(detail: Option<String>) -> Self {
        Self {
            outcome: Outcome::Applied,
            detail,
        }
    }
    fn noted(detail: impl Into<String>) -> Self {
        Self::moved(Some(detail.into()))
    }
    fn duplicate() -> Self {
        Self {
            outcome: Outcome::Duplicate,
            detail: None,
        }
    }
    fn unmatched(why: &str) -> Self {
        Self {
            outcome: Outcome::Unmatched,
            detail: Some(why.to_owned()),
        }
    }
    fn rejected(why: &str) -> Self {
        Self {
            outcome: Outcome::Rejected,
            detail: Some(why.to_owned()),
        }
    }
}

/// The payment's state machine as provider callbacks drive it: `pending → partially_paid →
/// completed`, forward only (a late or repeated callback never moves a payment back), and
/// `refunded` is final (a refund payout sets it from `completed`, in [`payouts`]). The status
/// a payment in `current` has after a callback reporting `reported`.
fn after_callback(current: PaymentStatus, reported: PaymentStatus) -> PaymentStatus {
    fn rank(status: PaymentStatus) -> u8 {
        match status {
            PaymentStatus::Pending => 0,
            PaymentStatus::PartiallyPaid => 1,
            PaymentStatus::Completed => 2,
            PaymentStatus::Refunded => 3,
        }
    }
    if rank(reported) > rank(current) && current != PaymentStatus::Refunded {
        reported
    } else {
        current
    }
}

/// `webhook_events.claim_mismatch` of a `PAID` short of the invoice.
pub const UNDERPAID: &str = "underpaid";
/// `webhook_events.claim_mismatch` of a `PAID` in another fiat currency or crypto.
pub const OTHER_CURRENCY: &str = "other_currency";

/// Why a `PAID`/`OVERPAID` callback is not in the invoice's currency and crypto, if it is not:
/// its `fiat` must be the invoice's currency, and its `crypto`, when it names one, the
/// payment's.
fn other_currency(v: &Value, invoice: &payment::Model) -> Option<String> {
    let fiat = text(v.get("fiat"));
    if !fiat
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case(&invoice.currency))
    {
        return Some(format!(
            "PAID in {} for an invoice in {}: no money moved",
            fiat.as_deref().unwrap_or("no currency"),
            invoice.currency
        ));
    }
    match text(v.get("crypto")) {
        Some(c) if !c.eq_ignore_ascii_case(&invoice.crypto) => Some(format!(
            "PAID in {c} for a payment in {}: no money moved",
            invoice.crypto
        )),
        _ => None,
    }
}

/// Marks the stored callback as one that claimed more than it paid (see [`UNDERPAID`],
/// [`OTHER_CURRENCY`]), for the admins' attention list.
async fn mark_claim<C: ConnectionTrait>(conn: &C, event_id: Uuid, mismatch: &str) -> Result<()> {
    webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::ClaimMismatch, Expr::value(mismatch))
        .filter(webhook_event::Column::Id.eq(event_id))
        .exec(conn)
        .await?;
    Ok(())
}

async fn apply_payment(
    tx: &mut Tx,
    event_id: Uuid,
    v: &Value,
    cb: &Callback,
    tolerance_percent: Decimal,
) -> Result<Applied> {
    let (Some(external_id), Some(status)) = (&cb.external_id, &cb.status) else {
        return Ok(Applied::rejected("external_id and status are required"));
    };
    let mut target = match status.as_str() {
        "PARTIAL" => Some(PaymentStatus::PartiallyPaid),
        "PAID" | "OVERPAID" => Some(PaymentStatus::Completed),
        "unconfirmed" => None,
        _ => return Ok(Applied::rejected("unknown status")),
    };
    let Ok(payment_id) = Uuid::parse_str(external_id) else {
        return Ok(Applied::unmatched("external_id names no payment"));
    };
    // Takes the payment row's write lock, so callbacks of one payment apply one at a time.
    let locked = payment::Entity::update_many()
        .col_expr(payment::Column::Id, Expr::col(payment::Column::Id))
        .filter(payment::Column::Id.eq(payment_id))
        .exec(tx.conn())
        .await?;
    let current = match payment::Entity::find_by_id(payment_id)
        .one(tx.conn())
        .await?
    {
        Some(p) if locked.rows_affected == 1 => p,
        _ => return Ok(Applied::unmatched("external_id names no payment")),
    };
    // Amounts are checked before the application key is claimed: a rejected callback moves
    // no money and does not use up its (external_id, txid), so a corrected one still applies.
    let reported = match target {
        None => None,
        Some(_) => {
            let crypto = money::check_reported(
                "balance_crypto",
                v.get("balance_crypto"),
                current.crypto_amount.0,
            );
            let fiat =
                money::check_reported("balance_fiat", v.get("balance_fiat"), current.amount.0);
            match (crypto, fiat) {
                (Ok(c), Ok(f)) => Some((c, f)),
                (Err(why), _) | (_, Err(why)) => return Ok(Applied::rejected(&why)),
            }
        }
    };
    // A `PAID` completes the payment only when it is in the invoice's currency and covers the
    // invoice (less the tolerance); a shorter one counts as a partial payment, one in another
    // currency moves nothing. Both are kept for admins: the provider claimed more than it paid.
    let mut short_claim = None;
    if let (Some(PaymentStatus::Completed), Some((_, reported_fiat))) = (target, reported) {
        if let Some(why) = other_currency(v, &current) {
            mark_claim(tx.conn(), event_id, OTHER_CURRENCY).await?;
            return Ok(Applied::rejected(&why));
        }
        let floor =
            money::less_percent(current.amount.0, tolerance_percent, 8).unwrap_or(current.amount.0);
        let paid = reported_fiat.unwrap_or(Decimal::ZERO);
        if paid < floor {
            target = Some(PaymentStatus::PartiallyPaid);
            short_claim = Some(format!(
                "{status} for {paid} of {} {}: kept partially paid",
                current.amount.0, current.currency
            ));
        }
    }
    let txid = cb.txid.clone().unwrap_or_else(|| {
        format!(
            "-:{}:{}",
            status,
            text(v.get("balance_fiat")).unwrap_or_default()
        )
    });
    let key = match target {
        None => format!("payment:{payment_id}:unconfirmed:{txid}"),
        Some(_) => format!("payment:{payment_id}:{txid}"),
    };
    if !claim(tx.conn(), key, event_id).await? {
        return Ok(Applied::duplicate());
    }
    let (Some(target), Some((reported_crypto, reported_fiat))) = (target, reported) else {
        return Ok(Applied::noted(
            "mempool notice; the status waits for confirmation",
        ));
    };

    let old = current.status();
    let mut paid_fiat = reported_fiat
        .unwrap_or(Decimal::ZERO)
        .max(current.paid_amount.0);
    paid_fiat.rescale(current.amount.0.scale());
    let paid_crypto = reported_crypto
        .unwrap_or(Decimal::ZERO)
        .max(current.paid_crypto.0);
    let next = after_callback(old, target);
    let open = matches!(next, PaymentStatus::Pending | PaymentStatus::PartiallyPaid);
    payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(next.as_str()))
        .col_expr(
            payment::Column::PaidAmount,
            Expr::value(paid_fiat.to_string()),
        )
        .col_expr(
            payment::Column::PaidCrypto,
            Expr::value(paid_crypto.normalize().to_string()),
        )
        .col_expr(
            payment::Column::OpenKey,
            Expr::value(if open { Some(current.request_id) } else { None }),
        )
        .col_expr(payment::Column::UpdatedAt, Expr::value(now()))
        .filter(payment::Column::Id.eq(payment_id))
        .exec(tx.conn())
        .await?;
    if short_claim.is_some() {
        mark_claim(tx.conn(), event_id, UNDERPAID).await?;
    }
    if next == old {
        let stays = format!("status stays {}", old.as_str());
        return Ok(Applied::noted(
            short_claim.map_or(stays.clone(), |why| format!("{why}; {stays}")),
        ));
    }
    tx.publish(PaymentStatusUpdated {
        payment_id,
        request_id: current.request_id,
        status: next,
        provider_payment_id: current.provider_payment_id.clone(),
        buyer_id: current.buyer_id,
        seller_id: current.seller_id,
    });
    if next == PaymentStatus::Completed {
        match requests::transition(tx, current.request_id, RequestStatus::Paid, None).await {
            Ok(_) => {}
            Err(e @ ApiError::Conflict { .. }) => {
                tracing::warn!(%payment_id, error = %e, "payment completed but its request cannot become paid");
            }
            Err(e) => return Err(e),
        }
        tx.publish(PaymentCompleted {
            payment_id,
            request_id: current.request_id,
            buyer_id: current.buyer_id,
            seller_id: current.seller_id,
        });
    }
    Ok(Applied::moved(short_claim))
}

async fn apply_payout(tx: &mut Tx, event_id: Uuid, v: &Value, cb: &Callback) -> Result<Applied> {
    let (Some(external_id), Some(status)) = (&cb.external_id, &cb.status) else {
        return Ok(Applied::rejected("external_id and status are required"));
    };
    let Ok(payout_id) = Uuid::parse_str(external_id) else {
        return Ok(Applied::unmatched("external_id names no payout"));
    };
    if crate::entity::payout::Entity::find_by_id(payout_id)
        .one(tx.conn())
        .await?
        .is_none()
    {
        return Ok(Applied::unmatched("external_id names no payout"));
    }
    if !claim(tx.conn(), format!("payout:{payout_id}:{status}"), event_id).await? {
        return Ok(Applied::duplicate());
    }
    let how = match status.as_str() {
        "SUCCESS" => match &cb.txid {
            Some(tx_hash) => Finish::Completed {
                tx_hash: tx_hash.clone(),
            },
            None => return Ok(Applied::rejected("SUCCESS without tx_hash")),
        },
        "FAIL" | "FAILURE" | "ERROR" | "error" => Finish::Failed {
            reason: text(v.get("message"))
                .unwrap_or_else(|| format!("the provider reported {status}")),
        },
        _ => return Ok(Applied::noted("in progress")),
    };
    if payouts::finish(tx, payout_id, how).await? {
        Ok(Applied::moved(None))
    } else {
        Ok(Applied::noted("the payout was already finished"))
    }
}

/// Received callbacks, newest first (admins).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    caller: AuthUser,
    params: WebhookListParams,
) -> Result<Page<WebhookEventView>> {
    caller.require(&[catalog::Role::Admin])?;
    let paging = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = paging.limit()?;
    let cursor: Option<Uuid> = paging.cursor()?;
    let mut q = webhook_event::Entity::find();
    if let Some(status) = params.status.as_deref().filter(|s| !s.is_empty()) {
        let stored = [
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Unmatched,
            Outcome::Rejected,
            Outcome::Received,
        ];
        if !stored.iter().any(|o| o.as_str() == status) {
            return Err(ApiError::invalid(
                "status",
                "must be applied, duplicate, unmatched, rejected or received",
            ));
        }
        q = q.filter(webhook_event::Column::Outcome.eq(status));
    }
    if let Some(c) = cursor {
        q = q.filter(webhook_event::Column::Id.lt(c));
    }
    let rows = q
        .order_by_desc(webhook_event::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let items = rows
        .into_iter()
        .map(|r| WebhookEventView {
            id: r.id,
            kind: r.kind,
            external_id: r.external_id,
            provider_status: r.provider_status,
            txid: r.txid,
            outcome: r.outcome,
            auth: r.auth,
            detail: r.detail,
            body: serde_json::from_str(&r.body).unwrap_or(Value::String(r.body)),
            received_at: r.received_at,
        })
        .collect();
    Ok(page(items, limit, |e| e.id))
}

/// Sandbox: builds the callback SHKeeper would send for this payment reaching `status`,
/// signs it with the webhook key and feeds it through [`receive`] — the same path.
pub async fn simulate(
    state: &AppState,
    ctx: &Payments,
    caller: AuthUser,
    payment_id: Uuid,
    status: &str,
) -> Result<Payment> {
    // A payment's buyer or an admin: sellers never pay, so 403 for them whatever the id.
    caller.require(&[catalog::Role::Buyer, catalog::Role::Admin])?;
    let p = match payment::Entity::find_by_id(payment_id)
        .one(&state.db)
        .await?
    {
        Some(p) if caller.is_admin() || p.buyer_id == caller.id => p,
        _ => return Err(ApiError::NotFound),
    };
    let (fiat_factor, paid) = match status {
        "PARTIAL" => (Decimal::new(5, 1), false),
        "PAID" => (Decimal::ONE, true),
        "OVERPAID" => (Decimal::new(11, 1), true),
        _ => {
            return Err(ApiError::invalid(
                "status",
                "must be PAID, PARTIAL or OVERPAID",
            ));
        }
    };
    let out_of_range = || {
        ApiError::conflict(
            ErrorCode::AmountOutOfRange,
            "the payment's amounts are out of range",
        )
    };
    // Non-negative difference, checked.
    let gap = |a: Decimal, b: Decimal| {
        money::sub(a, b)
            .map(|d| d.max(Decimal::ZERO).to_string())
            .ok_or_else(out_of_range)
    };
    let total_fiat = p.amount.0;
    let total_crypto = p.crypto_amount.0;
    let balance_fiat = money::mul(total_fiat, fiat_factor)
        .ok_or_else(out_of_range)?
        .round_dp(2)
        .normalize();
    let balance_crypto = money::mul(total_crypto, fiat_factor)
        .ok_or_else(out_of_range)?
        .round_dp(total_crypto.scale().max(8))
        .normalize();
    let already_fiat = p.paid_amount.0;
    let already_crypto = p.paid_crypto.0;
    let random: [u8; 16] = rand::random();
    let txid = format!("sandbox-{}", hex::encode(random));
    let at = now();
    let body = json!({
        "external_id": p.id.to_string(),
        "crypto": p.crypto,
        "addr": p.pay_address,
        "fiat": p.currency,
        "balance_fiat": balance_fiat.to_string(),
        "balance_crypto": balance_crypto.to_string(),
        "paid": paid,
        "status": status,
        "transactions": [{
            "txid": txid,
            "date": at.format("%Y-%m-%d %H:%M:%S").to_string(),
            "amount_crypto": gap(balance_crypto, already_crypto)?,
            "amount_fiat": gap(balance_fiat, already_fiat)?,
            "trigger": true,
            "crypto": p.crypto,
        }],
        "fee_percent": "0",
        "overpaid_fiat": gap(balance_fiat, total_fiat)?,
    });
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let ts = at.timestamp();
    let mut headers = HeaderMap::new();
    let sig = signature::sign(ctx.webhook_key.expose_secret(), ts, &bytes);
    headers.insert(
        signature::SIGNATURE_HEADER,
        HeaderValue::from_str(&sig).map_err(ApiError::internal)?,
    );
    headers.insert(signature::TIMESTAMP_HEADER, HeaderValue::from(ts));
    match receive(state, ctx, CallbackKind::Payment, &headers, &bytes).await {
        Ok(_) => {}
        // We signed it ourselves: a refusal is our bug, not the caller's.
        Err(ApiError::Unauthenticated { detail, .. }) => return Err(ApiError::internal(detail)),
        Err(e) => return Err(e),
    }
    let updated = payment::Entity::find_by_id(payment_id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(updated.to_api())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    #[test]
    fn callbacks_move_a_payment_forward_only_and_never_out_of_refunded() {
        assert_eq!(after_callback(Pending, PartiallyPaid), PartiallyPaid);
        assert_eq!(after_callback(Pending, Completed), Completed);
        assert_eq!(after_callback(PartiallyPaid, Completed), Completed);
        assert_eq!(after_callback(Completed, PartiallyPaid), Completed);
        assert_eq!(after_callback(PartiallyPaid, PartiallyPaid), PartiallyPaid);
        assert_eq!(after_callback(Refunded, Completed), Refunded);
        assert_eq!(after_callback(Refunded, PartiallyPaid), Refunded);
    }
}
