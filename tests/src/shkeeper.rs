//! A stand-in SHKeeper for payment tests: an HTTP server on 127.0.0.1:0 speaking the
//! contract's formats (invoices, crypto list, payouts, tasks, payout status by external id),
//! recording every request, with scriptable answers and delays. Also: signing callbacks the
//! way SHKeeper does, and the story's payment steps by signed callback (the counterparts of
//! the sandbox steps in [`crate::story`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::TestApp;
use crate::story::{AcceptedRequest, CompletedRequest, PaidAfterCancel, PaidRequest};

pub const API_KEY: &str = "standin-api-key-0123456789";
pub const PAYOUT_USER: &str = "payout-bot";
pub const PAYOUT_PASSWORD: &str = "payout-secret";

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// How the invoice endpoint answers.
#[derive(Debug, Clone)]
pub enum InvoiceMode {
    Success,
    /// HTTP 200 with `{ status: "error", message }`.
    Error(String),
    /// Sleeps this long before answering success.
    Slow(Duration),
}

/// How task polls answer.
#[derive(Debug, Clone)]
pub enum TaskMode {
    Success,
    Pending,
    /// `{ status: "FAILURE", result: reason }`.
    Failure(String),
    /// `SUCCESS` whose item has `status: "error"`.
    ItemError(String),
}

#[derive(Debug)]
pub struct Script {
    pub invoice: InvoiceMode,
    pub task: TaskMode,
    /// Delay before the payout endpoint answers (it records the request first).
    pub payout_delay: Duration,
    /// The payout endpoint answers `{ status: "error", message }`.
    pub payout_error: Option<String>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            invoice: InvoiceMode::Success,
            task: TaskMode::Success,
            payout_delay: Duration::ZERO,
            payout_error: None,
        }
    }
}

#[derive(Default)]
struct Inner {
    recorded: Vec<Recorded>,
    script: Script,
    /// external_id → task id of payouts it accepted.
    payouts: HashMap<String, String>,
    next_id: u64,
}

/// The running stand-in.
#[derive(Clone)]
pub struct StandIn {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn headers_map(h: &HeaderMap) -> HashMap<String, String> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect()
}

fn txid_for(external_id: &str) -> String {
    format!("txid-{external_id}")
}

impl StandIn {
    pub async fn start() -> StandIn {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/api/v1/crypto", get(cryptos))
            .route("/api/v1/{crypto}/payment_request", post(invoice))
            .route("/api/v1/{crypto}/payout", post(payout))
            .route("/api/v1/{crypto}/task/{id}", get(task))
            .route("/api/v1/{crypto}/payout/status", get(payout_status))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn {
            base: format!("http://{addr}"),
            inner,
        }
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.inner.lock().expect("lock").script);
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.inner.lock().expect("lock").recorded.clone()
    }

    /// Requests with this method whose path contains `part` (e.g. `/payout`, `/task/`).
    pub fn calls(&self, method: &str, part: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .collect()
    }

    /// The environment that points an app at this stand-in.
    pub fn env(&self, env: &mut HashMap<String, String>) {
        env.insert("PAYMENT_PROVIDER".into(), "shkeeper".into());
        env.insert("SHKEEPER_URL".into(), self.base.clone());
        env.insert("SHKEEPER_API_KEY".into(), API_KEY.into());
        env.insert("SHKEEPER_PAYOUT_USER".into(), PAYOUT_USER.into());
        env.insert("SHKEEPER_PAYOUT_PASSWORD".into(), PAYOUT_PASSWORD.into());
        env.insert("PUBLIC_URL".into(), "https://market.example".into());
    }
}

fn record(
    inner: &Arc<Mutex<Inner>>,
    method: &str,
    path: String,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) {
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    inner.lock().expect("lock").recorded.push(Recorded {
        method: method.to_owned(),
        path,
        query,
        headers: headers_map(headers),
        body,
    });
}

async fn cryptos(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    record(
        &inner,
        "GET",
        "/api/v1/crypto".into(),
        HashMap::new(),
        &headers,
        b"",
    );
    axum::Json(json!({
        "status": "success",
        "crypto": ["BTC", "ETH-USDT"],
        "crypto_list": [{ "name": "BTC", "display_name": "Bitcoin" }, { "name": "ETH-USDT", "display_name": "Tether (ERC20)" }],
    }))
    .into_response()
}

async fn invoice(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(crypto): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &inner,
        "POST",
        format!("/api/v1/{crypto}/payment_request"),
        HashMap::new(),
        &headers,
        &body,
    );
    let (mode, n) = {
        let mut g = inner.lock().expect("lock");
        g.next_id += 1;
        (g.script.invoice.clone(), g.next_id)
    };
    if headers
        .get("x-shkeeper-api-key")
        .and_then(|v| v.to_str().ok())
        != Some(API_KEY)
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "status": "error", "message": "bad api key" })),
        )
            .into_response();
    }
    match mode {
        InvoiceMode::Error(message) => {
            axum::Json(json!({ "status": "error", "message": message })).into_response()
        }
        other => {
            if let InvoiceMode::Slow(d) = other {
                tokio::time::sleep(d).await;
            }
            axum::Json(json!({
                "status": "success",
                "id": n,
                "amount": "0.00251",
                "exchange_rate": "50000.00",
                "wallet": format!("bc1qstandin{n}"),
                "recalculate_after": 0,
                "display_name": crypto,
            }))
            .into_response()
        }
    }
}

