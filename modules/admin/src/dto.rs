//! Request and response bodies of the admin endpoints that are not contract types.

use chrono::{DateTime, Utc};
use kernel::bus::entity::dead_letter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An event a subscriber still failed on after its retries. While `open` it is retried
/// automatically (pauses double, at most 10 minutes apart) until it succeeds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub id: Uuid,
    /// The subscriber's stable name (`notifications`, `payments.payouts`, ...).
    pub subscriber: String,
    /// The event's id in the log (the `id` clients see in `{ id, at }`).
    pub event_id: i64,
    /// The catalog name of the event (`request:status-updated`, ...).
    pub event_name: String,
    /// `open` (still failing, retried automatically) or `resolved` (handled on a retry).
    #[schema(example = "open")]
    pub status: String,
    /// Every attempt so far, the first retries included.
    pub attempts: i32,
    /// The error of the last failed attempt (a panic reads `handler panicked: ...`).
    pub last_error: String,
    pub first_failed_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    /// When the next automatic retry is due; `null` once resolved.
    pub next_retry_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<dead_letter::Model> for DeadLetter {
    fn from(m: dead_letter::Model) -> Self {
        Self {
            id: m.id,
            subscriber: m.subscriber,
            event_id: m.event_id,
            event_name: m.event_name,
            status: if m.resolved_at.is_some() {
                "resolved"
            } else {
                "open"
            }
            .to_owned(),
            attempts: m.attempts,
            last_error: m.last_error,
            first_failed_at: m.first_failed_at,
            last_failed_at: m.last_failed_at,
            next_retry_at: m.next_retry_at,
            resolved_at: m.resolved_at,
        }
    }
}

/// `GET /api/admin/dead-letters` query: newest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterListParams {
    /// `open` or `resolved`; both when absent.
    pub status: Option<String>,
    /// Only this subscriber's.
    pub subscriber: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The answer of `POST /api/admin/dead-letters/{id}/retry`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterRetry {
    /// `succeeded` (handled; the dead letter is resolved), `failed` (failed again; see
    /// `error`, the next automatic retry is scheduled) or `pending` (the node holding the
    /// subscriber did not run it within 15 s; it is due now and runs as soon as it can).
    #[schema(example = "succeeded")]
    pub outcome: String,
    /// The error of this attempt when it `failed`.
    pub error: Option<String>,
    pub dead_letter: DeadLetter,
}

/// `POST /api/admin/announcements`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AnnouncementBody {
    /// 1..2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub message: String,
}

/// `POST /api/admin/maintenance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceBody {
    /// 1..2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub message: String,
    /// RFC 3339.
    pub starts_at: DateTime<Utc>,
}

/// A delayed job (a durable timer: an email digest, ...) that still failed after its last
/// attempt. It waits for an admin's retry (or for the same job to be scheduled again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedJob {
    pub id: Uuid,
    /// What kind of work, e.g. `mail.digest` (an email digest).
    #[schema(example = "mail.digest")]
    pub kind: String,
    /// Which one of that kind (for `mail.digest`, the user id).
    pub key: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<kernel::timers::entity::Model> for FailedJob {
    fn from(m: kernel::timers::entity::Model) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            key: m.key,
            attempts: m.attempts,
            last_error: m.last_error,
            failed_at: m.failed_at,
            created_at: m.created_at,
        }
    }
}

/// `GET /api/admin/failed-jobs`: oldest failure first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailedJobs {
    /// At most 100.
    pub items: Vec<FailedJob>,
}
