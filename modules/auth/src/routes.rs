//! `/api/auth/*` and `/api/users/me`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use catalog::contract::User;
use kernel::error::Problem;
use kernel::extract::Json;
use kernel::{ApiError, AppState, AuthUser, Authenticator, ClientAddr, Limits, Result};
use sea_orm::DatabaseConnection;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::dto::{AuthResponse, LoginBody, RegisterBody, UpdateMeBody};
use crate::hashing::Hasher;
use crate::limiter;
use crate::service;

pub fn router(hasher: Arc<Hasher>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me, update_me))
        .layer(Extension(hasher))
}

/// Create a buyer or seller account.
#[utoipa::path(post, path = "/api/auth/register", operation_id = "registerUser", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, body = AuthResponse),
        (status = 400, body = Problem, description = "malformed JSON"),
        (status = 409, body = Problem, description = "`email_taken`"),
        (status = 422, body = Problem, description = "bad email, short password, unknown role"),
        (status = 503, body = Problem, description = "`busy`: too many passwords are being hashed; see Retry-After"),
    ))]
async fn register(
    State(db): State<DatabaseConnection>,
    State(auth): State<Authenticator>,
    Extension(hasher): Extension<Arc<Hasher>>,
    Json(body): Json<RegisterBody>,
) -> Result<(StatusCode, axum::Json<AuthResponse>)> {
    let (token, user) = service::register(&db, &auth.keys, &hasher, body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AuthResponse { token, user }),
    ))
}

/// Exchange email and password for a token. Unknown email and wrong password answer alike.
#[utoipa::path(post, path = "/api/auth/login", operation_id = "logIn", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, body = Problem),
        (status = 429, body = Problem, description = "`rate_limited`: 10 failed logins for this account from this client address, or 30 from this address over any accounts, within 15 minutes; see Retry-After"),
        (status = 503, body = Problem, description = "`busy`: too many passwords are being checked; see Retry-After"),
    ))]
async fn login(
    State(db): State<DatabaseConnection>,
    State(auth): State<Authenticator>,
    State(limits): State<Limits>,
    Extension(hasher): Extension<Arc<Hasher>>,
    client: ClientAddr,
    Json(body): Json<LoginBody>,
) -> Result<axum::Json<AuthResponse>> {
    let keys = limiter::LoginKeys::new(&body.email, client);
    limiter::attempt(&limits, &keys).await?;
    match service::login(&db, &auth.keys, &hasher, &body.email, body.password).await {
        Ok((token, user)) => {
            limiter::succeeded(&limits, &keys).await;
            Ok(axum::Json(AuthResponse { token, user }))
        }
        Err(e @ ApiError::Unauthorized) => {
            limiter::failed(&limits, &keys).await;
            Err(e)
        }
        Err(e) => {
            limiter::not_a_failure(&limits, &keys).await;
            Err(e)
        }
    }
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/users/me", operation_id = "getMe", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = Problem)))]
async fn me(State(db): State<DatabaseConnection>, caller: AuthUser) -> Result<axum::Json<User>> {
    Ok(axum::Json(service::me(&db, caller).await?))
}

/// Change the caller's name or payout address (`null` clears it; a seller's address, which
/// release payouts go to, can be changed but not removed: 422 `payout_address_required`).
#[utoipa::path(patch, path = "/api/users/me", operation_id = "updateMe", tag = "auth", security(("bearer" = [])), request_body = UpdateMeBody,
    responses((status = 200, body = User), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn update_me(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Json(body): Json<UpdateMeBody>,
) -> Result<axum::Json<User>> {
    Ok(axum::Json(service::update_me(&db, caller, body).await?))
}
