//! `/api/requests/{id}/disputes`, `/api/disputes*`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use catalog::contract::{Dispute, Evidence, Page};
use files::Files;
use kernel::AppState;
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::{AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::dto::{DisputeDetail, DisputeListParams, EvidenceBody, OpenDisputeBody, ResolveBody};
use crate::service;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_dispute))
        .routes(routes!(list_disputes))
        .routes(routes!(get_dispute))
        .routes(routes!(add_evidence))
        .routes(routes!(resolve_dispute))
}

/// Open a dispute on a paid or delivered request (its buyer or its accepted seller); the
/// request becomes `disputed` (a delivered one no longer completes by itself).
#[utoipa::path(post, path = "/api/requests/{id}/disputes", operation_id = "openDispute", tag = "disputes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the request")), request_body = OpenDisputeBody,
    responses(
        (status = 201, body = Dispute),
        (status = 403, body = Problem, description = "an admin (whatever the request): only the request's buyer or its accepted seller may open one"),
        (status = 404, body = Problem, description = "no such request, or the caller is not its buyer or accepted seller"),
        (status = 409, body = Problem, description = "`dispute_open` (one is open already) or `invalid_transition` (request not `paid` or `delivered`)"),
        (status = 422, body = Problem),
    ))]
async fn open_dispute(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<OpenDisputeBody>,
) -> Result<(StatusCode, axum::Json<Dispute>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(service::open(&bus, caller, id, &body.reason).await?),
    ))
}

/// Disputes: admins see all (filter `?status=open|resolved`), others those of their requests.
#[utoipa::path(get, path = "/api/disputes", operation_id = "listDisputes", tag = "disputes", security(("bearer" = [])), params(DisputeListParams),
    responses((status = 200, body = Page<Dispute>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_disputes(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<DisputeListParams>,
) -> Result<axum::Json<Page<Dispute>>> {
    Ok(axum::Json(service::list(&db, caller, params).await?))
}

/// A dispute with its evidence (its buyer, its seller, admins).
#[utoipa::path(get, path = "/api/disputes/{id}", operation_id = "getDispute", tag = "disputes", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DisputeDetail), (status = 404, body = Problem)))]
async fn get_dispute(
    State(db): State<DatabaseConnection>,
    Extension(files): Extension<Files>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<DisputeDetail>> {
    Ok(axum::Json(service::get(&db, &files, caller, id).await?))
}

/// Add evidence to an open dispute (its buyer, its seller, an admin), optionally with files
/// (`attachmentIds`) that are then kept unchanged while the dispute exists.
#[utoipa::path(post, path = "/api/disputes/{id}/evidence", operation_id = "addEvidence", tag = "disputes", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = EvidenceBody,
    responses(
        (status = 201, body = Evidence),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`dispute_closed`"),
        (status = 422, body = Problem, description = "empty description, a non-http(s) attachmentUrl, or `attachmentIds` over 10, repeated, or not the author's unattached uploads"),
    ))]
async fn add_evidence(
    State(bus): State<EventBus>,
    Extension(files): Extension<Files>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<EvidenceBody>,
) -> Result<(StatusCode, axum::Json<Evidence>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(service::add_evidence(&bus, &files, caller, id, body).await?),
    ))
}

/// Resolve an open dispute (admins): `release_to_seller` completes the request and starts the
/// seller's payout; `refund_buyer` refunds it to the buyer's payoutAddress. All in one
/// transaction.
#[utoipa::path(post, path = "/api/disputes/{id}/resolve", operation_id = "resolveDispute", tag = "disputes", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ResolveBody,
    responses(
        (status = 200, body = Dispute),
        (status = 403, body = Problem, description = "not an admin"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`dispute_closed`, or `no_payout_address` when the recipient has none"),
        (status = 422, body = Problem),
    ))]
async fn resolve_dispute(
    State(bus): State<EventBus>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<ResolveBody>,
) -> Result<axum::Json<Dispute>> {
    Ok(axum::Json(service::resolve(&bus, caller, id, body).await?))
}
