//! `/api/payments*`, `/api/payouts*`, `/api/webhooks/shkeeper*`, `/api/admin/webhooks` and
//! (sandbox only) `/api/sandbox/payments/{id}/simulate`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use catalog::contract::{Page, Payment, Payout};
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query, RawBody};
use kernel::pagination::PageParams;
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::Payments;
use crate::dto::{
    AttentionItem, CreatePaymentBody, CryptoView, PaymentListParams, SimulateBody, WebhookAccepted,
    WebhookEventView, WebhookListParams,
};
use crate::webhook::{self, CallbackKind};
use crate::{admin, payouts, service};

type Ctx = Extension<Arc<Payments>>;

pub fn router(ctx: Arc<Payments>) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(cryptos))
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(shkeeper_callback))
        .routes(routes!(shkeeper_payout_callback))
        .routes(routes!(list_webhooks))
        .routes(routes!(list_payouts))
        .routes(routes!(get_payout))
        .routes(routes!(attention))
        .routes(routes!(retry_payout))
        .routes(routes!(refund_payment));
    if ctx.sandbox {
        router = router.routes(routes!(simulate));
    }
    router.layer(Extension(ctx))
}

/// The cryptos the provider accepts now.
#[utoipa::path(get, path = "/api/payments/cryptos", operation_id = "listCryptos", tag = "payments", security(("bearer" = [])),
    responses(
        (status = 200, body = [CryptoView]),
        (status = 401, body = Problem),
        (status = 502, body = Problem, description = "`provider_error`"),
        (status = 503, body = Problem, description = "`provider_unavailable`"),
    ))]
async fn cryptos(Extension(ctx): Ctx, _caller: AuthUser) -> Result<axum::Json<Vec<CryptoView>>> {
    Ok(axum::Json(service::cryptos(&ctx).await?))
}

/// Pay an accepted request (its buyer): an invoice for the accepted offer's price. While a
/// payment of the request is pending or partially paid, this answers 200 with it.
#[utoipa::path(post, path = "/api/payments", operation_id = "createPayment", tag = "payments", security(("bearer" = [])), request_body = CreatePaymentBody,
    responses(
        (status = 201, body = Payment, description = "a new invoice"),
        (status = 200, body = Payment, description = "the request's open payment, unchanged"),
        (status = 403, body = Problem, description = "not a buyer"),
        (status = 404, body = Problem, description = "no such request of this buyer"),
        (status = 409, body = Problem, description = "`request_not_accepted`"),
        (status = 422, body = Problem),
        (status = 502, body = Problem, description = "`provider_error`: the provider refused, with its message"),
        (status = 503, body = Problem, description = "`provider_unavailable`: unreachable or slower than 10 s"),
    ))]
async fn create_payment(
    State(state): State<AppState>,
    Extension(ctx): Ctx,
    caller: AuthUser,
    Json(body): Json<CreatePaymentBody>,
) -> Result<(StatusCode, axum::Json<Payment>)> {
    let (created, payment) = service::create(&state, &ctx, caller, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(payment)))
}

/// Payments visible to the caller (its buyer, its seller, admins), newest first; `requestId`
/// narrows to one request (404 when the caller may not see it).
#[utoipa::path(get, path = "/api/payments", operation_id = "listPayments", tag = "payments", security(("bearer" = [])), params(PaymentListParams),
    responses((status = 200, body = Page<Payment>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn list_payments(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<PaymentListParams>,
) -> Result<axum::Json<Page<Payment>>> {
    Ok(axum::Json(service::list(&db, caller, params).await?))
}

/// One payment (its buyer, its seller, admins).
#[utoipa::path(get, path = "/api/payments/{id}", operation_id = "getPayment", tag = "payments", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Payment), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_payment(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Payment>> {
    Ok(axum::Json(service::get(&db, caller, id).await?.to_api()))
}

type Accepted = (StatusCode, axum::Json<WebhookAccepted>);

fn accepted(outcome: webhook::Outcome) -> Accepted {
    (
        StatusCode::ACCEPTED,
        axum::Json(WebhookAccepted {
            outcome: outcome.as_str().to_owned(),
        }),
    )
}

/// SHKeeper's payment callback (no bearer: the signature authenticates it). Headers
/// `X-Shkeeper-Timestamp` and `X-Shkeeper-Signature` = hex HMAC-SHA256(api key,
/// `"{timestamp}." + raw body`), within ±300 s; the legacy `X-Shkeeper-Api-Key` only when
/// `SHKEEPER_ALLOW_LEGACY_API_KEY`. Stored, then answered 202; applied once per
/// (`external_id`, triggering txid).
///
/// **Absurd amounts are answered 202 with outcome `rejected`.** `balance_crypto` and
/// `balance_fiat` must be decimal numbers, not negative, and at most 10× the invoice's crypto
/// resp. fiat amount. One that is not is stored with outcome `rejected` and the reason (see
/// `GET /api/admin/webhooks?status=rejected`), and changes no money. It is answered 202, not
/// 4xx, on purpose: SHKeeper retries anything but 202 about every 60 s without end, the
/// signed body would be the same each time and so would our verdict; the callback is on
/// record and a person looks at it. A later, sane callback for the same transaction still
/// applies.
#[utoipa::path(post, path = "/api/webhooks/shkeeper", operation_id = "receiveShkeeperCallback", tag = "webhooks",
    request_body(content = Object, description = "SHKeeper's callback body, compact JSON"),
    responses(
        (status = 202, body = WebhookAccepted, description = "stored; `outcome` is `applied`, `duplicate`, `unmatched` or `rejected` (an absurd amount: no money moved)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "signed but not a JSON object (stored as `rejected`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "`invalid_signature`; nothing is stored or changed"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "`payload_too_large`: over `BODY_LIMIT_BYTES`; nothing is stored"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`database_unavailable`; the provider retries"),
    ))]
async fn shkeeper_callback(
    State(state): State<AppState>,
    Extension(ctx): Ctx,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Accepted> {
    webhook::receive(&state, &ctx, CallbackKind::Payment, &headers, &body)
        .await
        .map(accepted)
}

/// SHKeeper's payout callback (`{ payout_id, external_id, tx_hash, status }`), signed the same
/// way. Finishes the payout unless polling already did.
#[utoipa::path(post, path = "/api/webhooks/shkeeper/payout", operation_id = "receiveShkeeperPayoutCallback", tag = "webhooks",
    request_body(content = Object, description = "SHKeeper's payout callback body"),
    responses(
        (status = 202, body = WebhookAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "signed but not a JSON object (stored as `rejected`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "`invalid_signature`; nothing is stored or changed"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "`payload_too_large`: over `BODY_LIMIT_BYTES`; nothing is stored"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`database_unavailable`; the provider retries"),
    ))]
