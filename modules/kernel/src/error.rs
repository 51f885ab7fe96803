//! One error type for every HTTP answer that is not a success: RFC 9457 problem documents
//! with a stable machine `code`. Internal causes are logged, never sent.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// Declares [`ErrorCode`]: each variant with its wire word, written once.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)+) => {
        /// Every stable machine word a problem document's `code` (and a socket ack's `code`)
        /// can carry. Clients branch on these; they never change once shipped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $code)] $variant,)+
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(Self::$variant),+];

            /// The wire word, e.g. `not_found`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }
        }
    };
}

error_codes! {
    // Any route.
    Unauthorized = "unauthorized",
    Forbidden = "forbidden",
    NotFound = "not_found",
    MethodNotAllowed = "method_not_allowed",
    RouteNotFound = "route_not_found",
    PayloadTooLarge = "payload_too_large",
    UnsupportedMediaType = "unsupported_media_type",
    MalformedJson = "malformed_json",
    UnreadableBody = "unreadable_body",
    InvalidBody = "invalid_body",
    InvalidQuery = "invalid_query",
    ValidationFailed = "validation_failed",
    RateLimited = "rate_limited",
    Busy = "busy",
    Internal = "internal",
    DatabaseUnavailable = "database_unavailable",
    /// The same `Idempotency-Key` was used with another request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// A request with this `Idempotency-Key` is still running.
    IdempotencyKeyInFlight = "idempotency_key_in_flight",
    // Operations.
    RedisUnavailable = "redis_unavailable",
    MetricsUnavailable = "metrics_unavailable",
    DeadLetterResolved = "dead_letter_resolved",
    // Accounts.
    EmailTaken = "email_taken",
    PayoutAddressRequired = "payout_address_required",
    // Requests and offers.
    InvalidTransition = "invalid_transition",
    RequestNotOpen = "request_not_open",
    OfferExists = "offer_exists",
    // Payments, payouts and provider callbacks.
    RequestNotAccepted = "request_not_accepted",
    RequestNotCancelled = "request_not_cancelled",
    PaymentConflict = "payment_conflict",
    NothingToPay = "nothing_to_pay",
    NoPayment = "no_payment",
    PaymentNotCompleted = "payment_not_completed",
    PaymentPaidOut = "payment_paid_out",
    NoPayoutAddress = "no_payout_address",
    PayoutExists = "payout_exists",
    PayoutNotFailed = "payout_not_failed",
    PayoutSuperseded = "payout_superseded",
    RefundExists = "refund_exists",
    AmountOutOfRange = "amount_out_of_range",
    InvalidSignature = "invalid_signature",
    ProviderError = "provider_error",
    ProviderUnavailable = "provider_unavailable",
    // Disputes.
    DisputeOpen = "dispute_open",
    DisputeClosed = "dispute_closed",
    // Reviews.
    /// This author already reviewed this request.
    ReviewExists = "review_exists",
    /// Reviews are written once the request is completed.
    RequestNotCompleted = "request_not_completed",
    /// The review window of the request has closed.
    ReviewWindowClosed = "review_window_closed",
    // Chat and files.
    TooManyReactions = "too_many_reactions",
    EvidenceLocked = "evidence_locked",
    StorageUnavailable = "storage_unavailable",
    // Email.
    InvalidUnsubscribeToken = "invalid_unsubscribe_token",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Result` with [`ApiError`] as the default error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// An RFC 9457 problem document as this API sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` style ids under this API's docs).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable machine word (`not_found`, `email_taken`, `invalid_transition`, ...).
    pub code: String,
    /// The invalid fields of a 422; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

/// Every failure a handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: ErrorCode, detail: String },
    #[error("unauthorized")]
    Unauthorized,
    /// A 401 with its own code and detail, for credentials other than a bearer token (e.g. a
    /// provider callback's signature: `invalid_signature`).
    #[error("{detail}")]
    Unauthenticated { code: ErrorCode, detail: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("no such route")]
    NoRoute,
    #[error("{detail}")]
    Conflict { code: ErrorCode, detail: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{detail}")]
    UnsupportedMediaType { detail: String },
    #[error("validation failed")]
    Validation {
        code: ErrorCode,
        errors: Vec<FieldError>,
    },
    #[error("too many attempts; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{detail}")]
    BadGateway { code: ErrorCode, detail: String },
    #[error("{detail}")]
    Unavailable { code: ErrorCode, detail: String },
    /// 503 `busy` with `Retry-After`: the server sheds work it cannot take now (e.g. the
    /// password-hashing queue is full) instead of letting every request time out.
    #[error("the server is busy; retry after {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// Anything the client did not cause. The message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }
    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }
    /// A 401 with a specific code, e.g. [`ErrorCode::InvalidSignature`].
    pub fn unauthenticated(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Unauthenticated {
            code,
            detail: detail.into(),
        }
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(detail.into())
    }
    /// A 422 with a single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            code: ErrorCode::ValidationFailed,
            errors: vec![FieldError::new(field, message)],
        }
    }
    /// A 422 with one field and a specific code (e.g. [`ErrorCode::PayoutAddressRequired`]).
    pub fn invalid_with_code(
        code: ErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Validation {
            code,
            errors: vec![FieldError::new(field, message)],
        }
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine word of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::Validation { code, .. }
            | Self::BadGateway { code, .. }
            | Self::Unavailable { code, .. } => *code,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::NoRoute => ErrorCode::RouteNotFound,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Busy { .. } => ErrorCode::Busy,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The problem document this error is answered with.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            Self::Unauthorized => "a valid bearer token is required".to_owned(),
            Self::NotFound => "the resource does not exist or is not visible to you".to_owned(),
            Self::Validation { errors, .. } => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("invalid fields: {}", fields.join(", "))
            }
            other => other.to_string(),
        };
        let code = self.code();
        Problem {
            kind: format!("https://docs.marketplace.local/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.as_str().to_owned(),
            errors: match self {
                Self::Validation { errors, .. } => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let problem = self.problem();
        let mut res = (self.status(), axum::Json(problem)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if let Self::RateLimited { retry_after_secs } | Self::Busy { retry_after_secs } = self {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
        }
        res
    }
}

/// One invalid field (e.g. from `Money::parse`) is a 422 `validation_failed` naming it.
impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        Self::Validation {
            code: ErrorCode::ValidationFailed,
            errors: vec![err],
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        match &err {
            sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_) => {
                tracing::error!(error = %err, "database unavailable");
                Self::Unavailable {
                    code: ErrorCode::DatabaseUnavailable,
                    detail: "the database is unavailable".into(),
                }
            }
            _ => Self::Internal(err.to_string()),
        }
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(api) => api,
        }
    }
}

/// True when the database error is a unique-constraint violation (a duplicate).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// The answer for a known route called with a method it does not have.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The answer for an unknown route.
pub async fn not_found_fallback() -> ApiError {
    ApiError::NoRoute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_words_serialized_as_written() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let word = code.as_str();
            assert!(seen.insert(word), "{word} twice");
            assert!(
                !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{word}"
            );
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(word));
            assert_eq!(code.to_string(), word);
        }
    }

    #[test]
    fn a_problem_carries_the_code_as_its_word() {
        let problem = ApiError::conflict(ErrorCode::EmailTaken, "taken").problem();
        assert_eq!(
            serde_json::to_string(&problem).unwrap(),
            r#"{"type":"https://docs.marketplace.local/problems/email_taken","title":"Conflict","status":409,"detail":"taken","code":"email_taken"}"#
        );
        let invalid: ApiError = FieldError::new("price.amount", "must be positive").into();
        assert_eq!(invalid.code(), ErrorCode::ValidationFailed);
        assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::NoRoute.code().as_str(), "route_not_found");
    }
}
