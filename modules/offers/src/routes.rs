//! `/api/requests/{id}/offers` and `/api/offers/{id}/*`.

use axum::extract::State;
use axum::http::StatusCode;
use catalog::Role;
use catalog::contract::{OfferMessage, Page, SellerOffer};
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::pagination::PageParams;
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::dto::{CounterBody, CreateOfferBody, NewCounter, NewOffer};
use crate::service;

/// The routes of this module with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_offer, list_offers))
        .routes(routes!(counter_offer))
        .routes(routes!(offer_messages))
        .routes(routes!(accept_offer))
        .routes(routes!(withdraw_offer))
        .routes(routes!(reject_offer))
}

/// Make an offer on an open request (sellers with a payout address; one pending offer per
/// seller and request). Opens the chat with the buyer; emits `request:offer-received`.
#[utoipa::path(post, path = "/api/requests/{id}/offers", operation_id = "createOffer", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id")),
    request_body = CreateOfferBody,
    responses(
        (status = 201, body = SellerOffer),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a seller"),
        (status = 404, body = Problem, description = "no such request visible to you"),
        (status = 409, body = Problem, description = "`request_not_open`, or `offer_exists`: you have a pending offer on it"),
        (status = 422, body = Problem, description = "invalid price or message; `payout_address_required`"),
    ))]
#[tracing::instrument(skip_all)]
async fn create_offer(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(request_id): Path<Uuid>,
    Json(body): Json<CreateOfferBody>,
) -> Result<(StatusCode, axum::Json<SellerOffer>)> {
    caller.require(&[Role::Seller])?;
    let new = NewOffer::parse(body)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(service::create(&bus, caller, request_id, new).await?),
    ))
}

/// The offers on a request, newest first: all for its buyer and admins, its own for a
/// seller. Each shows its seller (`seller`: name and rating from published reviews).
#[utoipa::path(get, path = "/api/requests/{id}/offers", operation_id = "listOffers", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id"), PageParams),
    responses(
        (status = 200, body = Page<SellerOffer>),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no such request visible to you"),
        (status = 422, body = Problem, description = "bad limit or cursor"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_offers(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(request_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<SellerOffer>>> {
    Ok(axum::Json(
        service::list_for_request(&db, caller, request_id, params).await?,
    ))
}

/// Add a message (and optionally a new price) to a pending offer's negotiation: the
/// request's buyer or the offer's seller. Emits `offer:negotiation-update`.
#[utoipa::path(post, path = "/api/offers/{id}/counter", operation_id = "counterOffer", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "offer id")),
    request_body = CounterBody,
    responses(
        (status = 200, body = OfferMessage),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "an admin, who sees but does not negotiate"),
        (status = 404, body = Problem, description = "no such offer of this seller or on a request of this buyer"),
        (status = 409, body = Problem, description = "`invalid_transition`: the offer is not pending; `request_not_open`"),
        (status = 422, body = Problem, description = "invalid message or price"),
    ))]
#[tracing::instrument(skip_all)]
async fn counter_offer(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(offer_id): Path<Uuid>,
    Json(body): Json<CounterBody>,
) -> Result<axum::Json<OfferMessage>> {
    let new = NewCounter::parse(body)?;
    Ok(axum::Json(
        service::counter(&bus, caller, offer_id, new).await?,
    ))
}

/// The negotiation thread of an offer, oldest first: the opening message, then each counter.
/// Visible to the request's buyer, the offer's seller and admins.
#[utoipa::path(get, path = "/api/offers/{id}/messages", operation_id = "listOfferMessages", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "offer id"), PageParams),
    responses(
        (status = 200, body = Page<OfferMessage>),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 422, body = Problem, description = "bad limit or cursor"),
    ))]
#[tracing::instrument(skip_all)]
async fn offer_messages(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(offer_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<OfferMessage>>> {
    Ok(axum::Json(
        service::messages(&db, caller, offer_id, params).await?,
    ))
}

/// Accept a pending offer of an open request (the request's buyer). The others are
/// rejected and the request becomes `accepted`. Emits `offer:accepted` and
/// `request:status-updated`. Of two racing accepts on one request exactly one wins.
#[utoipa::path(post, path = "/api/offers/{id}/accept", operation_id = "acceptOffer", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "offer id")),
    responses(
        (status = 200, body = SellerOffer),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a buyer"),
        (status = 404, body = Problem, description = "no such offer on a request of this buyer"),
        (status = 409, body = Problem, description = "`invalid_transition`: the offer is not pending; `request_not_open`"),
    ))]
#[tracing::instrument(skip_all)]
async fn accept_offer(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(offer_id): Path<Uuid>,
) -> Result<axum::Json<SellerOffer>> {
    Ok(axum::Json(service::accept(&bus, caller, offer_id).await?))
}

/// Withdraw your pending offer (its seller).
#[utoipa::path(post, path = "/api/offers/{id}/withdraw", operation_id = "withdrawOffer", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "offer id")),
    responses(
        (status = 200, body = SellerOffer),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a seller"),
        (status = 404, body = Problem, description = "no such offer of this seller"),
        (status = 409, body = Problem, description = "`invalid_transition`: the offer is not pending"),
    ))]
#[tracing::instrument(skip_all)]
async fn withdraw_offer(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(offer_id): Path<Uuid>,
) -> Result<axum::Json<SellerOffer>> {
    Ok(axum::Json(service::withdraw(&bus, caller, offer_id).await?))
}

/// Reject a pending offer (the request's buyer).
#[utoipa::path(post, path = "/api/offers/{id}/reject", operation_id = "rejectOffer", tag = "offers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "offer id")),
    responses(
        (status = 200, body = SellerOffer),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not a buyer"),
        (status = 404, body = Problem, description = "no such offer on a request of this buyer"),
        (status = 409, body = Problem, description = "`invalid_transition`: the offer is not pending"),
    ))]
#[tracing::instrument(skip_all)]
async fn reject_offer(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(offer_id): Path<Uuid>,
) -> Result<axum::Json<SellerOffer>> {
    Ok(axum::Json(service::reject(&bus, caller, offer_id).await?))
}