async fn payout(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(crypto): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(
        &inner,
        "POST",
        format!("/api/v1/{crypto}/payout"),
        HashMap::new(),
        &headers,
        &body,
    );
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let external_id = parsed["external_id"].as_str().unwrap_or("").to_owned();
    let (delay, error, task_id) = {
        let mut g = inner.lock().expect("lock");
        g.next_id += 1;
        let task_id = format!("task-{}", g.next_id);
        if g.script.payout_error.is_none() {
            g.payouts.insert(external_id.clone(), task_id.clone());
        }
        (
            g.script.payout_delay,
            g.script.payout_error.clone(),
            task_id,
        )
    };
    tokio::time::sleep(delay).await;
    if let Some(message) = error {
        return axum::Json(json!({ "status": "error", "message": message })).into_response();
    }
    axum::Json(json!({ "task_id": task_id, "external_id": external_id })).into_response()
}

async fn task(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((crypto, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    record(
        &inner,
        "GET",
        format!("/api/v1/{crypto}/task/{id}"),
        HashMap::new(),
        &headers,
        b"",
    );
    let (mode, external_id) = {
        let g = inner.lock().expect("lock");
        let ext = g
            .payouts
            .iter()
            .find(|(_, t)| **t == id)
            .map(|(e, _)| e.clone());
        (g.script.task.clone(), ext)
    };
    let Some(external_id) = external_id else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "status": "error", "message": "no such task" })),
        )
            .into_response();
    };
    let body = match mode {
        TaskMode::Pending => json!({ "status": "PENDING", "result": null }),
        TaskMode::Success => json!({ "status": "SUCCESS", "result": [
            { "dest": "x", "amount": "1", "status": "success", "txids": [txid_for(&external_id), "second-txid"] }
        ]}),
        TaskMode::Failure(reason) => json!({ "status": "FAILURE", "result": reason }),
        TaskMode::ItemError(reason) => json!({ "status": "SUCCESS", "result": [
            { "dest": "x", "amount": "1", "status": "error", "message": reason, "txids": [] }
        ]}),
    };
    axum::Json(body).into_response()
}

async fn payout_status(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(crypto): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    record(
        &inner,
        "GET",
        format!("/api/v1/{crypto}/payout/status"),
        query.clone(),
        &headers,
        b"",
    );
    let external_id = query.get("external_id").cloned().unwrap_or_default();
    let (known, mode) = {
        let g = inner.lock().expect("lock");
        (g.payouts.contains_key(&external_id), g.script.task.clone())
    };
    if !known {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "Payout not found" })),
        )
            .into_response();
    }
    let body = match mode {
        TaskMode::Success => {
            json!({ "external_id": external_id, "status": "SUCCESS", "txid": txid_for(&external_id) })
        }
        TaskMode::Pending => {
            json!({ "external_id": external_id, "status": "IN_PROGRESS", "txid": null })
        }
        TaskMode::Failure(_) | TaskMode::ItemError(_) => {
            json!({ "external_id": external_id, "status": "FAIL", "txid": null })
        }
    };
    axum::Json(body).into_response()
}

