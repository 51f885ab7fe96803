//! `/api/notifications/*`.

use axum::extract::State;
use catalog::contract::{Notification, Page};
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::pagination::PageParams;
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::dto::{
    ListFilter, NotificationSettings, ReadAllResult, UnreadCount, UpdateSettingsBody,
};
use crate::service;
use crate::settings::{self, Changes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread_count))
        .routes(routes!(read_all))
        .routes(routes!(mark_read))
        .routes(routes!(get_settings, update_settings))
}

/// The caller's notifications, newest first; `?unread=true` for the unread ones only.
#[utoipa::path(get, path = "/api/notifications", operation_id = "listNotifications", tag = "notifications", security(("bearer" = [])),
    params(ListFilter, PageParams),
    responses(
        (status = 200, body = Page<Notification>),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "bad `unread`, `limit` or `cursor`"),
    ))]
async fn list(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(filter): Query<ListFilter>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<Notification>>> {
    Ok(axum::Json(
        service::list(&db, caller, filter.unread.unwrap_or(false), &params).await?,
    ))
}

/// How many of the caller's notifications are unread.
#[utoipa::path(get, path = "/api/notifications/unread-count", operation_id = "countUnreadNotifications", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = UnreadCount), (status = 401, body = Problem)))]
async fn unread_count(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
) -> Result<axum::Json<UnreadCount>> {
    Ok(axum::Json(UnreadCount {
        count: service::unread_count(&db, caller).await?,
    }))
}

/// Mark one notification read (idempotent). Emits `notification:read` when it changes.
#[utoipa::path(post, path = "/api/notifications/{id}/read", operation_id = "markNotificationRead", tag = "notifications", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "notification id")),
    responses((status = 200, body = Notification), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn mark_read(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Notification>> {
    Ok(axum::Json(service::mark_read(&bus, caller, id).await?))
}

/// Mark every unread notification of the caller read. Emits `notification:read` for each.
#[utoipa::path(post, path = "/api/notifications/read-all", operation_id = "markAllNotificationsRead", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = ReadAllResult), (status = 401, body = Problem)))]
async fn read_all(
    State(bus): State<EventBus>,
    caller: AuthUser,
) -> Result<axum::Json<ReadAllResult>> {
    Ok(axum::Json(ReadAllResult {
        updated: service::read_all(&bus, caller).await?,
    }))
}

/// How the caller is reached when not connected: email digests, web push, muted kinds.
/// A caller who never changed them gets the defaults (`true`, `true`, `[]`, `false`).
#[utoipa::path(get, path = "/api/users/me/notification-settings", operation_id = "getNotificationSettings", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings), (status = 401, body = Problem)))]
async fn get_settings(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
) -> Result<axum::Json<NotificationSettings>> {
    Ok(axum::Json(
        settings::settings_of(&db, caller.id).await?.into(),
    ))
}

/// Change any of `email`, `push` and `mutedKinds` (which replaces the list); the answer is
/// the settings as they are now. A kind that is not a notification kind is a 422 naming
/// `mutedKinds`, and nothing changes.
#[utoipa::path(patch, path = "/api/users/me/notification-settings", operation_id = "updateNotificationSettings", tag = "notifications", security(("bearer" = [])),
    request_body = UpdateSettingsBody,
    responses(
        (status = 200, body = NotificationSettings),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "a field of the wrong type, `null`, or an unknown kind in `mutedKinds`"),
    ))]
async fn update_settings(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Json(body): Json<UpdateSettingsBody>,
) -> Result<axum::Json<NotificationSettings>> {
    let muted_kinds = match &body.muted_kinds {
        Some(values) => Some(settings::parse_kinds("mutedKinds", values)?),
        None => None,
    };
    let changes = Changes {
        email: body.email,
        push: body.push,
        muted_kinds,
    };
    Ok(axum::Json(
        settings::update(&db, caller.id, changes).await?.into(),
    ))
}
