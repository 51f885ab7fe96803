//! Web push against a real push service (`web-push-testing`, behind a recording relay): a
//! push for an offline user, decrypted by the service, with its payload, `TTL`, `Urgency` and
//! `Topic`; none for a connected user or a muted kind; 410 deletes the subscription; 503
//! with `Retry-After` is retried and delivered once; SSRF endpoints refused with nothing
//! sent; the subscriptions API and the VAPID key.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use marketplace_tests::webpush::{BrowserSubscription, PushService};
use marketplace_tests::{TestApp, TestUser, eventually};
use serde_json::{Value, json};

const APP_URL: &str = "https://app.marketplace.test";

fn push_env(env: &mut HashMap<String, String>) {
    env.insert("PUSH_ALLOW_HTTP_ENDPOINTS".into(), "true".into());
    env.insert("APP_URL".into(), APP_URL.into());
}

async fn public_key(app: &TestApp) -> String {
    let body = app.get("/api/push/public-key", None).await.expect(200);
    body["publicKey"].as_str().expect("publicKey").to_owned()
}

/// A browser of `user` subscribed at `service` and registered with the app (201).
async fn subscribed(app: &TestApp, service: &PushService, user: &TestUser) -> BrowserSubscription {
    let sub = service.subscribe(&public_key(app).await).await;
    let created = app
        .post("/api/push/subscriptions", Some(&user.token), sub.body())
        .await
        .expect(201);
    assert_eq!(created["endpoint"], sub.endpoint);
    sub
}

/// The user's notifications (up to 100), newest first, once there are at least `n`.
async fn notifications(app: &TestApp, user: &TestUser, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), || async {
        let page = app
            .get("/api/notifications?limit=100", Some(&user.token))
            .await
            .expect(200);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        (items.len() >= n).then_some(items)
    })
    .await
    .unwrap_or_else(|| panic!("{} notification(s) did not appear", n))
}

fn topic_of(prefix: &str, id: &str) -> String {
    let id = uuid::Uuid::parse_str(id).unwrap();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    )
}

async fn pushes_total(app: &TestApp, outcome: &str) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let prefix = format!("marketplace_pushes_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

/// Waits for every subscriber and then for the push jobs (timer poll, sends) to finish.
async fn quiet(app: &TestApp) {
    app.settled().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn an_offline_user_gets_one_decrypted_push_with_its_payload_and_headers() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let request_id = open.request_id.clone();
    let sub = subscribed(&app, &service, &buyer).await;

    let offered = app.offer_on(open, "120.00").await;
    let pushed = service
        .wait_messages(&sub, 1, Duration::from_secs(15))
        .await;
    let listed = notifications(&app, &buyer, 1).await;
    let n = &listed[0];
    let p = &pushed[0];
    assert_eq!(p["id"], n["id"]);
    assert_eq!(p["kind"], "request:offer-received");
    assert_eq!(p["title"], n["title"]);
    assert_eq!(p["body"], n["body"]);
    assert_eq!(p["data"], n["data"]);
    assert_eq!(p["url"], format!("{APP_URL}/requests/{request_id}"));

    let seen = service.seen(&sub);
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    assert_eq!(seen[0].status, 201, "the service accepted it");
    assert_eq!(h["ttl"], "86400");
    assert_eq!(h["urgency"], "normal");
    assert_eq!(h["topic"], topic_of("r", &request_id));
    assert_eq!(h["content-encoding"], "aes128gcm");
    assert!(h["authorization"].starts_with("vapid t="), "{h:?}");

    // A chat message is urgent and its topic is the chat's.
    let chat = app.chat_id(&offered.seller, &request_id).await;
    app.send_message(&offered.seller, &chat, "Still available, ships today.")
        .await;
    let pushed = service
        .wait_messages(&sub, 2, Duration::from_secs(15))
        .await;
    assert_eq!(pushed[1]["kind"], "chat:new-message");
    assert_eq!(pushed[1]["body"], "Still available, ships today.");
    assert_eq!(pushed[1]["url"], format!("{APP_URL}/chats/{chat}"));
    let seen = service.seen(&sub);
    assert_eq!(seen[1].headers["urgency"], "high");
    assert_eq!(seen[1].headers["topic"], topic_of("c", &chat));

    quiet(&app).await;
    assert_eq!(
        service.messages(&sub).await.len(),
        2,
        "one push per notification"
    );
    assert_eq!(service.seen(&sub).len(), 2);
    assert!(pushes_total(&app, "sent").await >= 2.0);
}

#[tokio::test]
async fn a_connected_user_gets_no_push_and_gets_one_again_once_offline() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let request_id = open.request_id.clone();
    let sub = subscribed(&app, &service, &buyer).await;

    let socket = app.socket(&buyer).await;
    app.make_offer(&app.seller().await, &request_id, "100.00")
        .await;
    notifications(&app, &buyer, 1).await;
    quiet(&app).await;
    assert!(
        service.messages(&sub).await.is_empty(),
        "pushed to a connected user"
    );
    assert!(service.seen(&sub).is_empty());

    socket.close().await;
    let offline = eventually(Duration::from_secs(10), || async {
        let p = app
            .get(
                &format!("/api/users/{}/presence", buyer.id),
                Some(&buyer.token),
            )
            .await
            .expect(200);
        (p["online"] == false).then_some(())
    })
    .await;
    assert!(offline.is_some(), "the user did not go offline");
    app.make_offer(&app.seller().await, &request_id, "90.00")
        .await;
    let pushed = service
        .wait_messages(&sub, 1, Duration::from_secs(15))
        .await;
    assert_eq!(pushed.len(), 1);
    assert!(
        pushed[0]["body"].as_str().unwrap().contains("90.00"),
        "{}",
        pushed[0]
    );
}

