//! `/api/push/*`.

use std::sync::Arc;

use axum::Extension;
use axum::http::StatusCode;
use catalog::contract::Page;
use kernel::error::Problem;
use kernel::extract::{Json, Path, Query};
use kernel::pagination::PageParams;
use kernel::{AppState, AuthUser, Result};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::dto::{PublicKey, PushFailure, PushSubscription, SubscribeBody};
use crate::service::PushService;

pub fn router(push: Arc<PushService>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public_key))
        .routes(routes!(subscribe, list))
        .routes(routes!(unsubscribe))
        .routes(routes!(failures))
        .layer(Extension(push))
}

/// The server's VAPID public key: what a browser subscribes with
/// (`pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: publicKey })`).
/// No authentication.
#[utoipa::path(get, path = "/api/push/public-key", operation_id = "getPushPublicKey", tag = "push",
    responses((status = 200, body = PublicKey)))]
async fn public_key(Extension(push): Extension<Arc<PushService>>) -> Result<axum::Json<PublicKey>> {
    Ok(axum::Json(PublicKey {
        public_key: push.vapid().await?.public_key().to_owned(),
    }))
}

/// Subscribe this browser to pushes for the caller (the body is
/// `PushSubscription.toJSON()`). 201 when new; 200 when the caller had subscribed this
/// endpoint already (its keys are refreshed). The endpoint must be `https://` and must not
/// resolve to a loopback, private, link-local or unspecified address (422, and nothing is
/// ever sent there).
#[utoipa::path(post, path = "/api/push/subscriptions", operation_id = "createPushSubscription", tag = "push", security(("bearer" = [])),
    request_body = SubscribeBody,
    responses(
        (status = 201, body = PushSubscription, description = "a new subscription"),
        (status = 200, body = PushSubscription, description = "the caller's subscription of this endpoint already"),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "an endpoint that is not https or not public, or keys that are not a P-256 point and a 16-byte secret"),
    ))]
async fn subscribe(
    Extension(push): Extension<Arc<PushService>>,
    caller: AuthUser,
    Json(body): Json<SubscribeBody>,
) -> Result<(StatusCode, axum::Json<PushSubscription>)> {
    let (subscription, created) = push.subscribe(caller, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(subscription)))
}

/// The caller's push subscriptions, newest first.
#[utoipa::path(get, path = "/api/push/subscriptions", operation_id = "listPushSubscriptions", tag = "push", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<PushSubscription>),
        (status = 401, body = Problem),
        (status = 422, body = Problem, description = "bad `limit` or `cursor`"),
    ))]
async fn list(
    Extension(push): Extension<Arc<PushService>>,
    caller: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<PushSubscription>>> {
    Ok(axum::Json(push.list(caller, &params).await?))
}

/// Remove one of the caller's push subscriptions (someone else's is a 404).
#[utoipa::path(delete, path = "/api/push/subscriptions/{id}", operation_id = "deletePushSubscription", tag = "push", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "subscription id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn unsubscribe(
    Extension(push): Extension<Arc<PushService>>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode> {
    push.unsubscribe(caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pushes that failed for good or are being retried (admins), newest first. A failed push is
/// not retried by hand: a new notification pushes again.
#[utoipa::path(get, path = "/api/admin/push-failures", operation_id = "listPushFailures", tag = "admin", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<PushFailure>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad `limit` or `cursor`"),
    ))]
async fn failures(
    Extension(push): Extension<Arc<PushService>>,
    caller: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<PushFailure>>> {
    Ok(axum::Json(push.failures(caller, &params).await?))
}
