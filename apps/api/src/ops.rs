//! Operational routes (`/healthz`, `/readyz`) and the HTTP layers every route shares.

use kernel::error::ErrorCode;
use std::time::Duration;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderValue, Request, Response};
use axum::{Extension, Router};
use connections::cluster::RedisLink;
use kernel::{ApiError, AppState};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::Config;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "checkHealth", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The database answers, and in a cluster Redis too. 503 names the dependency that is down:
/// `database_unavailable`, or `redis_unavailable` (then REST and durable events still work on
/// this node; typing and presence are paused until Redis is back).
#[utoipa::path(get, path = "/readyz", operation_id = "checkReadiness", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = kernel::error::Problem)))]
async fn readyz(
    State(db): State<DatabaseConnection>,
    redis: Option<Extension<Arc<RedisLink>>>,
) -> Result<axum::Json<Health>, ApiError> {
    let unavailable = || ApiError::Unavailable {
        code: ErrorCode::DatabaseUnavailable,
        detail: "the database does not answer".into(),
    };
    match tokio::time::timeout(Duration::from_secs(2), db.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            return Err(unavailable());
        }
        Err(_) => return Err(unavailable()),
    }
    if let Some(Extension(link)) = redis
        && let Err(why) = link.check().await
    {
        tracing::warn!(reason = %why, "readiness check failed: redis");
        return Err(ApiError::Unavailable {
            code: ErrorCode::RedisUnavailable,
            detail: format!("{why}; REST and durable events work, typing and presence are paused"),
        });
    }
    Ok(axum::Json(Health { status: "ready" }))
}

/// Body limit, CORS, a request span per call, and panics turned into a problem 500.
pub fn layers(router: Router, config: &Config) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned());
            tracing::info_span!(
                "request",
                method = %req.method(),
                route = route.as_deref().unwrap_or("unmatched"),
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            )
        })
        .on_request(())
        .on_response(|res: &Response<_>, latency: Duration, span: &Span| {
            span.record("status", res.status().as_u16());
            span.record("latency_ms", latency.as_secs_f64() * 1000.0);
            tracing::info!("request done");
        })
        .on_failure(());
    let mut router = router
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(trace)
        .layer(axum::middleware::from_fn(crate::metrics::track));
    if let Some(cors) = cors(config) {
        router = router.layer(cors);
    }
    router.layer(CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            use axum::response::IntoResponse;
            ApiError::internal("a handler panicked").into_response()
        },
    ))
}

/// CORS for the configured origins; none (same-origin only) when `CORS_ORIGINS` is unset.
pub fn cors(config: &Config) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let base = CorsLayer::new()
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
            axum::http::Method::PATCH,
            axum::http::Method::DELETE,
            axum::http::Method::OPTIONS,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static(kernel::idempotency::HEADER),
        ])
        // What a page on another origin may read of an answer beyond the CORS-safelisted
        // headers: the replay marker of a retried POST, when to retry a 429/503, and where a
        // created object lives.
        .expose_headers([
            axum::http::HeaderName::from_static(kernel::idempotency::REPLAYED),
            axum::http::header::RETRY_AFTER,
            axum::http::header::LOCATION,
        ])
        .max_age(Duration::from_secs(600));
    if config.cors_origins.iter().any(|o| o == "*") {
        return Some(base.allow_origin(AllowOrigin::any()));
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    Some(base.allow_origin(origins).allow_credentials(true))
}
