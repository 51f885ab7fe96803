//! `GET /metrics` in the Prometheus text format, through the `metrics` facade and
//! `metrics-exporter-prometheus`.
//!
//! One recorder is installed per process, the first time an app starts (tests start many apps
//! in one process, so installing is done once and an already-installed recorder of someone
//! else is tolerated: `/metrics` then answers 503). Counters and histograms are recorded at
//! their call sites (`kernel::monitor` names them); gauges that live in the database (subscriber
//! lag, dead letters, payouts by status) are refreshed when `/metrics` is scraped. Every family is shown from
//! start-up, at zero for each known label value, so dashboards never see a gap.

use kernel::error::ErrorCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use catalog::events::EventName;
use kernel::monitor::{self as m};
use kernel::{ApiError, AppState};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;

use crate::Config;

/// Buckets of `marketplace_http_request_duration_seconds`.
const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of `marketplace_event_delivery_seconds` (commit → emit).
const DELIVERY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use; `None` when another recorder
/// was installed first (then `/metrics` answers 503 and the facade records into that one).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(m::HTTP_DURATION.to_owned()), &HTTP_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(m::EVENT_DELIVERY.to_owned()),
                        &DELIVERY_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    // Drains histogram samples between scrapes; a plain thread, because the
                    // runtime of the app that installed the recorder may end before the process.
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(Duration::from_secs(5));
                                upkeep.run_upkeep();
                            }
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
                    }
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the Prometheus recorder is not installed; /metrics answers 503");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder (once per process), describes every family and registers each known
/// label value at zero: every catalog event, webhook outcome and payout status, each of this
/// app's `subscribers`, and every documented operation of `openapi` (at its first documented
/// success status).
pub fn init(openapi: &utoipa::openapi::OpenApi, subscribers: &[&'static str]) {
    if handle().is_none() {
        return;
    }
    metrics::describe_gauge!(m::SOCKETS_CONNECTED, "Sockets connected to this process.");
    metrics::describe_counter!(
        m::HTTP_REQUESTS,
        "HTTP requests by method, route template and status."
    );
    metrics::describe_histogram!(
        m::HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from request to response head, by method and route template."
    );
    metrics::describe_counter!(
        m::EVENTS_PUBLISHED,
        "Catalog events committed to the event log."
    );
    metrics::describe_counter!(
        m::SOCKET_EMITS,
        "Emits handed to Socket.IO (one per event and target, not per socket)."
    );
    metrics::describe_gauge!(
        m::SUBSCRIBER_LAG,
        "Newest event id minus the subscriber's cursor."
    );
    metrics::describe_histogram!(
        m::EVENT_DELIVERY,
        metrics::Unit::Seconds,
        "Time from an event's commit to its live emit to sockets."
    );
    metrics::describe_counter!(m::WEBHOOKS, "Provider callbacks by outcome.");
    metrics::describe_gauge!(m::PAYOUTS, "Payouts in each status.");
    metrics::describe_counter!(
        push::PUSHES,
        "Web push attempts by outcome (sent, retried, gone, failed)."
    );
    metrics::describe_gauge!(m::DEAD_LETTERS, "Dead letters kept for each subscriber.");
    metrics::describe_counter!(
        mail::EMAILS_TOTAL,
        "Digest emails by outcome: sent, retried (temporary failure), bounced (address refused for good), suppressed (due but not mailed)."
    );

    // `increment(0)` registers a series without touching what other apps of this process
    // (tests) have recorded into it.
    metrics::gauge!(m::SOCKETS_CONNECTED).increment(0.0);
    let _registered = metrics::histogram!(m::EVENT_DELIVERY);
    for name in EventName::ALL {
        metrics::counter!(m::EVENTS_PUBLISHED, "event" => name.as_str()).increment(0);
        metrics::counter!(m::SOCKET_EMITS, "event" => name.as_str()).increment(0);
    }
    metrics::describe_counter!(m::UPLOADS, "Uploads by outcome.");
    metrics::describe_counter!(
        m::UPLOAD_BYTES,
        metrics::Unit::Bytes,
        "Bytes received by uploads, by outcome."
    );
    for outcome in m::UPLOAD_OUTCOMES {
        metrics::counter!(m::UPLOADS, "outcome" => outcome).increment(0);
        metrics::counter!(m::UPLOAD_BYTES, "outcome" => outcome).increment(0);
    }
    for outcome in mail::EMAIL_OUTCOMES {
        metrics::counter!(mail::EMAILS_TOTAL, "outcome" => outcome).increment(0);
    }
    for outcome in m::WEBHOOK_OUTCOMES {
        metrics::counter!(m::WEBHOOKS, "outcome" => outcome).increment(0);
    }
    for outcome in push::OUTCOMES {
        metrics::counter!(push::PUSHES, "outcome" => outcome).increment(0);
    }
    for status in payments::PAYOUT_STATUSES {
        metrics::gauge!(m::PAYOUTS, "status" => payments::status_name(status)).increment(0.0);
    }
    for sub in subscribers {
        metrics::gauge!(m::SUBSCRIBER_LAG, "subscriber" => *sub).increment(0.0);
        metrics::gauge!(m::DEAD_LETTERS, "subscriber" => *sub).increment(0.0);
    }
    for (path, item) in &openapi.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let status = op
                .responses
                .responses
                .keys()
                .find(|k| k.starts_with('2'))
                .cloned()
                .unwrap_or_else(|| "200".to_owned());
            metrics::counter!(m::HTTP_REQUESTS, "method" => method, "route" => path.clone(), "status" => status)
                .increment(0);
            let _registered =
                metrics::histogram!(m::HTTP_DURATION, "method" => method, "route" => path.clone());
        }
    }
}