async fn shkeeper_payout_callback(
    State(state): State<AppState>,
    Extension(ctx): Ctx,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Accepted> {
    webhook::receive(&state, &ctx, CallbackKind::Payout, &headers, &body)
        .await
        .map(accepted)
}

/// Received provider callbacks with their outcome (admins).
#[utoipa::path(get, path = "/api/admin/webhooks", operation_id = "listWebhooks", tag = "webhooks", security(("bearer" = [])), params(WebhookListParams),
    responses((status = 200, body = Page<WebhookEventView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_webhooks(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<WebhookListParams>,
) -> Result<axum::Json<Page<WebhookEventView>>> {
    Ok(axum::Json(webhook::list(&db, caller, params).await?))
}

/// The caller's payouts (admins: all), newest first.
#[utoipa::path(get, path = "/api/payouts", operation_id = "listPayouts", tag = "payments", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<Payout>), (status = 401, body = Problem)))]
async fn list_payouts(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<Payout>>> {
    Ok(axum::Json(payouts::list(&db, caller, params).await?))
}

/// One payout (its recipient, admins).
#[utoipa::path(get, path = "/api/payouts/{id}", operation_id = "getPayout", tag = "payments", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Payout), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_payout(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Payout>> {
    Ok(axum::Json(payouts::get(&db, caller, id).await?))
}

/// Sandbox only (`PAYMENT_PROVIDER=sandbox`): the payment's buyer or an admin makes the
/// sandbox send the signed callback SHKeeper would send, through the same webhook code path.
/// Answers the payment afterwards.
#[utoipa::path(post, path = "/api/sandbox/payments/{id}/simulate", operation_id = "simulatePayment", tag = "sandbox", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = SimulateBody,
    responses(
        (status = 200, body = Payment),
        (status = 403, body = Problem, description = "a seller"),
        (status = 404, body = Problem, description = "no such payment of this buyer"),
        (status = 422, body = Problem),
    ))]
async fn simulate(
    State(state): State<AppState>,
    Extension(ctx): Ctx,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<SimulateBody>,
) -> Result<axum::Json<Payment>> {
    Ok(axum::Json(
        webhook::simulate(&state, &ctx, caller, id, body.status.trim()).await?,
    ))
}

/// Money that needs a person (admins), newest first: failed payouts nobody has retried
/// (`payout_failed`, action `retry_payout`) and completed payments of cancelled requests
/// nobody has refunded (`paid_after_cancel`, action `refund_payment`). `blockedBy` says when
/// the action would be refused now (`no_payout_address`). Rejected provider callbacks are
/// under `GET /api/admin/webhooks?status=rejected`.
#[utoipa::path(get, path = "/api/admin/attention", operation_id = "listMoneyNeedingAttention", tag = "admin", security(("bearer" = [])), params(PageParams),
    responses(
        (status = 200, body = Page<AttentionItem>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad `limit` or `cursor`"),
    ))]
async fn attention(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<AttentionItem>>> {
    Ok(axum::Json(admin::attention(&db, caller, params).await?))
}

/// Retry a `failed` payout (admins): starts a NEW payout (new id, so a new `external_id` at
/// the provider) for the same payment and kind, to the recipient's current `payoutAddress`,
/// submitted at once; the failed one stays as history. Emits `payout:created`, then
/// `payout:completed` or `payout:failed`. Never two live payouts for one payment and kind.
#[utoipa::path(post, path = "/api/admin/payouts/{id}/retry", operation_id = "retryPayout", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the failed payout")),
    responses(
        (status = 201, body = Payout, description = "the new payout, `pending`"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such payout (or not a UUID)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`payout_not_failed`, `payout_superseded` (a newer payout replaced it), `payout_exists`, `payment_not_completed`, `payment_paid_out`, `no_payout_address`"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`database_unavailable`"),
    ))]
async fn retry_payout(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<Payout>)> {
    let created = admin::retry_payout(&bus, caller, id).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Refund a `completed` payment whose request is `cancelled` (admins): starts a `refund`
/// payout of what was received to the buyer's `payoutAddress`, submitted at once; the payment
/// becomes `refunded` when it completes. Emits `payout:created`, then `payout:completed` or
/// `payout:failed`.
#[utoipa::path(post, path = "/api/admin/payments/{id}/refund", operation_id = "refundPayment", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the payment")),
    responses(
        (status = 201, body = Payout, description = "the refund payout, `pending`"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such payment (or not a UUID)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`payment_not_completed`, `request_not_cancelled`, `refund_exists` (already started: retry it if it failed), `payment_paid_out`, `no_payout_address` (the buyer has none)"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`database_unavailable`"),
    ))]
async fn refund_payment(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<Payout>)> {
    let created = admin::refund_payment(&bus, caller, id).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}
