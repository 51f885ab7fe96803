//! `/api/admin/*` system endpoints. Each handler checks the admin role in [`crate::service`].

use axum::extract::State;
use axum::http::StatusCode;
use catalog::contract::Page;
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::dto::{
    AnnouncementBody, DeadLetter, DeadLetterListParams, DeadLetterRetry, FailedJobs,
    MaintenanceBody,
};
use crate::service;

/// Every admin route of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(retry_dead_letter))
        .routes(routes!(list_failed_jobs))
        .routes(routes!(retry_failed_job))
        .routes(routes!(announce))
        .routes(routes!(maintenance))
}

/// Dead letters: events a subscriber still failed on after its retries, newest first. Open
/// ones are retried automatically. Admins only.
#[utoipa::path(get, path = "/api/admin/dead-letters", operation_id = "listDeadLetters", tag = "admin", security(("bearer" = [])),
    params(DeadLetterListParams),
    responses(
        (status = 200, body = Page<DeadLetter>),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not an admin"),
        (status = 422, body = Problem, description = "bad `status`, `limit` or `cursor`"),
    ))]
async fn list_dead_letters(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<DeadLetterListParams>,
) -> Result<axum::Json<Page<DeadLetter>>> {
    Ok(axum::Json(
        service::dead_letters(&db, caller, params).await?,
    ))
}

/// Retry an open dead letter now (on the node holding its subscriber) and answer with the
/// outcome. Admins only.
#[utoipa::path(post, path = "/api/admin/dead-letters/{id}/retry", operation_id = "retryDeadLetter", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the dead letter")),
    responses(
        (status = 200, body = DeadLetterRetry),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not an admin"),
        (status = 404, body = Problem, description = "no such dead letter"),
        (status = 409, body = Problem, description = "`dead_letter_resolved`: it was handled already"),
    ))]
async fn retry_dead_letter(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<DeadLetterRetry>> {
    Ok(axum::Json(
        service::retry_dead_letter(&bus, caller, id).await?,
    ))
}

/// Delayed jobs (durable timers: email digests, ...) that still failed after their last
/// attempt, oldest failure first, at most 100. Admins only.
#[utoipa::path(get, path = "/api/admin/failed-jobs", operation_id = "listFailedJobs", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = FailedJobs),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not an admin"),
    ))]
async fn list_failed_jobs(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
) -> Result<axum::Json<FailedJobs>> {
    Ok(axum::Json(service::failed_jobs(&db, caller).await?))
}

/// Makes a failed job due now, with fresh attempts (it runs within a second on some node).
/// Admins only.
#[utoipa::path(post, path = "/api/admin/failed-jobs/{id}/retry", operation_id = "retryFailedJob", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the failed job")),
    responses(
        (status = 204, description = "due now"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not an admin"),
        (status = 404, body = Problem, description = "no such failed job (unknown, or not failed any more)"),
    ))]
async fn retry_failed_job(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode> {
    service::retry_failed_job(&db, caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tell every connected client something (`system:announcement`). Admins only.
#[utoipa::path(post, path = "/api/admin/announcements", operation_id = "publishAnnouncement", tag = "admin", security(("bearer" = [])),
    request_body = AnnouncementBody,
    responses((status = 202, description = "published"), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn announce(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Json(body): Json<AnnouncementBody>,
) -> Result<StatusCode> {
    service::announce(&bus, caller, &body.message).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Announce maintenance to every connected client (`system:maintenance`). Admins only.
#[utoipa::path(post, path = "/api/admin/maintenance", operation_id = "announceMaintenance", tag = "admin", security(("bearer" = [])),
    request_body = MaintenanceBody,
    responses((status = 202, description = "published"), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn maintenance(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Json(body): Json<MaintenanceBody>,
) -> Result<StatusCode> {
    service::maintenance(&bus, caller, body).await?;
    Ok(StatusCode::ACCEPTED)
}
