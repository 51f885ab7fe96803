//! `/api/requests/{id}/reviews` and `/api/users/{id}/reviews`: thin handlers; the rules are in
//! [`crate::service`].

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use catalog::contract::{Page, Review};
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::{AppState, AuthUser, EventBus, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::ReviewsConfig;
use crate::dto::{CreateReviewBody, ListReviewsQuery, NewReview, ReviewPage};
use crate::service;

/// The routes of this module with their OpenAPI description.
pub fn router(config: ReviewsConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_review, request_reviews))
        .routes(routes!(user_reviews))
        .layer(Extension(config))
}

/// Review the other party of a completed request (its buyer or its accepted seller, once
/// each, within `REVIEW_WINDOW_SECS` of completion). Double-blind: the review is visible only
/// to its author until the other party has reviewed too or the window has closed; then both
/// are published at once (`publishedAt`) and `review:published` is emitted.
#[utoipa::path(post, path = "/api/requests/{id}/reviews", operation_id = "createReview", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id")),
    request_body = CreateReviewBody,
    responses(
        (status = 201, body = Review),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "an admin (admins never review)"),
        (status = 404, body = Problem, description = "no such request of which the caller is the buyer or the accepted seller"),
        (status = 409, body = Problem, description = "`review_exists` (this author reviewed it already), `request_not_completed`, `review_window_closed`"),
        (status = 422, body = Problem, description = "`rating` not a whole number from 1 to 5, or `comment` too long"),
    ))]
#[tracing::instrument(skip_all)]
async fn create_review(
    State(bus): State<EventBus>,
    Extension(config): Extension<ReviewsConfig>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateReviewBody>,
) -> Result<(StatusCode, axum::Json<Review>)> {
    let new = NewReview::parse(body)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(service::create(&bus, config, caller, id, new).await?),
    ))
}

/// The reviews of a request the caller may see, oldest first: the published ones, and the
/// caller's own while it is still hidden. 404 when the request is not visible to the caller.
#[utoipa::path(get, path = "/api/requests/{id}/reviews", operation_id = "listRequestReviews", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id"), ListReviewsQuery),
    responses(
        (status = 200, body = Page<Review>),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 422, body = Problem, description = "bad limit or cursor"),
    ))]
#[tracing::instrument(skip_all)]
async fn request_reviews(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<ListReviewsQuery>,
) -> Result<axum::Json<Page<Review>>> {
    Ok(axum::Json(
        service::of_request(&db, caller, id, query.page()).await?,
    ))
}

/// The published reviews about a user, newest first, with `summary: { average, count }` over
/// all of them (any signed-in user; 404 for an unknown user).
#[utoipa::path(get, path = "/api/users/{id}/reviews", operation_id = "listUserReviews", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id"), ListReviewsQuery),
    responses(
        (status = 200, body = ReviewPage),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 422, body = Problem, description = "bad limit or cursor"),
    ))]
#[tracing::instrument(skip_all)]
async fn user_reviews(
    State(db): State<DatabaseConnection>,
    _caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<ListReviewsQuery>,
) -> Result<axum::Json<ReviewPage>> {
    Ok(axum::Json(
        service::about_user(&db, id, query.page()).await?,
    ))
}
