//! The public shapes of the contract (`CONTRACT.md`): what REST answers and what socket
//! events carry. They live in the catalog, not in their modules, because events of one module
//! carry another's shapes (a notification for an offer, a payment for a request) and the
//! catalog must name them all. Status machines (which move is allowed) live in the module
//! that owns the status.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// RFC 3339 in UTC with millisecond precision, as every timestamp of this API is written.
pub type Timestamp = DateTime<Utc>;

/// The time now, cut to what every engine stores (microseconds), so a value written and read
/// back compares equal.
pub fn now() -> Timestamp {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A new time-ordered id (UUID v7): ids sort like their creation time, which cursors rely on.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// What a user is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Buyer,
    Seller,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Seller => "seller",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "buyer" => Some(Role::Buyer),
            "seller" => Some(Role::Seller),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One invalid field of a 422 answer.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The camelCase name of the field, as the client sent it.
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub payout_address: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What the other parties of this user's completed requests said, from published reviews.
    pub rating: Rating,
}

/// A user's rating from published reviews: `{ average, count }`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// The mean of the published ratings, rounded to two decimals; `null` when there are none.
    #[schema(example = 4.5, minimum = 1, maximum = 5)]
    pub average: Option<f64>,
    /// How many published reviews the average is over.
    pub count: u64,
}

impl Rating {
    /// The rating of `count` published reviews whose ratings add up to `sum`.
    pub fn from_sum(sum: i64, count: i64) -> Self {
        if count <= 0 {
            return Self {
                average: None,
                count: 0,
            };
        }
        let mean = sum as f64 / count as f64;
        Self {
            average: Some((mean * 100.0).round() / 100.0),
            count: count as u64,
        }
    }
}

/// A decimal amount with its currency: `{ "amount": "125.50", "currency": "USD" }`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Money {
    /// A decimal string, never a float.
    #[schema(value_type = String, example = "125.50")]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// ISO 4217 code, upper case.
    #[schema(example = "USD")]
    pub currency: String,
}

/// ISO 4217 codes accepted for prices and budgets.
pub const CURRENCIES: &[&str] = &[
    "USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK",
    "HUF", "RON", "BGN", "TRY", "ILS", "AED", "SAR", "INR", "CNY", "HKD", "SGD", "KRW", "THB",
    "MYR", "IDR", "PHP", "BRL", "MXN", "ARS", "CLP", "COP", "PEN", "ZAR", "NGN", "KES", "EGP",
    "UAH",
];

/// Currencies without minor units.
const ZERO_DECIMAL: &[&str] = &["JPY", "KRW", "CLP", "HUF"];

/// A money value as the client sends it, before it is known to be valid. Its fields stay raw
/// JSON so a wrong type is answered with a 422 naming `price.amount` rather than a generic
/// body error; its schema says what [`Money::parse`] accepts.
#[derive(Debug, Clone, Deserialize)]
pub struct MoneyInput {
    pub amount: serde_json::Value,
    pub currency: serde_json::Value,
}

/// The pattern of a decimal amount string as [`Money::parse`] reads it (it also requires the
/// value to be positive, at most 10^12, with at most two decimals, none for JPY/KRW/CLP/HUF).
pub const AMOUNT_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?$";

impl utoipa::PartialSchema for MoneyInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .description(Some(
                "A price or budget as sent: a positive decimal string (at most two decimals, none for zero-decimal currencies, at most 10^12) and an ISO 4217 code.",
            ))
            .property(
                "amount",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(AMOUNT_PATTERN))
                    .min_length(Some(1))
                    .max_length(Some(24))
                    .examples(["125.50"]),
            )
            .required("amount")
            .property(
                "currency",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(CURRENCIES.iter().copied()))
                    .examples(["USD"]),
            )
            .required("currency")
            .into()
    }
}

impl ToSchema for MoneyInput {
    fn name() -> std::borrow::Cow<'static, str> {
        "MoneyInput".into()
    }
}