/// What SHKeeper puts in `X-Shkeeper-Signature`.
pub fn sign(key: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("hmac key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` to a callback path with exactly these headers.
pub async fn post_raw(
    app: &TestApp,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> crate::Resp {
    let mut req = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    app.send(req).await
}

/// Posts a correctly signed callback, as SHKeeper 2.5.16+ does.
pub async fn post_signed(app: &TestApp, path: &str, body: &Value) -> crate::Resp {
    post_signed_raw(app, path, &serde_json::to_string(body).expect("json")).await
}

/// Posts `raw` (any text, JSON or not) to a callback path, correctly signed with the API key
/// and the current timestamp.
pub async fn post_signed_raw(app: &TestApp, path: &str, raw: &str) -> crate::Resp {
    let ts = now_secs();
    let sig = sign(API_KEY, ts, raw.as_bytes());
    post_raw(
        app,
        path,
        raw,
        &[
            ("X-Shkeeper-Timestamp", ts.to_string()),
            ("X-Shkeeper-Signature", sig),
        ],
    )
    .await
}

/// A payment callback body as SHKeeper sends it.
pub fn payment_callback(
    external_id: &str,
    status: &str,
    balance_fiat: &str,
    balance_crypto: &str,
    txid: &str,
) -> Value {
    json!({
        "external_id": external_id,
        "crypto": "BTC",
        "addr": "bc1qstandin1",
        "fiat": "USD",
        "balance_fiat": balance_fiat,
        "balance_crypto": balance_crypto,
        "paid": status != "PARTIAL",
        "status": status,
        "transactions": [
            { "txid": "older-tx", "date": "2026-11-22 10:00:00", "amount_crypto": "0.001", "amount_fiat": "50", "trigger": false, "crypto": "BTC" },
            { "txid": txid, "date": "2026-11-22 10:05:00", "amount_crypto": "0.001", "amount_fiat": "50", "trigger": true, "crypto": "BTC" }
        ],
        "fee_percent": "2",
        "overpaid_fiat": "0.00",
    })
}

/// An app whose provider is the stand-in SHKeeper `standin`.
pub async fn app_with(standin: &StandIn) -> TestApp {
    TestApp::spawn_with(|env| standin.env(env)).await
}

/// The buyer pays and the stand-in's signed `PAID` callback for `price` USD and
/// `balance_crypto` BTC (transaction `tx`) reaches the real webhook, which applies it.
/// Leaves: payment `completed`, request `paid`, one `applied` webhook on record.
/// Events: `payment:created`, `payment:status-updated`, `request:status-updated`,
/// `payment:completed`.
pub async fn pay_by_callback(
    app: &TestApp,
    accepted: AcceptedRequest,
    balance_crypto: &str,
    tx: &str,
) -> PaidRequest {
    let payment = app
        .create_payment(&accepted.buyer, &accepted.request_id)
        .await;
    let payment_id = payment["id"].as_str().expect("payment id");
    apply_paid_callback(app, payment_id, &accepted.price, balance_crypto, tx).await;
    assert_eq!(
        app.request_status(&accepted.buyer.token, &accepted.request_id)
            .await,
        "paid"
    );
    accepted.paid(payment)
}

/// Posts the signed `PAID` callback for the payment (`price` USD, `balance_crypto` BTC,
/// transaction `tx`) and asserts the webhook applied it.
async fn apply_paid_callback(
    app: &TestApp,
    payment_id: &str,
    price: &str,
    balance_crypto: &str,
    tx: &str,
) {
    let res = post_signed(
        app,
        "/api/webhooks/shkeeper",
        &payment_callback(payment_id, "PAID", price, balance_crypto, tx),
    )
    .await;
    assert_eq!(res.expect(202)["outcome"], "applied");
}

/// A new accepted request of `price` USD paid by callback ([`TestApp::accepted_request`]
/// then [`pay_by_callback`]).
pub async fn paid_request(
    app: &TestApp,
    price: &str,
    balance_crypto: &str,
    tx: &str,
) -> PaidRequest {
    let accepted = app.accepted_request(price).await;
    pay_by_callback(app, accepted, balance_crypto, tx).await
}

/// A new request of `price` USD paid by callback ([`paid_request`]) and completed by its
/// buyer ([`TestApp::complete`]), so its release payout to the seller starts.
/// Events: those of both, then `payout:created`.
pub async fn completed_request(
    app: &TestApp,
    price: &str,
    balance_crypto: &str,
    tx: &str,
) -> CompletedRequest {
    let paid = paid_request(app, price, balance_crypto, tx).await;
    app.complete(paid).await
}

/// A 100.00 USD request whose buyer created a payment and cancelled the request, after which
/// the stand-in's signed `PAID` callback for `balance_crypto` BTC (transaction `tx`) arrived
/// and was applied: payment `completed`, request `cancelled` (see [`PaidAfterCancel`]).
/// Events: `payment:created`, `request:status-updated`, `payment:status-updated`,
/// `payment:completed`.
pub async fn paid_after_cancel(app: &TestApp, balance_crypto: &str, tx: &str) -> PaidAfterCancel {
    let a = app.accepted_request("100.00").await;
    let payment = app.create_payment(&a.buyer, &a.request_id).await;
    let payment_id = payment["id"].as_str().expect("payment id").to_owned();
    app.cancel_request(&a.buyer, &a.request_id).await;
    apply_paid_callback(app, &payment_id, &a.price, balance_crypto, tx).await;
    a.paid_after_cancel(payment_id)
}

/// Names of the durable events in the log, oldest first.
pub async fn event_names(app: &TestApp) -> Vec<String> {
    use kernel::bus::entity::event;
    use sea_orm::{EntityTrait, QueryOrder};
    let db = app.db().await;
    let rows = event::Entity::find()
        .order_by_asc(event::Column::Id)
        .all(&db)
        .await
        .expect("events");
    let _ = db.close().await;
    rows.into_iter().map(|r| r.name).collect()
}

/// How many durable events named `name` are in the log.
pub async fn count_events(app: &TestApp, name: &str) -> usize {
    event_names(app).await.iter().filter(|n| *n == name).count()
}

/// Payloads of the durable events named `name`, oldest first.
pub async fn event_payloads(app: &TestApp, name: &str) -> Vec<Value> {
    use kernel::bus::entity::event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let db = app.db().await;
    let rows = event::Entity::find()
        .filter(event::Column::Name.eq(name))
        .order_by_asc(event::Column::Id)
        .all(&db)
        .await
        .expect("events");
    let _ = db.close().await;
    rows.into_iter().map(|r| r.payload).collect()
}