/// The method label: the standard methods by name, anything else as `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts every request and times it by method and route template (axum's
/// [`MatchedPath`]; the Socket.IO transport and unmatched paths get fixed labels, never the
/// raw path).
pub async fn track(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None if req.uri().path().starts_with("/socket.io") => m::SOCKET_IO_ROUTE.to_owned(),
        None => m::UNMATCHED_ROUTE.to_owned(),
    };
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!(m::HTTP_DURATION, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(m::HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    res
}

/// What `/metrics` needs besides the app state.
#[derive(Clone)]
struct Scrape {
    token: Option<Arc<str>>,
}

/// `GET /metrics` (outside `/api`, not in the OpenAPI document: it is for Prometheus, not
/// for API clients).
pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .layer(Extension(Scrape {
            token: config.metrics_token.as_deref().map(Arc::from),
        }))
}

/// True when `headers` carry `Authorization: Bearer <token>` (compared in constant time).
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

/// Refreshes the gauges kept in the database. A database error leaves them as they were
/// (and is logged): the scrape still answers with everything else.
async fn refresh(state: &AppState) {
    let lags = async {
        let newest = state.bus.latest_id().await?;
        kernel::monitor::subscriber_lags(&state.db, newest).await
    };
    let names = match lags.await {
        Ok(lags) => lags
            .into_iter()
            .map(|l| {
                metrics::gauge!(m::SUBSCRIBER_LAG, "subscriber" => l.name.clone())
                    .set(l.lag as f64);
                l.name
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read subscriber lag");
            Vec::new()
        }
    };
    match kernel::monitor::open_dead_letters(&state.db).await {
        Ok(mut open) => {
            // Every subscriber with a cursor, so a resolved dead letter goes back to 0.
            for name in names {
                open.entry(name).or_insert(0);
            }
            for (subscriber, n) in open {
                metrics::gauge!(m::DEAD_LETTERS, "subscriber" => subscriber).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count dead letters"),
    }
    match payments::payouts_by_status(&state.db).await {
        Ok(counts) => {
            for (status, n) in counts {
                metrics::gauge!(m::PAYOUTS, "status" => status).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count payouts"),
    }
}

async fn scrape(
    State(state): State<AppState>,
    Extension(cfg): Extension<Scrape>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = &cfg.token
        && !authorized(&headers, token)
    {
        return Err(ApiError::Unauthorized);
    }
    let Some(handle) = handle() else {
        return Err(ApiError::Unavailable {
            code: ErrorCode::MetricsUnavailable,
            detail: "another metrics recorder was installed in this process".into(),
        });
    };
    refresh(&state).await;
    let body = handle.render();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}
