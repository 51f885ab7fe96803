//! Safe retries: the `Idempotency-Key` header on every creating or changing `POST` under
//! `/api` (webhooks excepted: they have their own dedupe), as one layer over the routes
//! rather than code in each handler (Stripe's model).
//!
//! A key is scoped to the caller (the user of the bearer token). The first request with a
//! key claims a row of `idempotency_keys` (primary key: user and key) before its handler
//! runs, so concurrent duplicates can never both run; its answer (status, content type,
//! `Location`, body) is kept when it is not a 5xx. Then, for 24 hours:
//! - the same key with the same request (method, path and query, body) gets that answer
//!   again with `Idempotent-Replayed: true`, and nothing runs (no second row, no second
//!   event);
//! - the same key with another request → 422 `idempotency_key_reused`;
//! - the same key while the first is still running → 409 `idempotency_key_in_flight`;
//! - a 5xx answer is not kept: the row is removed and a retry runs again.
//!
//! A claim whose request never finished (its node died mid-request) is taken over by a retry
//! after [`ABANDONED_AFTER`]: whether the first attempt's change committed is unknown then,
//! as it is for a client that never got an answer, and the handler's own rules (409 on a
//! second accept, one payment per request, ...) decide. Requests without a valid bearer token
//! (registration, login) have no caller to scope a key to, and multipart bodies (uploads) are
//! streamed, never buffered: they are not deduplicated (a malformed key is still a 422).
//! Kept answers are pruned after [`KEEP_FOR`] by a durable timer ([`prune_handler`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::JwtKeys;
use crate::error::{ApiError, ErrorCode};
use crate::timers::{self, NewTimer, Outcome};
use catalog::contract::now;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header of a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long an answer is kept.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// After this long a claim whose request never finished may be taken over by a retry.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(300);
/// The timer kind that prunes answers older than [`KEEP_FOR`].
pub const PRUNE_KIND: &str = "kernel.idempotency-prune";
/// The largest answer body kept (answers are JSON documents; a larger one is passed through
/// and its key released, as for a 5xx).
const MAX_KEPT_BODY: usize = 4 * 1024 * 1024;

/// What the layer needs: the database and the keys that verify bearer tokens.
#[derive(Clone)]
pub struct Idempotency {
    pub db: DatabaseConnection,
    pub keys: Arc<JwtKeys>,
    /// The largest request body read (`BODY_LIMIT_BYTES`): beyond, 413 as the routes answer.
    pub body_limit: usize,
}

