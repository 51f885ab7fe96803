//! `/api/requests`, the buyer's transitions of a request and the seller's delivery.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use catalog::contract::{Page, PurchaseRequest};
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::RequestsConfig;
use crate::dto::{CreateRequestBody, ListRequestsQuery, NewRequest};
use crate::service;

/// The routes of this module with their OpenAPI description.
pub fn router(config: RequestsConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(cancel_request))
        .routes(routes!(deliver_request))
        .routes(routes!(complete_request))
        .layer(Extension(config))
}

/// Post a purchase request (buyers). Sellers hear of it through `request:created`.
#[utoipa::path(post, path = "/api/requests", operation_id = "createRequest", tag = "requests", security(("bearer" = [])),
    request_body = CreateRequestBody,
    responses(
        (status = 201, body = PurchaseRequest),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a buyer"),
        (status = 422, body = Problem, description = "title, description, category or budget invalid"),
    ))]
#[tracing::instrument(skip_all)]
async fn create_request(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Json(body): Json<CreateRequestBody>,
) -> Result<(StatusCode, axum::Json<PurchaseRequest>)> {
    caller.require(&[catalog::Role::Buyer])?;
    let new = NewRequest::parse(body)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(service::create(&bus, caller, new).await?),
    ))
}

/// List and search requests. Buyers: their own. Sellers: open ones (`status=` other
/// than `open`, or `mine=true`: those they made an offer on). Admins: open ones, or any
/// `status=`. Search narrows what the same caller would see: `q` (full text in web-search
/// syntax over title and description), `minBudget`/`maxBudget`/`currency`, and
/// `sort=relevance|newest|budget`. A request is findable as soon as its `201` is answered.
#[utoipa::path(get, path = "/api/requests", operation_id = "listRequests", tag = "requests", security(("bearer" = [])),
    params(ListRequestsQuery),
    responses(
        (status = 200, body = Page<PurchaseRequest>),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "unknown status or sort, `sort=relevance` without `q`, `q` too long or with control characters, `minBudget`/`maxBudget` not a non-negative decimal (or min above max), unknown `currency`, bad limit or cursor"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_requests(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(query): Query<ListRequestsQuery>,
) -> Result<axum::Json<Page<PurchaseRequest>>> {
    let (filter, page) = query.parse()?;
    Ok(axum::Json(service::list(&db, caller, filter, page).await?))
}

/// One request: visible to its buyer, to sellers while it is open or once they made an
/// offer on it, and to admins; 404 for everyone else.
#[utoipa::path(get, path = "/api/requests/{id}", operation_id = "getRequest", tag = "requests", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id")),
    responses((status = 200, body = PurchaseRequest), (status = 401, body = Problem), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_request(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PurchaseRequest>> {
    Ok(axum::Json(service::visible(&db, caller, id).await?))
}

/// Cancel a request (its buyer; `open` or `accepted`). Emits `request:status-updated`.
#[utoipa::path(post, path = "/api/requests/{id}/cancel", operation_id = "cancelRequest", tag = "requests", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id")),
    responses(
        (status = 200, body = PurchaseRequest),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a buyer"),
        (status = 404, body = Problem, description = "no such request of this buyer"),
        (status = 409, body = Problem, description = "`invalid_transition`: not open or accepted"),
    ))]
#[tracing::instrument(skip_all)]
async fn cancel_request(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PurchaseRequest>> {
    Ok(axum::Json(service::cancel(&bus, caller, id).await?))
}

/// Mark a paid request delivered (the accepted seller; `paid` only): it becomes
/// `delivered`, with `deliveredAt` and `autoCompleteAt` set. Unless its buyer completes or
/// disputes it first, it completes by itself at `autoCompleteAt` (`AUTO_COMPLETE_AFTER_SECS`
/// after delivery), exactly as if the buyer had completed it. Emits `request:status-updated`.
#[utoipa::path(post, path = "/api/requests/{id}/deliver", operation_id = "deliverRequest", tag = "requests", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id")),
    responses(
        (status = 200, body = PurchaseRequest),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a seller"),
        (status = 404, body = Problem, description = "no such request whose accepted offer is this seller's"),
        (status = 409, body = Problem, description = "`invalid_transition`: not paid"),
    ))]
#[tracing::instrument(skip_all)]
async fn deliver_request(
    State(bus): State<EventBus>,
    Extension(config): Extension<RequestsConfig>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PurchaseRequest>> {
    Ok(axum::Json(
        service::deliver(&bus, caller, id, config.auto_complete_after).await?,
    ))
}

/// Confirm delivery (its buyer; `paid` or `delivered`): the request becomes `completed` and
/// the payout to the seller starts. Emits `request:status-updated`.
#[utoipa::path(post, path = "/api/requests/{id}/complete", operation_id = "completeRequest", tag = "requests", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id")),
    responses(
        (status = 200, body = PurchaseRequest),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a buyer"),
        (status = 404, body = Problem, description = "no such request of this buyer"),
        (status = 409, body = Problem, description = "`invalid_transition`: not paid or delivered"),
    ))]
#[tracing::instrument(skip_all)]
async fn complete_request(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PurchaseRequest>> {
    Ok(axum::Json(service::complete(&bus, caller, id).await?))
}
