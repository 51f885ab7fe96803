//! What comes in and goes out of the payments routes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `POST /api/payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePaymentBody {
    pub request_id: Uuid,
    /// A crypto name from `GET /api/payments/cryptos`, e.g. `BTC`.
    #[schema(example = "BTC", pattern = r"^\s*[A-Za-z0-9_-]{1,32}\s*$")]
    pub crypto: String,
}

/// One crypto the provider accepts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CryptoView {
    pub name: String,
    pub display_name: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PaymentListParams {
    /// The payments of this request (visible to its buyer, its seller and admins).
    pub request_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookListParams {
    /// `applied`, `duplicate`, `unmatched`, `rejected` (or `received`: stored, not yet applied).
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A provider callback as it was received, with what became of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventView {
    pub id: Uuid,
    /// `payment` or `payout`.
    pub kind: String,
    pub external_id: Option<String>,
    /// The provider's status word (`PAID`, `PARTIAL`, `OVERPAID`, `unconfirmed`, `SUCCESS`).
    pub provider_status: Option<String>,
    pub txid: Option<String>,
    /// `applied`, `duplicate`, `unmatched`, `rejected`, or `received` while being applied.
    pub outcome: String,
    /// `signature`, `legacy_api_key`.
    pub auth: String,
    pub detail: Option<String>,
    /// The body as received: JSON when it parses, else the text.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// `POST /api/sandbox/payments/{id}/simulate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SimulateBody {
    /// `PAID`, `PARTIAL` or `OVERPAID`.
    #[schema(example = "PAID", pattern = r"^\s*(PAID|PARTIAL|OVERPAID)\s*$")]
    pub status: String,
}

/// The answer to a provider callback.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookAccepted {
    /// `applied`, `duplicate`, `unmatched` or `rejected`.
    pub outcome: String,
}

/// One thing about money that needs a person (`GET /api/admin/attention`), with the action
/// that applies to it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttentionItem {
    /// `payout_failed`: the provider refused or failed a payout and nothing has replaced it.
    /// `paid_after_cancel`: a payment completed for a request that is `cancelled`, and no
    /// refund has been started.
    /// `underpaid_callback`: the provider said `PAID` for less than the invoice (less
    /// `PAYMENT_UNDERPAID_TOLERANCE_PERCENT`); the payment stays `partially_paid` and the seller
    /// is not paid. `other_currency_callback`: the provider said `PAID` in another fiat currency
    /// or crypto; nothing was applied. Both stay listed until the payment completes or is
    /// refunded.
    #[schema(example = "payout_failed")]
    pub kind: String,
    /// The payout's id (`payout_failed`), the payment's id (`paid_after_cancel`), or the
    /// stored callback's id (`underpaid_callback`, `other_currency_callback`; see
    /// `GET /api/admin/webhooks`).
    pub id: Uuid,
    pub request_id: Uuid,
    /// What a person can do here: `retry_payout` or `refund_payment`; `null` when nothing can
    /// be done through this API (a callback that claimed more than it paid: settle it with the
    /// provider and the buyer).
    #[schema(example = "retry_payout")]
    pub action: Option<String>,
    /// `POST` this path (as an admin) to take the action; `null` with `action`.
    #[schema(example = "/api/admin/payouts/0193a0c4-7d2e-7b3a-9f1e-2c3d4e5f6a7b/retry")]
    pub action_path: Option<String>,
    /// Why it needs a person: the provider's failure reason, or what happened.
    pub reason: String,
    /// Set when the action would be refused now, e.g. `no_payout_address` (the recipient must
    /// set a `payoutAddress` first).
    pub blocked_by: Option<String>,
    /// The failed payout (`payout_failed`).
    pub payout: Option<catalog::contract::Payout>,
    /// The payment (`paid_after_cancel`, and the payment a callback named).
    pub payment: Option<catalog::contract::Payment>,
    /// When it started needing attention (the payout's or payment's last change).
    pub since: DateTime<Utc>,
}
