//! What the admin console shows about the running system: the live nodes with their socket
//! counts (`GET /api/admin/nodes`) and how far each bus subscriber is behind
//! (`GET /api/admin/subscribers`). Both read tables the kernel defines (`nodes`, written by each
//! node's heartbeat in `connections`; `subscriber_cursors` of the bus).

use axum::extract::State;
use catalog::contract::now;
use chrono::{DateTime, Utc};
use kernel::error::Problem;
use kernel::monitor::entity::node;
use kernel::monitor::{NODE_LIVE_WITHIN, SubscriberLag};
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::service::require_admin;

/// One running server process.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Chosen by the process when it starts (a new one after each restart).
    pub id: String,
    /// The machine's host name.
    pub host: String,
    /// Sockets connected to this node at its last heartbeat.
    pub sockets: i64,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (every 5 s; a node silent for 15 s is no longer listed).
    pub heartbeat_at: DateTime<Utc>,
}

/// The live nodes and their sockets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodesView {
    /// Live nodes, oldest first.
    pub items: Vec<NodeView>,
    /// Sockets on all of them.
    pub total_sockets: i64,
}

/// Every bus subscriber's lag.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscribersView {
    /// The id of the newest event in the log (0 when it is empty).
    pub newest_event_id: i64,
    /// By name.
    pub items: Vec<SubscriberLag>,
}

/// The system views of the console.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(nodes))
        .routes(routes!(subscribers))
}

/// The live server processes with their connected sockets (admins). Each node writes a
/// heartbeat every 5 s; one silent for 15 s (stopped or dead) is left out. Works with one
/// process or a cluster alike.
#[utoipa::path(get, path = "/api/admin/nodes", operation_id = "listNodes", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = NodesView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`database_unavailable`"),
    ))]
async fn nodes(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
) -> Result<axum::Json<NodesView>> {
    require_admin(&caller)?;
    let since = now() - chrono::Duration::from_std(NODE_LIVE_WITHIN).unwrap_or_default();
    let items: Vec<NodeView> = node::Entity::find()
        .filter(node::Column::HeartbeatAt.gte(since))
        .order_by_asc(node::Column::StartedAt)
        .all(&db)
        .await?
        .into_iter()
        .map(|n| NodeView {
            id: n.id,
            host: n.host,
            sockets: n.sockets,
            started_at: n.started_at,
            heartbeat_at: n.heartbeat_at,
        })
        .collect();
    let total_sockets = items.iter().map(|n| n.sockets).sum();
    Ok(axum::Json(NodesView {
        items,
        total_sockets,
    }))
}

/// How far each bus subscriber is behind the newest event (admins): `lag` = newest event id
/// minus the subscriber's cursor. A lag that keeps growing means a subscriber is stuck or
/// too slow.
#[utoipa::path(get, path = "/api/admin/subscribers", operation_id = "listSubscribers", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = SubscribersView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "`database_unavailable`"),
    ))]
async fn subscribers(
    State(bus): State<EventBus>,
    caller: AuthUser,
) -> Result<axum::Json<SubscribersView>> {
    require_admin(&caller)?;
    let newest_event_id = bus.latest_id().await?;
    let items = kernel::monitor::subscriber_lags(bus.db(), newest_event_id).await?;
    Ok(axum::Json(SubscribersView {
        newest_event_id,
        items,
    }))
}
