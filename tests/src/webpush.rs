//! A real web push service for the tests: the npm `web-push-testing` server (it checks the
//! VAPID token against the subscription's `applicationServerKey`, decrypts `aes128gcm` and
//! keeps what arrived; `/expire-subscription` makes the next push answer 410), started on a
//! free port, behind a small recording relay of ours. The relay forwards each push as it
//! came and records its headers (the service keeps only the decrypted text), and can answer
//! 503 with `Retry-After` for a number of pushes first, to test retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::js::{ensure_packages, js_dir};

/// One push the relay saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    /// What the relay answered.
    pub status: u16,
}

#[derive(Default)]
struct Relay {
    seen: Mutex<HashMap<String, Vec<Seen>>>,
    /// Per subscription: how many pushes are still to be answered with this status.
    failures: Mutex<HashMap<String, (u32, StatusCode)>>,
    service: String,
    http: reqwest::Client,
}

/// A subscription made at the service, as a browser would get it, with its endpoint
/// pointing at the relay.
#[derive(Debug, Clone)]
pub struct BrowserSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub client_hash: String,
}

impl BrowserSubscription {
    /// The body of `POST /api/push/subscriptions`.
    pub fn body(&self) -> Value {
        json!({ "endpoint": self.endpoint, "keys": { "p256dh": self.p256dh, "auth": self.auth } })
    }
}

/// The running service and relay; both stop when this is dropped.
pub struct PushService {
    _child: tokio::process::Child,
    service: String,
    relay_addr: SocketAddr,
    relay: Arc<Relay>,
    http: reqwest::Client,
    _relay_task: tokio::task::JoinHandle<()>,
}

impl PushService {
    /// Starts `web-push-testing` (installing the npm packages when missing) and the relay.
    pub async fn start() -> PushService {
        ensure_packages(&["web-push-testing"]).await;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let child = tokio::process::Command::new("node")
            .arg("node_modules/web-push-testing/src/bin/server.js")
            .arg(port.to_string())
            .current_dir(js_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs web-push-testing");
        let service = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let up = crate::eventually(Duration::from_secs(20), || async {
            let res = http.post(format!("{service}/status")).send().await.ok()?;
            res.status().is_success().then_some(())
        })
        .await;
        assert!(
            up.is_some(),
            "web-push-testing did not start on port {port}"
        );

        let relay = Arc::new(Relay {
            service: service.clone(),
            http: http.clone(),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let relay_addr = listener.local_addr().expect("relay address");
        let router = axum::Router::new()
            .route("/notify/{hash}", post(forward))
            .with_state(relay.clone());
        let relay_task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        PushService {
            _child: child,
            service,
            relay_addr,
            relay,
            http,
            _relay_task: relay_task,
        }
    }

    /// A browser's subscription for a server whose VAPID public key is
    /// `application_server_key`.
    pub async fn subscribe(&self, application_server_key: &str) -> BrowserSubscription {
        let res: Value = self
            .http
            .post(format!("{}/subscribe", self.service))
            .json(&json!({ "applicationServerKey": application_server_key }))
            .send()
            .await
            .expect("subscribe")
            .json()
            .await
            .expect("subscription JSON");
        let data = &res["data"];
        let client_hash = data["clientHash"].as_str().expect("clientHash").to_owned();
        BrowserSubscription {
            endpoint: format!("http://{}/notify/{client_hash}", self.relay_addr),
            p256dh: data["keys"]["p256dh"].as_str().expect("p256dh").to_owned(),
            auth: data["keys"]["auth"].as_str().expect("auth").to_owned(),
            client_hash,
        }
    }

    /// What arrived for the subscription, decrypted by the service, parsed as JSON.
    pub async fn messages(&self, sub: &BrowserSubscription) -> Vec<Value> {
        let res: Value = self
            .http
            .post(format!("{}/get-notifications", self.service))
            .json(&json!({ "clientHash": sub.client_hash }))
            .send()
            .await
            .expect("get-notifications")
            .json()
            .await
            .expect("notifications JSON");
        res["data"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let text = m.as_str().expect("a decrypted message");
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
            })
            .collect()
    }

    /// Waits until `n` messages arrived for `sub` (panics after `within`) and answers them.
    pub async fn wait_messages(
        &self,
        sub: &BrowserSubscription,
        n: usize,
        within: Duration,
    ) -> Vec<Value> {
        let got = crate::eventually(within, || async {
            let m = self.messages(sub).await;
            (m.len() >= n).then_some(m)
        })
        .await;
        got.unwrap_or_else(|| panic!("{n} push(es) did not arrive within {within:?}"))
    }

    /// The next push to `sub` answers 410 (the user unsubscribed in the browser).
    pub async fn expire(&self, sub: &BrowserSubscription) {
        let res = self
            .http
            .post(format!(
                "{}/expire-subscription/{}",
                self.service, sub.client_hash
            ))
            .send()
            .await
            .expect("expire-subscription");
        assert!(res.status().is_success());
    }

    /// The relay answers the next `n` pushes to `sub` with 503 and `Retry-After: 1`.
    pub fn fail_next(&self, sub: &BrowserSubscription, n: u32) {
        self.relay.failures.lock().unwrap().insert(
            sub.client_hash.clone(),
            (n, StatusCode::SERVICE_UNAVAILABLE),
        );
    }

    /// The relay answers the next `n` pushes to `sub` with 400 (a refusal that retrying
    /// cannot mend, as a push service answers a malformed push).
    pub fn refuse_next(&self, sub: &BrowserSubscription, n: u32) {
        self.relay
            .failures
            .lock()
            .unwrap()
            .insert(sub.client_hash.clone(), (n, StatusCode::BAD_REQUEST));
    }

    /// Every push the relay saw for `sub`, in order.
    pub fn seen(&self, sub: &BrowserSubscription) -> Vec<Seen> {
        self.relay
            .seen
            .lock()
            .unwrap()
            .get(&sub.client_hash)
            .cloned()
            .unwrap_or_default()
    }
}

async fn forward(
    State(relay): State<Arc<Relay>>,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let recorded: HashMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let fail = {
        let mut failures = relay.failures.lock().unwrap();
        match failures.get_mut(&hash) {
            Some((left, status)) if *left > 0 => {
                *left -= 1;
                Some(*status)
            }
            _ => None,
        }
    };
    let (status, answer_headers, answer) = if let Some(status) = fail {
        let mut h = HeaderMap::new();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert("retry-after", "1".parse().unwrap());
        }
        (status, h, Bytes::from_static(b"refused by the test relay"))
    } else {
        let mut req = relay
            .http
            .post(format!("{}/notify/{hash}", relay.service))
            .body(body);
        for name in [
            "content-encoding",
            "content-type",
            "ttl",
            "authorization",
            "urgency",
            "topic",
        ] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v);
            }
        }
        match req.send().await {
            Ok(res) => {
                let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
                (
                    status,
                    HeaderMap::new(),
                    res.bytes().await.unwrap_or_default(),
                )
            }
            Err(_) => (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new()),
        }
    };
    relay
        .seen
        .lock()
        .unwrap()
        .entry(hash)
        .or_default()
        .push(Seen {
            headers: recorded,
            status: status.as_u16(),
        });
    (status, answer_headers, answer)
}