/// The `Idempotency-Key` middleware (see the module docs); add it with
/// `axum::middleware::from_fn_with_state(idempotency, kernel::idempotency::layer)`.
pub async fn layer(State(idem): State<Idempotency>, req: Request, next: Next) -> Response {
    let Some(raw_key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    if req.method() != Method::POST
        || !req.uri().path().starts_with("/api/")
        || req.uri().path().starts_with("/api/webhooks/")
    {
        return next.run(req).await;
    }
    // A malformed key is refused wherever the header is documented, also where it does not
    // deduplicate (no bearer token, a multipart upload): the client's retries would not be
    // what it thinks.
    let key = match parse_key(&raw_key) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    if is_multipart(req.headers()) {
        return next.run(req).await;
    }
    let Some(user) = caller(&idem.keys, req.headers()) else {
        return next.run(req).await;
    };
    match handle(&idem, user, key, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A key is 1 to 255 visible ASCII characters.
fn parse_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

/// The user of a valid bearer token, if any (who the key belongs to).
fn caller(keys: &JwtKeys, headers: &HeaderMap) -> Option<Uuid> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    keys.verify(token).map(|c| c.sub)
}

/// A claimed or stored key, as read back.
#[derive(Debug, sea_orm::FromQueryResult)]
struct Row {
    fingerprint: String,
    state: String,
    status: Option<i32>,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<Vec<u8>>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

fn stmt(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

async fn handle(
    idem: &Idempotency,
    user: Uuid,
    key: String,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, idem.body_limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let fingerprint = fingerprint(&parts.method, &parts.uri, &bytes);
    let db = &idem.db;

    // Two rounds at most: the row can vanish between a lost claim and the read (released
    // after a 5xx, or pruned), and then it is claimed again.
    let mut claimed = false;
    for _ in 0..2 {
        if claim(db, user, &key, &fingerprint).await? {
            claimed = true;
            break;
        }
        let Some(row) = read(db, user, &key).await? else {
            continue;
        };
        if row.fingerprint != fingerprint {
            return Err(ApiError::invalid_with_code(
                ErrorCode::IdempotencyKeyReused,
                "Idempotency-Key",
                "this key was used with another request; use a new key for a new request",
            ));
        }
        if row.state == "done" {
            return Ok(replay(row));
        }
        claimed = take_over(db, user, &key, &row).await?;
        break;
    }
    if !claimed {
        return Err(ApiError::conflict(
            ErrorCode::IdempotencyKeyInFlight,
            "a request with this Idempotency-Key is still running; retry after it answered",
        ));
    }
    run_and_keep(db, user, &key, parts, bytes, next).await
}

/// Runs the handler and keeps its answer (not a 5xx, not a huge body).
async fn run_and_keep(
    db: &DatabaseConnection,
    user: Uuid,
    key: &str,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    next: Next,
) -> Result<Response, ApiError> {
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    if parts.status.is_server_error() {
        release(db, user, key).await;
        return Ok(Response::from_parts(parts, body));
    }
    let body = match axum::body::to_bytes(body, MAX_KEPT_BODY).await {
        Ok(b) => b,
        Err(e) => {
            release(db, user, key).await;
            return Err(ApiError::internal(format!("answer not readable: {e}")));
        }
    };
    let content_type = header_text(&parts.headers, header::CONTENT_TYPE);
    let location = header_text(&parts.headers, header::LOCATION);
    let kept = db
        .execute_raw(stmt(
            db,
            "UPDATE idempotency_keys SET state = 'done', status = $1, content_type = $2, \
             location = $3, body = $4, updated_at = $5 WHERE user_id = $6 AND key = $7",
            vec![
                i32::from(parts.status.as_u16()).into(),
                content_type.into(),
                location.into(),
                body.to_vec().into(),
                now().into(),
                user.into(),
                key.into(),
            ],
        ))
        .await;
    if let Err(e) = kept {
        // The change itself is done and answered; only the replay of this answer is lost.
        tracing::error!(error = %e, "idempotent answer not kept; a retry with this key will run again");
        release(db, user, key).await;
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `sha256(method, path and query, body)`, hex.
fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b" ");
    h.update(
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("")
            .as_bytes(),
    );
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// Claims `(user, key)`: `true` when this request made the row (it runs the handler). An
/// expired row (older than [`KEEP_FOR`], not pruned yet) is removed first.
async fn claim(
    db: &DatabaseConnection,
    user: Uuid,
    key: &str,
    fingerprint: &str,
) -> Result<bool, ApiError> {
    let at = now();
    let expired = at - chrono::Duration::from_std(KEEP_FOR).unwrap_or_default();
    db.execute_raw(stmt(
        db,
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3",
        vec![user.into(), key.into(), expired.into()],
    ))
    .await?;
    let res = db
        .execute_raw(stmt(
            db,
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, state, created_at, updated_at) \
             VALUES ($1, $2, $3, 'running', $4, $4) ON CONFLICT (user_id, key) DO NOTHING",
            vec![user.into(), key.into(), fingerprint.into(), at.into()],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

async fn read(db: &DatabaseConnection, user: Uuid, key: &str) -> Result<Option<Row>, ApiError> {
    use sea_orm::FromQueryResult;
    Ok(Row::find_by_statement(stmt(
        db,
        "SELECT fingerprint, state, status, content_type, location, body, updated_at \
         FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        vec![user.into(), key.into()],
    ))
    .one(db)
    .await?)
}

/// Takes over a claim abandoned for [`ABANDONED_AFTER`] (compare-and-set on its time, so
/// two retries cannot both take it).
async fn take_over(
    db: &DatabaseConnection,
    user: Uuid,
    key: &str,
    row: &Row,
) -> Result<bool, ApiError> {
    let abandoned = now() - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or_default();
    if row.updated_at >= abandoned {
        return Ok(false);
    }
    let res = db
        .execute_raw(stmt(
            db,
            "UPDATE idempotency_keys SET updated_at = $1 \
             WHERE user_id = $2 AND key = $3 AND state = 'running' AND updated_at = $4",
            vec![now().into(), user.into(), key.into(), row.updated_at.into()],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Forgets a claim whose answer is not kept (a 5xx): a retry runs again.
async fn release(db: &DatabaseConnection, user: Uuid, key: &str) {
    let res = db
        .execute_raw(stmt(
            db,
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'running'",
            vec![user.into(), key.into()],
        ))
        .await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "idempotency claim not released; a retry waits until it is abandoned");
    }
}

/// The kept answer, marked as replayed.
fn replay(row: Row) -> Response {
    let status = row
        .status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(row.body.unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(v) = row
        .content_type
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = row.location.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// The durable timer that deletes answers older than [`KEEP_FOR`], hourly; [`schedule_prune`]
/// starts it (idempotently: one row whatever the number of nodes).
pub fn prune_handler(db: DatabaseConnection) -> Arc<dyn timers::TimerHandler> {
    timers::handler(PRUNE_KIND, move |_job| {
        let db = db.clone();
        async move {
            let expired = now() - chrono::Duration::from_std(KEEP_FOR).unwrap_or_default();
            let res = db
                .execute_raw(stmt(
                    &db,
                    "DELETE FROM idempotency_keys WHERE created_at < $1",
                    vec![expired.into()],
                ))
                .await?;
            if res.rows_affected() > 0 {
                tracing::debug!(pruned = res.rows_affected(), "idempotent answers pruned");
            }
            Ok(Outcome::At(now() + chrono::Duration::hours(1)))
        }
    })
}

/// Schedules the prune job (a no-op when it exists).
pub async fn schedule_prune(db: &DatabaseConnection) -> Result<(), ApiError> {
    timers::schedule(
        db,
        NewTimer {
            kind: PRUNE_KIND,
            key: "all".to_owned(),
            payload: serde_json::Value::Null,
            run_at: now() + chrono::Duration::hours(1),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(parse_key(&HeaderValue::from_static("a")).is_ok());
        assert!(parse_key(&HeaderValue::from_static("order-2026-12-06_#1")).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("has space")).is_err());
        assert!(parse_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
    }

    #[test]
    fn the_fingerprint_covers_method_path_query_and_body() {
        let uri: axum::http::Uri = "/api/requests?x=1".parse().unwrap();
        let other: axum::http::Uri = "/api/requests?x=2".parse().unwrap();
        let a = fingerprint(&Method::POST, &uri, b"{}");
        assert_eq!(a, fingerprint(&Method::POST, &uri, b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, &other, b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, &uri, b"{ }"));
        assert_ne!(a, fingerprint(&Method::PUT, &uri, b"{}"));
    }
}
