//! REST routes of the connections module: event backfill, presence, the AsyncAPI document.

use std::sync::Arc;

use axum::Extension;
use catalog::contract::{Page, now};
use catalog::events::EventName;
use kernel::error::Problem;
use kernel::extract::{Path, Query};
use kernel::pagination::{DEFAULT_LIMIT, MAX_LIMIT};
use kernel::{ApiError, AppState, AuthUser, Result};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::gateway::Gateway;
use crate::presence;
use crate::replay::Viewer;

pub(crate) fn router(gw: Arc<Gateway>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(events_head))
        .routes(routes!(user_presence))
        .routes(routes!(asyncapi))
        .layer(Extension(gw))
}

/// `GET /api/events` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Events with an id above this one (a socket's last `meta.id`, or a `nextCursor`). Default 0.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Same as `after` (the list convention's name); `after` wins when both are given.
    pub cursor: Option<String>,
    /// Items per page: 1 to 100, default 20 (larger values are cut to 100).
    pub limit: Option<i64>,
}

/// One durable event as it was emitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventItem {
    /// The event id (the `id` of the socket's `{ id, at }`).
    pub id: i64,
    /// The event name, e.g. `offer:accepted`.
    pub event: EventName,
    /// Exactly the first argument sockets received.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Durable events after a position that the caller may see now: the same rule as the replay
/// of a reconnecting socket (the rooms of each event, evaluated for the caller). `nextCursor`
/// is the id to pass as `after` next; `null` when the log was read to its end.
#[utoipa::path(get, path = "/api/events", operation_id = "listEvents", tag = "events", params(EventsParams), security(("bearer" = [])),
    responses(
        (status = 200, body = Page<EventItem>),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "a negative `after`, a `limit` below 1, a cursor this API did not make"),
    ))]
async fn events(
    Extension(gw): Extension<Arc<Gateway>>,
    caller: AuthUser,
    Query(params): Query<EventsParams>,
) -> Result<axum::Json<Page<EventItem>>> {
    let limit = match params.limit {
        None => DEFAULT_LIMIT as usize,
        Some(n) if n < 1 => return Err(ApiError::invalid("limit", "must be at least 1")),
        Some(n) => (n as u64).min(MAX_LIMIT) as usize,
    };
    let after = match (
        params.after,
        params.cursor.as_deref().filter(|c| !c.is_empty()),
    ) {
        (Some(a), _) => a,
        (None, Some(c)) => c
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("cursor", "not a cursor this API made"))?,
        (None, None) => 0,
    };
    if after < 0 {
        return Err(ApiError::invalid("after", "must be at least 0"));
    }
    let mut viewer = Viewer::new(caller, &*gw.requests, &*gw.chats);
    let scan = gw.scan(&mut viewer, after, None, limit).await?;
    let items = scan
        .events
        .into_iter()
        .map(|e| EventItem {
            id: e.id,
            event: e.name,
            payload: e.payload,
            at: e.at,
        })
        .collect();
    let next_cursor = scan.more.then(|| scan.scanned_to.to_string());
    Ok(axum::Json(Page { items, next_cursor }))
}

/// `{ id }`: where a client without a `lastEventId` starts.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsHead {
    /// The newest event id in the log (0 when it is empty), visible to the caller or not.
    pub id: i64,
}

/// The newest event id in the log. A client that has handled no event yet connects with
/// this as `auth.lastEventId`, so every event committed after this answer reaches it (by
/// replay or live), however long its socket takes to connect.
#[utoipa::path(get, path = "/api/events/head", operation_id = "getEventsHead", tag = "events", security(("bearer" = [])),
    responses(
        (status = 200, body = EventsHead),
        (status = 401, body = Problem),
    ))]
async fn events_head(
    Extension(gw): Extension<Arc<Gateway>>,
    _caller: AuthUser,
) -> Result<axum::Json<EventsHead>> {
    let id = gw.state.bus.latest_id().await?;
    Ok(axum::Json(EventsHead { id }))
}

/// `{ userId, online, lastSeenAt }`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceView {
    pub user_id: Uuid,
    /// At least one socket of this user is connected.
    pub online: bool,
    /// Now while online; when the last socket left otherwise; `null` if never connected.
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Whether a user is connected, and when they were last seen. Visible to the user
/// themself, to users who share a chat with them, and to admins; for anyone else the user
/// does not exist (404, the same answer as an unknown id).
#[utoipa::path(get, path = "/api/users/{id}/presence", operation_id = "getUserPresence", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user's id")),
    responses(
        (status = 200, body = PresenceView),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no such user, or one the caller shares no chat with"),
    ))]
async fn user_presence(
    Extension(gw): Extension<Arc<Gateway>>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PresenceView>> {
    let visible = if caller.id == id {
        true
    } else if caller.is_admin() {
        gw.state.auth.users.current_role(id).await?.is_some()
    } else {
        gw.chats.share_a_chat(caller.id, id).await?
    };
    if !visible {
        return Err(ApiError::NotFound);
    }
    let online = gw.presence.is_online(id).await;
    let last_seen_at = if online {
        Some(now())
    } else {
        presence::last_seen(gw.state.bus.db(), id).await?
    };
    Ok(axum::Json(PresenceView {
        user_id: id,
        online,
        last_seen_at,
    }))
}

/// The AsyncAPI document of the Socket.IO events, generated from the routing table.
#[utoipa::path(get, path = "/api/asyncapi.json", operation_id = "getAsyncApiDocument", tag = "ops", responses((status = 200, body = Object)))]
async fn asyncapi() -> axum::Json<serde_json::Value> {
    axum::Json(crate::asyncapi::document())
}