impl Money {
    /// Parses a money value from the client: a positive decimal string with at most two
    /// decimals (none for zero-decimal currencies) and a known ISO currency. `field` names the
    /// field of the 422 answer the error becomes.
    pub fn parse(field: &str, input: &MoneyInput) -> Result<Money, FieldError> {
        let amount_text = input.amount.as_str().ok_or_else(|| {
            FieldError::new(
                format!("{field}.amount"),
                "must be a decimal string such as \"12.50\"",
            )
        })?;
        let currency = input.currency.as_str().ok_or_else(|| {
            FieldError::new(
                format!("{field}.currency"),
                "must be an ISO 4217 code such as \"USD\"",
            )
        })?;
        if !CURRENCIES.contains(&currency) {
            return Err(FieldError::new(
                format!("{field}.currency"),
                "unknown ISO 4217 currency code",
            ));
        }
        let well_formed = !amount_text.is_empty()
            && amount_text.len() <= 24
            && amount_text.chars().all(|c| c.is_ascii_digit() || c == '.')
            && amount_text.matches('.').count() <= 1
            && !amount_text.starts_with('.')
            && !amount_text.ends_with('.');
        let amount: Decimal = if well_formed {
            amount_text.parse().ok()
        } else {
            None
        }
        .ok_or_else(|| {
            FieldError::new(
                format!("{field}.amount"),
                "must be a decimal string such as \"12.50\"",
            )
        })?;
        if amount <= Decimal::ZERO {
            return Err(FieldError::new(
                format!("{field}.amount"),
                "must be positive",
            ));
        }
        let max_scale = if ZERO_DECIMAL.contains(&currency) {
            0
        } else {
            2
        };
        if amount.normalize().scale() > max_scale {
            return Err(FieldError::new(
                format!("{field}.amount"),
                format!("at most {max_scale} decimals"),
            ));
        }
        if amount > Decimal::from(1_000_000_000_000i64) {
            return Err(FieldError::new(format!("{field}.amount"), "too large"));
        }
        Ok(Money {
            amount: amount.round_dp(max_scale),
            currency: currency.to_owned(),
        })
    }
}

/// Status of a purchase request. Transitions are enforced by the requests module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Open,
    Accepted,
    Paid,
    /// The accepted seller says it is delivered; the buyer completes or disputes it, else it
    /// completes by itself at `autoCompleteAt`.
    Delivered,
    Completed,
    Cancelled,
    Disputed,
    Refunded,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Paid => "paid",
            Self::Delivered => "delivered",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Disputed => "disputed",
            Self::Refunded => "refunded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "accepted" => Self::Accepted,
            "paid" => Self::Paid,
            "delivered" => Self::Delivered,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            "disputed" => Self::Disputed,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequest {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub budget: Option<Money>,
    pub status: RequestStatus,
    pub accepted_offer_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the accepted seller marked it delivered; `null` until then.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When a delivered request completes by itself unless its buyer completes or disputes
    /// it first (`deliveredAt` + `AUTO_COMPLETE_AFTER_SECS`); `null` until delivered. It stays
    /// set once the request moved on, as the record of the deadline it had.
    pub auto_complete_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OfferStatus {
    Pending,
    Accepted,
    Rejected,
    Withdrawn,
}

impl OfferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            "withdrawn" => Self::Withdrawn,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SellerOffer {
    pub id: Uuid,
    pub request_id: Uuid,
    pub seller_id: Uuid,
    pub price: Money,
    pub message: String,
    pub status: OfferStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who the seller is and how they are rated: shown in offer listings
    /// (`GET /api/requests/{id}/offers`), absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub seller: Option<SellerProfile>,
}

/// The seller of an offer as a listing shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SellerProfile {
    pub id: Uuid,
    pub name: String,
    pub rating: Rating,
}