#[tokio::test]
async fn a_muted_kind_is_not_pushed_but_still_listed() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let sub = subscribed(&app, &service, &buyer).await;
    app.patch(
        "/api/users/me/notification-settings",
        Some(&buyer.token),
        json!({ "mutedKinds": ["request:offer-received"] }),
    )
    .await
    .expect(200);

    let offered = app.offer_on(open, "75.00").await;
    let listed = notifications(&app, &buyer, 1).await;
    assert_eq!(listed[0]["kind"], "request:offer-received");
    quiet(&app).await;
    assert!(service.messages(&sub).await.is_empty());

    // Another kind still is; and push off stops every kind.
    let chat = app.chat_id(&offered.seller, &offered.request_id).await;
    app.send_message(&offered.seller, &chat, "hello").await;
    service
        .wait_messages(&sub, 1, Duration::from_secs(15))
        .await;
    app.patch(
        "/api/users/me/notification-settings",
        Some(&buyer.token),
        json!({ "push": false }),
    )
    .await
    .expect(200);
    app.send_message(&offered.seller, &chat, "hello again")
        .await;
    notifications(&app, &buyer, 3).await;
    quiet(&app).await;
    assert_eq!(service.messages(&sub).await.len(), 1);
}

#[tokio::test]
async fn a_410_deletes_the_subscription() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let sub = subscribed(&app, &service, &buyer).await;
    let listed = app
        .get("/api/push/subscriptions", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    service.expire(&sub).await;

    app.offer_on(open, "60.00").await;
    let gone = eventually(Duration::from_secs(15), || async {
        let page = app
            .get("/api/push/subscriptions", Some(&buyer.token))
            .await
            .expect(200);
        page["items"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the subscription was not deleted after 410");
    assert_eq!(service.seen(&sub).len(), 1);
    assert_eq!(service.seen(&sub)[0].status, 410);
    assert!(pushes_total(&app, "gone").await >= 1.0);
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_and_delivered_once() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let sub = subscribed(&app, &service, &buyer).await;
    service.fail_next(&sub, 1);

    app.offer_on(open, "55.00").await;
    let pushed = service
        .wait_messages(&sub, 1, Duration::from_secs(30))
        .await;
    assert_eq!(pushed.len(), 1);
    let seen = service.seen(&sub);
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![503, 201]
    );
    quiet(&app).await;
    assert_eq!(service.messages(&sub).await.len(), 1);
    assert!(pushes_total(&app, "retried").await >= 1.0);
}

#[tokio::test]
async fn a_push_refused_for_good_is_not_retried_and_admins_see_it() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let sub = subscribed(&app, &service, &buyer).await;
    service.refuse_next(&sub, 5);

    app.offer_on(open, "65.00").await;
    let admin = app.admin().await;
    let failure = eventually(Duration::from_secs(15), || async {
        let page = app
            .get("/api/admin/push-failures", Some(&admin.token))
            .await
            .expect(200);
        page["items"].as_array().unwrap().first().cloned()
    })
    .await
    .expect("the failed push is listed for admins");
    assert_eq!(failure["state"], "failed");
    assert_eq!(failure["userId"], buyer.id.as_str());
    assert_eq!(failure["attempts"], 1);
    assert!(
        failure["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("400")),
        "{failure}"
    );
    let origin = failure["endpointOrigin"].as_str().unwrap();
    assert!(
        sub.endpoint.starts_with(origin)
            && !origin.ends_with('/')
            && origin.len() < sub.endpoint.len(),
        "only the origin of {} is shown: {origin}",
        sub.endpoint
    );
    quiet(&app).await;
    assert_eq!(service.seen(&sub).len(), 1, "a 400 is not retried");
    assert!(pushes_total(&app, "failed").await >= 1.0);
    // Admins only.
    app.get("/api/admin/push-failures", Some(&buyer.token))
        .await
        .expect(403);
}

#[tokio::test]
async fn endpoints_that_reach_private_addresses_are_refused_and_nothing_is_sent() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(|env| {
        env.insert("PUSH_ALLOW_HTTP_ENDPOINTS".into(), "false".into());
    })
    .await;
    // A listener where a guard that failed would connect.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = trap.local_addr().unwrap().port();
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let keys = service.subscribe(&public_key(&app).await).await;
    for endpoint in [
        format!("https://127.0.0.1:{port}/push"),
        "https://10.0.0.1/push".to_owned(),
        format!("https://[::1]:{port}/push"),
        format!("https://0x7f000001:{port}/push"),
        format!("https://2130706433:{port}/push"),
        format!("https://[::ffff:127.0.0.1]:{port}/push"),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        format!("https://localhost:{port}/push"),
        format!("http://127.0.0.1:{port}/push"),
        "http://push.example.com/push".to_owned(),
    ] {
        let res = app
            .post(
                "/api/push/subscriptions",
                Some(&buyer.token),
                json!({ "endpoint": endpoint, "keys": { "p256dh": keys.p256dh, "auth": keys.auth } }),
            )
            .await;
        assert_eq!(res.status, 422, "{endpoint}: {}", res.body);
        assert_eq!(res.body["errors"][0]["field"], "endpoint", "{endpoint}");
    }
    let listed = app
        .get("/api/push/subscriptions", Some(&buyer.token))
        .await
        .expect(200);
    assert!(listed["items"].as_array().unwrap().is_empty());

    app.offer_on(open, "42.00").await;
    notifications(&app, &buyer, 1).await;
    quiet(&app).await;
    let connected = tokio::time::timeout(Duration::from_millis(300), trap.accept()).await;
    assert!(connected.is_err(), "something connected to the trap");
    let db = app.db().await;
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM push_deliveries".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 0);
    let _ = db.close().await;
}

#[tokio::test]
async fn subscriptions_are_the_callers_own_and_bad_keys_are_refused() {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let (buyer, other) = (app.buyer().await, app.buyer().await);
    let sub = subscribed(&app, &service, &buyer).await;
    let again = app
        .post("/api/push/subscriptions", Some(&buyer.token), sub.body())
        .await
        .expect(200);
    let id = again["id"].as_str().unwrap().to_owned();
    assert!(again["createdAt"].is_string());
    assert!(again.get("keys").is_none(), "keys are never sent back");

    for (body, field) in [
        (
            json!({ "endpoint": sub.endpoint, "keys": { "p256dh": "AAAA", "auth": sub.auth } }),
            "keys.p256dh",
        ),
        (
            json!({ "endpoint": sub.endpoint, "keys": { "p256dh": sub.p256dh, "auth": "c2hvcnQ" } }),
            "keys.auth",
        ),
        (
            json!({ "endpoint": "not a url", "keys": { "p256dh": sub.p256dh, "auth": sub.auth } }),
            "endpoint",
        ),
    ] {
        let res = app
            .post("/api/push/subscriptions", Some(&buyer.token), body)
            .await;
        assert_eq!(res.status, 422, "{field}: {}", res.body);
        assert_eq!(res.body["errors"][0]["field"], field);
    }
    assert_eq!(
        app.post("/api/push/subscriptions", None, sub.body())
            .await
            .status,
        401
    );

    let theirs = app
        .get("/api/push/subscriptions", Some(&other.token))
        .await
        .expect(200);
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let path = format!("/api/push/subscriptions/{id}");
    let res = app
        .send(app.http.delete(app.url(&path)).bearer_auth(&other.token))
        .await;
    assert_eq!(res.status, 404);
    let res = app
        .send(app.http.delete(app.url(&path)).bearer_auth(&buyer.token))
        .await;
    assert_eq!(res.status, 204);
    let mine = app
        .get("/api/push/subscriptions", Some(&buyer.token))
        .await
        .expect(200);
    assert!(mine["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_vapid_key_is_made_once_and_kept_or_taken_from_the_environment() {
    let app = TestApp::spawn().await;
    let key = public_key(&app).await;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&key)
        .expect("base64url");
    assert_eq!(raw.len(), 65);
    assert_eq!(raw[0], 4, "an uncompressed point");
    let app = app.restart().await;
    assert_eq!(public_key(&app).await, key, "the key survives a restart");

    // RFC 8291 Appendix A's application server key pair, given by the environment.
    let configured = TestApp::spawn_with(|env| {
        env.insert(
            "VAPID_PRIVATE_KEY".into(),
            "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw".into(),
        );
    })
    .await;
    assert_eq!(
        public_key(&configured).await,
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
    );
}

/// PostgreSQL and Redis: two nodes. The buyer's socket on one node stops pushes caused on
/// the other; once offline, each notification is pushed exactly once although both nodes run
/// the subscriber and the timer runner.
#[tokio::test]
async fn a_cluster_pushes_each_notification_once_and_none_while_connected_on_another_node() {
    use marketplace_tests::cluster::{Cluster, postgres_or_skip, redis_url};
    if !postgres_or_skip(
        "a_cluster_pushes_each_notification_once_and_none_while_connected_on_another_node",
    ) {
        return;
    }
    let service = PushService::start().await;
    let cluster = Cluster::start_with(2, &redis_url(), push_env).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    let buyer = a.buyer().await;
    let request = a.create_request(&buyer).await;
    let sub = subscribed(a, &service, &buyer).await;

    let socket = b.socket(&buyer).await;
    a.make_offer(&a.seller().await, &request, "100.00").await;
    notifications(a, &buyer, 1).await;
    a.settled().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        service.seen(&sub).is_empty(),
        "pushed while connected on the other node"
    );

    socket.close().await;
    let offline = eventually(Duration::from_secs(10), || async {
        let p = a
            .get(
                &format!("/api/users/{}/presence", buyer.id),
                Some(&buyer.token),
            )
            .await
            .expect(200);
        (p["online"] == false).then_some(())
    })
    .await;
    assert!(offline.is_some());
    for (node, price) in [(a, "90.00"), (b, "80.00"), (a, "70.00")] {
        node.make_offer(&node.seller().await, &request, price).await;
    }
    let pushed = service
        .wait_messages(&sub, 3, Duration::from_secs(20))
        .await;
    a.settled().await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let pushed_after = service.messages(&sub).await;
    assert_eq!(pushed_after.len(), 3, "{pushed_after:?}");
    let mut ids: Vec<&str> = pushed.iter().filter_map(|p| p["id"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct notifications");
    cluster.stop().await;
}

/// Settled deliveries are pruned after a week by the `push.prune` timer (made due here);
/// a pending one is kept.
#[tokio::test]
async fn settled_deliveries_are_pruned_after_a_week() {
    use sea_orm::{ConnectionTrait, Statement};
    let service = PushService::start().await;
    let app = TestApp::spawn_with(push_env).await;
    let open = app.open_request().await;
    let buyer = open.buyer.clone();
    let sub = subscribed(&app, &service, &buyer).await;
    app.offer_on(open, "33.00").await;
    service
        .wait_messages(&sub, 1, Duration::from_secs(15))
        .await;

    let db = app.db().await;
    let backend = db.get_database_backend();
    let count = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT COUNT(*) FROM push_deliveries WHERE state = 'sent'".to_owned(),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(
        eventually(Duration::from_secs(10), || async {
            (count(&db).await == 1).then_some(1)
        })
        .await,
        Some(1)
    );
    let old = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
    let due = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    for sql in [
        format!("UPDATE push_deliveries SET updated_at = '{old}'"),
        format!("UPDATE timers SET run_at = '{due}' WHERE kind = 'push.prune'"),
    ] {
        let changed = db
            .execute_raw(Statement::from_string(backend, sql.clone()))
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1, "{sql}");
    }
    let pruned = eventually(Duration::from_secs(10), || async {
        (count(&db).await == 0).then_some(())
    })
    .await;
    assert!(pruned.is_some(), "the sent delivery was not pruned");
    let _ = db.close().await;
}
