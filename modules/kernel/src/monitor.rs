//! Operations: the names of the Prometheus metric families (one place, so the call sites in
//! every crate and the exporter in `apps/api` agree), their known label values (so every
//! family can be shown at zero from start-up), and the read-only views that `/metrics` and the
//! admin endpoints share: subscriber lag and the nodes' heartbeats.
//!
//! Call sites use the `metrics` facade directly, e.g.
//! `metrics::counter!(monitor::EVENTS_PUBLISHED, "event" => name.as_str()).increment(1)`.
//! Without an installed recorder (unit tests, `marketplace openapi`) those calls do nothing.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde::Serialize;
use utoipa::ToSchema;

use crate::bus::entity::subscriber_cursor;
use crate::error::ApiError;

/// Gauge: sockets connected to this process.
pub const SOCKETS_CONNECTED: &str = "marketplace_sockets_connected";
/// Counter `{method, route, status}`; `route` is the axum route template.
pub const HTTP_REQUESTS: &str = "marketplace_http_requests_total";
/// Histogram `{method, route}`, seconds from request to response head.
pub const HTTP_DURATION: &str = "marketplace_http_request_duration_seconds";
/// Counter `{event}`: catalog events committed to the log.
pub const EVENTS_PUBLISHED: &str = "marketplace_events_published_total";
/// Counter `{event}`: emits handed to Socket.IO (one per event and target, not per socket).
pub const SOCKET_EMITS: &str = "marketplace_socket_emits_total";
/// Gauge `{subscriber}`: newest event id minus the subscriber's cursor.
pub const SUBSCRIBER_LAG: &str = "marketplace_subscriber_lag_events";
/// Histogram: seconds from an event's commit to its live emit to sockets.
pub const EVENT_DELIVERY: &str = "marketplace_event_delivery_seconds";
/// Counter `{outcome}`: provider callbacks by outcome ([`WEBHOOK_OUTCOMES`]).
pub const WEBHOOKS: &str = "marketplace_webhooks_total";
/// Gauge `{status}`: payouts in each status.
pub const PAYOUTS: &str = "marketplace_payouts";
/// Gauge `{subscriber}`: dead letters kept for each subscriber.
pub const DEAD_LETTERS: &str = "marketplace_dead_letters";

/// Route label of a request no route matched (never the raw path: it may hold ids).
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// Route label of the Socket.IO transport (`/socket.io/…`, answered by its own layer).
pub const SOCKET_IO_ROUTE: &str = "/socket.io";

/// How often each node writes its heartbeat into `nodes`.
pub const NODE_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// A node whose last heartbeat is older than this is not listed as live (three missed beats).
pub const NODE_LIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// Every outcome of a provider callback: the stored ones (`applied`, `duplicate`,
/// `unmatched`, `rejected`), `unauthenticated` (bad signature, nothing stored) and `error`
/// (it could not be applied; the provider retries).
/// Counter: uploads (`POST /api/uploads`) by `outcome` (see [`UPLOAD_OUTCOMES`]).
pub const UPLOADS: &str = "marketplace_uploads_total";
/// Counter: bytes received by uploads, by `outcome` (what was read before the outcome was
/// known; an upload stopped at the limit counts what was read up to it).
pub const UPLOAD_BYTES: &str = "marketplace_upload_bytes_total";
/// Every value of the `outcome` label of [`UPLOADS`] and [`UPLOAD_BYTES`].
pub const UPLOAD_OUTCOMES: [&str; 6] = [
    "stored",
    "too_large",
    "unsupported_type",
    "invalid_image",
    "bad_request",
    "failed",
];

pub const WEBHOOK_OUTCOMES: [&str; 6] = [
    "applied",
    "duplicate",
    "unmatched",
    "rejected",
    "unauthenticated",
    "error",
];

/// The heartbeats of the server processes (nodes): written by `connections`, read by admins.
pub mod entity {
    pub mod node {
        use sea_orm::entity::prelude::*;

        /// One row per running process, refreshed every few seconds; a row whose heartbeat is
        /// old belongs to a process that stopped or died.
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "nodes")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: String,
            pub host: String,
            pub sockets: i64,
            pub started_at: DateTimeUtc,
            pub heartbeat_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

/// How far one bus subscriber is behind the newest event.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberLag {
    /// The subscriber's stable name (`connections.sockets`, `notifications.create`, …).
    pub name: String,
    /// The id of the last event it handled.
    pub cursor: i64,
    /// Newest event id minus `cursor` (0 when it is up to date).
    pub lag: i64,
    /// When its cursor last moved.
    pub updated_at: DateTime<Utc>,
}

/// The lag of every subscriber that has a cursor, by name.
///
/// Fails only when the database does.
pub async fn subscriber_lags(
    db: &DatabaseConnection,
    newest: i64,
) -> Result<Vec<SubscriberLag>, ApiError> {
    let mut rows: Vec<SubscriberLag> = subscriber_cursor::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|c| SubscriberLag {
            lag: (newest - c.last_event_id).max(0),
            name: c.name,
            cursor: c.last_event_id,
            updated_at: c.updated_at,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Open (unresolved) dead letters per subscriber; subscribers without any are absent.
///
/// Fails only when the database does.
pub async fn open_dead_letters(
    db: &DatabaseConnection,
) -> Result<std::collections::BTreeMap<String, i64>, ApiError> {
    use crate::bus::entity::dead_letter;
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let rows: Vec<(String, i64)> = dead_letter::Entity::find()
        .select_only()
        .column(dead_letter::Column::Subscriber)
        .column_as(Expr::col(dead_letter::Column::Id).count(), "n")
        .filter(dead_letter::Column::ResolvedAt.is_null())
        .group_by(dead_letter::Column::Subscriber)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}