/// A review one party of a completed request wrote about the other. Hidden (shown to its
/// author only) until both parties reviewed or the review window closed; then published.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: Uuid,
    pub request_id: Uuid,
    /// Who wrote it: the request's buyer or its accepted seller.
    pub author_id: Uuid,
    /// Who it is about: the other of the two.
    pub subject_id: Uuid,
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: u8,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it became visible to everyone; `null` while hidden.
    pub published_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferMessage {
    pub id: Uuid,
    pub offer_id: Uuid,
    pub author_id: Uuid,
    pub message: String,
    pub price: Option<Money>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub id: Uuid,
    pub request_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub last_message_at: Option<DateTime<Utc>>,
    pub unread_count: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    /// The text; empty when the message carries only attachments.
    pub content: String,
    pub created_at: DateTime<Utc>,
    /// The files sent with it, in the order they were given. Their links are minted when the
    /// message is shown (in an event: when it was sent; fetch `GET /api/attachments/{id}` for
    /// fresh ones).
    #[serde(default)]
    #[schema(required = true)]
    pub attachments: Vec<Attachment>,
    /// Reactions by emoji, in the order each emoji was first used (empty in
    /// `chat:new-message`: a new message has none).
    #[serde(default)]
    #[schema(required = true)]
    pub reactions: Vec<Reaction>,
}

/// One emoji's reactions on a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    /// The emoji in its compared form: NFC, without U+FE0F.
    pub emoji: String,
    /// How many users reacted with it.
    pub count: u64,
    /// Whether the caller is one of them.
    pub me: bool,
}

/// An uploaded file (`POST /api/uploads`), as its viewers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: Uuid,
    /// The name it was uploaded with (path and control characters removed).
    pub name: String,
    /// What the bytes are, recognised from them: `image/jpeg`, `image/png`, `image/webp`,
    /// `image/gif` or `application/pdf`.
    pub content_type: String,
    /// Bytes stored (after re-encoding, for images).
    pub size: u64,
    /// SHA-256 of the stored bytes, lowercase hex: what proves a piece of evidence unchanged.
    pub sha256: String,
    /// Pixels, for images (orientation applied); null for PDFs.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A link to the content, valid 10 minutes.
    pub url: String,
    /// A link to a thumbnail at most 320 px a side (images only), valid 10 minutes.
    pub thumbnail_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    PartiallyPaid,
    Completed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::PartiallyPaid => "partially_paid",
            Self::Completed => "completed",
            Self::Refunded => "refunded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "partially_paid" => Self::PartiallyPaid,
            "completed" => Self::Completed,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Uuid,
    pub request_id: Uuid,
    pub offer_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub amount: Money,
    pub crypto: String,
    /// Decimal string.
    pub crypto_amount: String,
    pub pay_address: String,
    /// Decimal string.
    pub exchange_rate: String,
    pub paid_amount: Money,
    pub status: PaymentStatus,
    pub provider_payment_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayoutKind {
    Release,
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayoutStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Payout {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub request_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: PayoutKind,
    /// Decimal string, in `crypto`.
    pub amount: String,
    pub crypto: String,
    pub destination: String,
    pub status: PayoutStatus,
    pub provider_task_id: Option<String>,
    pub tx_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DisputeStatus {
    Open,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    ReleaseToSeller,
    RefundBuyer,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    pub id: Uuid,
    pub request_id: Uuid,
    pub opened_by: Uuid,
    pub reason: String,
    pub status: DisputeStatus,
    pub resolution: Option<Resolution>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub id: Uuid,
    pub dispute_id: Uuid,
    pub author_id: Uuid,
    pub description: String,
    pub attachment_url: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Files given as `attachmentIds`, kept unchanged while the dispute exists.
    #[serde(default)]
    #[schema(required = true)]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub recipient_id: Uuid,
    /// The name of the event that caused it, e.g. `offer:accepted`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// The ids a UI links to (`requestId`, `offerId`, `chatId`, ...).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A page of a list: `{ items, nextCursor }`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass it back as `?cursor=` for the next page. `null` on the last page.
    pub next_cursor: Option<String>,
}
