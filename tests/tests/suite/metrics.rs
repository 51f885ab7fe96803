//! `GET /metrics` after real traffic, parsed by the reference Prometheus parser
//! (`prometheus-client`'s `text_string_to_metric_families`, pinned in tests/py), with
//! `METRICS_TOKEN` enforced. The recorder is global to a process and the test reads exact
//! values, so its app is a `marketplace` process of its own, not an app inside the suite's
//! process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use marketplace_tests::cluster::ProcessNode;
use marketplace_tests::socket::SocketClient;
use marketplace_tests::{TestApp, eventually};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const TOKEN: &str = "scrape-token-0123456789abcdef";

fn py_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// A virtualenv in tests/py/.venv with the pinned parser (made once).
async fn python() -> PathBuf {
    let venv = py_dir().join(".venv");
    let python = venv.join("bin").join("python");
    let ready = tokio::process::Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if ready {
        return python;
    }
    let made = tokio::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await
        .expect("python3 is required");
    assert!(made.success(), "python3 -m venv failed");
    let out = tokio::process::Command::new(venv.join("bin").join("pip"))
        .args(["install", "-q", "-r"])
        .arg(py_dir().join("requirements.txt"))
        .output()
        .await
        .expect("pip");
    assert!(
        out.status.success(),
        "pip install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// Every sample of the scrape, parsed by the reference parser: (sample name, labels, value).
struct Scrape {
    families: serde_json::Map<String, Value>,
}

impl Scrape {
    fn samples(&self) -> impl Iterator<Item = &Value> {
        self.families
            .values()
            .flat_map(|f| f["samples"].as_array().into_iter().flatten())
    }

    /// The value of the sample `name` whose labels include `labels` (none: `None`).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples()
            .find(|s| {
                s["name"] == name
                    && labels
                        .iter()
                        .all(|(k, v)| s["labels"][*k].as_str() == Some(v))
            })
            .and_then(|s| s["value"].as_f64())
    }

    /// The type of the family that holds the sample `name`.
    fn kind_of(&self, name: &str) -> Option<&str> {
        self.families
            .values()
            .find(|f| {
                f["samples"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|s| s["name"] == name))
            })
            .and_then(|f| f["type"].as_str())
    }
}

async fn scrape(app: &TestApp, python: &PathBuf) -> Scrape {
    let res = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.expect("body");
    let mut child = tokio::process::Command::new(python)
        .arg(py_dir().join("parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("parser");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("parser output");
    Scrape {
        families: parsed["families"].as_object().cloned().unwrap_or_default(),
    }
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_real_traffic() {
    let python = python().await;
    // A process of its own: the metrics recorder is global to a process, and this test reads
    // exact values (the suite runs many apps in its one process).
    let node = ProcessNode::spawn(
        TestApp::test_env(|env| {
            env.insert("METRICS_TOKEN".into(), TOKEN.into());
        })
        .await,
    )
    .await;
    let app = &node.app;

    // METRICS_TOKEN is enforced with a problem document.
    let none = app.get("/metrics", None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.content_type, "application/problem+json");
    let wrong = app
        .get("/metrics", Some("scrape-token-wrong-wrong-wrong"))
        .await;
    assert_eq!(wrong.status, 401);

    // Every family of the contract is there from start-up, with its type.
    let before = scrape(app, &python).await;
    for (sample, kind) in [
        ("marketplace_sockets_connected", "gauge"),
        ("marketplace_events_published_total", "counter"),
        ("marketplace_socket_emits_total", "counter"),
        ("marketplace_subscriber_lag_events", "gauge"),
        ("marketplace_event_delivery_seconds_count", "histogram"),
        ("marketplace_webhooks_total", "counter"),
        ("marketplace_emails_total", "counter"),
        ("marketplace_payouts", "gauge"),
        ("marketplace_dead_letters", "gauge"),
        ("marketplace_http_requests_total", "counter"),
        (
            "marketplace_http_request_duration_seconds_count",
            "histogram",
        ),
    ] {
        assert_eq!(before.kind_of(sample), Some(kind), "{sample}");
    }
    assert_eq!(
        before.value("marketplace_sockets_connected", &[]),
        Some(0.0)
    );
    for outcome in ["applied", "unauthenticated", "rejected"] {
        assert_eq!(
            before.value("marketplace_webhooks_total", &[("outcome", outcome)]),
            Some(0.0),
            "{outcome}"
        );
    }
    // Present from start-up even without SMTP_URL (this app has none).
    for outcome in ["sent", "retried", "bounced", "suppressed"] {
        assert_eq!(
            before.value("marketplace_emails_total", &[("outcome", outcome)]),
            Some(0.0),
            "{outcome}"
        );
    }
    assert_eq!(
        before.value("marketplace_payouts", &[("status", "failed")]),
        Some(0.0)
    );
    assert_eq!(
        before.value(
            "marketplace_dead_letters",
            &[("subscriber", "notifications")]
        ),
        Some(0.0)
    );
    assert_eq!(
        before.value(
            "marketplace_socket_emits_total",
            &[("event", "payment:completed")]
        ),
        Some(0.0)
    );

    // Traffic: two sockets, a paid request (its callback through the real webhook), a forged
    // callback, and a subscriber cursor left behind by a subscriber that no longer runs.
    let admin = app.admin().await;
    let s1 = SocketClient::connect(&app.base, &admin.token)
        .await
        .expect("socket");
    let s2 = SocketClient::connect(&app.base, &admin.token)
        .await
        .expect("socket");
    {
        use sea_orm::{ConnectionTrait, Statement};
        let db = app.db().await;
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "INSERT INTO subscriber_cursors (name, last_event_id, updated_at) VALUES ('retired.subscriber', 0, '2026-01-01T00:00:00Z')",
        ))
        .await
        .expect("a stale cursor");
        let _ = db.close().await;
    }
    let paid = app.paid_request("120.00").await;
    let (buyer, request_id) = (&paid.buyer, &paid.request_id);
    let forged = app
        .http
        .post(app.url("/api/webhooks/shkeeper"))
        .header("content-type", "application/json")
        .body(json!({ "external_id": "x", "status": "PAID" }).to_string())
        .send()
        .await
        .expect("forged callback");
    assert_eq!(forged.status(), 401);
    app.get(&format!("/api/requests/{request_id}"), Some(&buyer.token))
        .await
        .expect(200);

    // The live subscribers catch up; the values moved.
    let after = eventually(Duration::from_secs(20), || async {
        let s = scrape(app, &python).await;
        let caught_up = ["connections.sockets", "notifications"].iter().all(|sub| {
            s.value("marketplace_subscriber_lag_events", &[("subscriber", sub)]) == Some(0.0)
        });
        let emitted = s
            .value(
                "marketplace_socket_emits_total",
                &[("event", "payment:completed")],
            )
            .is_some_and(|v| v >= 1.0);
        (caught_up && emitted).then_some(s)
    })
    .await
    .expect("the subscribers caught up and payment:completed was emitted");
    assert_eq!(after.value("marketplace_sockets_connected", &[]), Some(2.0));
    assert!(
        after
            .value(
                "marketplace_events_published_total",
                &[("event", "payment:completed")]
            )
            .is_some_and(|v| v >= 1.0)
    );
    assert_eq!(
        after.value("marketplace_webhooks_total", &[("outcome", "applied")]),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "marketplace_webhooks_total",
            &[("outcome", "unauthenticated")]
        ),
        Some(1.0)
    );
    assert!(
        after
            .value("marketplace_event_delivery_seconds_count", &[])
            .is_some_and(|v| v >= 1.0)
    );
    // The stale cursor's lag is the newest event id: the whole log is ahead of it.
    let newest = {
        let page = app
            .get("/api/admin/subscribers", Some(&admin.token))
            .await
            .expect(200);
        page["newestEventId"].as_f64().expect("newest id")
    };
    let stale = after
        .value(
            "marketplace_subscriber_lag_events",
            &[("subscriber", "retired.subscriber")],
        )
        .expect("the stale cursor's lag");
    assert!(
        stale > 0.0 && stale <= newest,
        "lag {stale}, newest {newest}"
    );
    // HTTP series carry route templates, never raw ids.
    assert!(
        after
            .value(
                "marketplace_http_requests_total",
                &[
                    ("method", "GET"),
                    ("route", "/api/requests/{id}"),
                    ("status", "200")
                ]
            )
            .is_some_and(|v| v >= 1.0)
    );
    for s in after.samples() {
        let route = s["labels"]["route"].as_str().unwrap_or_default();
        assert!(
            !route.contains(request_id.as_str()) && !route.contains(&buyer.id),
            "a raw id in a route label: {route}"
        );
    }

    // A socket leaves: the gauge follows.
    s2.close().await;
    let one = eventually(Duration::from_secs(10), || async {
        let s = scrape(app, &python).await;
        (s.value("marketplace_sockets_connected", &[]) == Some(1.0)).then_some(())
    })
    .await;
    assert!(one.is_some(), "the socket gauge did not go back to 1");
    s1.close().await;
}
