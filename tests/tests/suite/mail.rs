//! Email digests against a real SMTP server (aiosmtpd, tests/py/smtp_sink.py) and the real
//! app: one email for what fell due together, nothing for what was read in time or for a
//! connected user, exactly one email after a kill in the middle of sending, HTML escaping,
//! one-click unsubscribe (POST only, signed token), 451 retried, 550 → undeliverable, a muted
//! kind not mailed. `EMAIL_DIGEST_DELAY_SECS=2` throughout.

use std::collections::HashMap;
use std::time::Duration;

use marketplace_tests::smtp::{SinkScript, SinkTls, SmtpSink, part};
use marketplace_tests::{TestApp, TestUser, eventually};
use serde_json::{Value, json};

const APP_URL: &str = "https://app.example";
const DELAY_SECS: u64 = 2;

fn mail_env(env: &mut HashMap<String, String>, sink: &SmtpSink) {
    env.insert("SMTP_URL".into(), sink.url());
    env.insert(
        "MAIL_FROM".into(),
        "Marketplace <no-reply@marketplace.test>".into(),
    );
    env.insert("APP_URL".into(), APP_URL.into());
    env.insert("EMAIL_DIGEST_DELAY_SECS".into(), DELAY_SECS.to_string());
    env.insert("TIMER_LEASE_SECS".into(), "2".into());
}

async fn app_with(sink: &SmtpSink) -> TestApp {
    TestApp::spawn_with(|env| mail_env(env, sink)).await
}

/// Waits for the first email to `user` (up to 20 s).
async fn first_email(sink: &SmtpSink, user: &TestUser) -> Value {
    eventually(Duration::from_secs(20), || async {
        sink.messages_to(&user.email).into_iter().next()
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no email to {}; the sink saw {:?}",
            user.email,
            sink.events()
        )
    })
}

/// Longer than a digest takes to fall due and go out, for asserting that nothing comes.
async fn past_the_delay() {
    tokio::time::sleep(Duration::from_secs(DELAY_SECS + 4)).await;
}

async fn settings(app: &TestApp, user: &TestUser) -> Value {
    app.get("/api/users/me/notification-settings", Some(&user.token))
        .await
        .expect(200)
}

fn unsubscribe_path(email: &Value, app: &TestApp) -> String {
    let header = email["headers"]["List-Unsubscribe"]
        .as_str()
        .expect("a List-Unsubscribe header");
    let url = header
        .trim()
        .strip_prefix('<')
        .and_then(|h| h.strip_suffix('>'))
        .expect("<url>");
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} is under PUBLIC_URL {}", app.base))
        .to_owned()
}

#[tokio::test]
async fn notifications_that_fall_due_together_go_out_in_one_multipart_digest() {
    let sink = SmtpSink::start(SinkScript::default()).await;
    let app = app_with(&sink).await;
    // Sellers first (registering hashes a password, slow on a loaded machine), then the three
    // offers back to back: well within one delay of each other.
    let sellers = [app.seller().await, app.seller().await, app.seller().await];
    let open = app.open_request().await;
    for (seller, price) in sellers.iter().zip(["100.00", "110.00", "120.00"]) {
        app.make_offer(seller, &open.request_id, price).await;
    }
    let (buyer, request_id) = (open.buyer, open.request_id);

    let email = first_email(&sink, &buyer).await;
    past_the_delay().await;
    assert_eq!(
        sink.messages_to(&buyer.email).len(),
        1,
        "three notifications, one email"
    );
    for seller in &sellers {
        assert!(
            sink.messages_to(&seller.email).is_empty(),
            "the actor is not notified"
        );
    }
    assert_eq!(email["content_type"], "multipart/alternative");
    assert_eq!(
        email["headers"]["Subject"],
        "You have 3 unread notifications"
    );
    assert_eq!(
        email["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert!(
        unsubscribe_path(&email, &app).starts_with("/api/email/unsubscribe?token="),
        "{}",
        email["headers"]["List-Unsubscribe"]
    );
    assert!(
        email["headers"]["From"]
            .as_str()
            .unwrap_or_default()
            .contains("no-reply@marketplace.test")
    );
    let text = part(&email, "text/plain").expect("a text/plain part");
    // The HTML escapes `/` in attribute values too (`&#x2f;`, which a browser reads as `/`).
    let html = part(&email, "text/html")
        .expect("a text/html part")
        .replace("&#x2f;", "/");
    let link = format!("{APP_URL}/requests/{request_id}");
    for body in [text, html.as_str()] {
        assert_eq!(
            body.matches("New offer on your request").count(),
            3,
            "{body}"
        );
        assert_eq!(body.matches(&link).count(), 3, "{body}");
        assert!(body.contains("A seller offered 110.00 USD."), "{body}");
    }
}

#[tokio::test]
async fn a_notification_read_before_the_delay_is_never_mailed() {
    let sink = SmtpSink::start(SinkScript::default()).await;
    let app = app_with(&sink).await;
    let offered = app.offered_request("100.00").await;
    // The notification is made by a subscriber after the offer's answer: read it once it is there.
    eventually(Duration::from_secs(10), || async {
        let n = app
            .get(
                "/api/notifications/unread-count",
                Some(&offered.buyer.token),
            )
            .await
            .expect(200);
        (n["count"] == 1).then_some(())
    })
    .await
    .expect("the buyer is notified");
    let read = app
        .post(
            "/api/notifications/read-all",
            Some(&offered.buyer.token),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(read["updated"], 1);

    past_the_delay().await;
    assert!(sink.messages_to(&offered.buyer.email).is_empty());
    assert!(sink.messages().is_empty(), "{:?}", sink.events());
}

#[tokio::test]
async fn a_user_connected_at_the_due_time_is_not_mailed_for_those_notifications() {
    let sink = SmtpSink::start(SinkScript::default()).await;
    let app = app_with(&sink).await;
    let open = app.open_request().await;
    let socket = app.socket(&open.buyer).await;
    let request_id = open.request_id.clone();
    let buyer = open.buyer.clone();
    let _first = app.offer_on(open, "100.00").await;

    past_the_delay().await;
    assert!(
        sink.messages_to(&buyer.email).is_empty(),
        "connected at the due time: not mailed"
    );
    socket.close().await;
    // Wait until the server has seen the socket go.
    eventually(Duration::from_secs(10), || async {
        let p = app
            .get(
                &format!("/api/users/{}/presence", buyer.id),
                Some(&buyer.token),
            )
            .await
            .expect(200);
        (p["online"] == false).then_some(())
    })
    .await
    .expect("offline after closing the socket");
    let seller = app.seller().await;
    app.make_offer(&seller, &request_id, "90.00").await;

    let email = first_email(&sink, &buyer).await;
    let text = part(&email, "text/plain").expect("text");
    assert!(text.contains("90.00 USD"), "{text}");
    assert!(
        !text.contains("100.00 USD"),
        "what came due while connected is never mailed later: {text}"
    );
    past_the_delay().await;
    assert_eq!(sink.messages_to(&buyer.email).len(), 1);
}

#[tokio::test]
async fn a_digest_is_sent_exactly_once_when_the_server_is_killed_while_sending_it() {
    let sink = SmtpSink::start(SinkScript {
        hold_first: Some(Duration::from_secs(5)),
        ..Default::default()
    })
    .await;
    let mut app = app_with(&sink).await;
    let offered = app.offered_request("100.00").await;
    eventually(Duration::from_secs(20), || async {
        sink.events().iter().any(|e| e == "data-held").then_some(())
    })
    .await
    .expect("the digest is being sent");

    app.kill().await;
    let env = app.env.clone();
    let app = TestApp::start(env).await;

    let email = first_email(&sink, &offered.buyer).await;
    eventually(Duration::from_secs(10), || async {
        sink.events()
            .iter()
            .any(|e| e == "data-dropped")
            .then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the killed server's message was never accepted: {:?}",
            sink.events()
        )
    });
    past_the_delay().await;
    assert_eq!(
        sink.messages_to(&offered.buyer.email).len(),
        1,
        "exactly one email: {:?}",
        sink.events()
    );
    assert!(
        part(&email, "text/plain")
            .unwrap_or_default()
            .contains("100.00 USD")
    );
    drop(app);
}

#[tokio::test]
async fn what_users_typed_is_escaped_in_the_html_part() {
    let sink = SmtpSink::start(SinkScript::default()).await;
    let app = app_with(&sink).await;
    let chat = app.chat().await;
    app.post(
        "/api/notifications/read-all",
        Some(&chat.buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    app.send_message(
        &chat.seller,
        &chat.chat_id,
        "<script>alert('x')</script> & <b>bold</b>",
    )
    .await;

    let email = first_email(&sink, &chat.buyer).await;
    let html = part(&email, "text/html").expect("html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>bold</b>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&amp;"), "{html}");
    assert!(
        html.replace("&#x2f;", "/")
            .contains(&format!("{APP_URL}/chats/{}", chat.chat_id)),
        "{html}"
    );
    let text = part(&email, "text/plain").expect("text");
    assert!(
        text.contains("<script>alert('x')</script> & <b>bold</b>"),
        "{text}"
    );
}

#[tokio::test]
async fn unsubscribe_needs_the_one_click_post_and_refuses_an_altered_token() {
    let sink = SmtpSink::start(SinkScript::default()).await;
    let app = app_with(&sink).await;
    let offered = app.offered_request("100.00").await;
    let buyer = offered.buyer.clone();
    let email = first_email(&sink, &buyer).await;
    let path = unsubscribe_path(&email, &app);

    // A GET (a mail scanner, a click) only shows the page.
    let page = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("method=\"post\""), "{page}");
    assert!(page.contains("List-Unsubscribe"), "{page}");
    assert_eq!(settings(&app, &buyer).await["email"], true);

    // An altered token changes nothing.
    let mut altered: Vec<char> = path.chars().collect();
    let i = altered.len() - 10;
    altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let refused = app
        .send(
            app.http
                .post(app.url(&altered))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click"),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.code(), "invalid_unsubscribe_token");
    assert!(refused.content_type.starts_with("application/problem+json"));
    assert_eq!(settings(&app, &buyer).await["email"], true);

    // The one-click POST, no bearer.
    let done = app
        .http
        .post(app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(settings(&app, &buyer).await["email"], false);

    // No more email.
    let seller = app.seller().await;
    app.make_offer(&seller, &offered.request_id, "90.00").await;
    past_the_delay().await;
    assert_eq!(sink.messages_to(&buyer.email).len(), 1);
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_the_digest_goes_out_once() {
    let sink = SmtpSink::start(SinkScript {
        tempfail: 1,
        ..Default::default()
    })
    .await;
    let app = app_with(&sink).await;
    let offered = app.offered_request("100.00").await;

    let _email = first_email(&sink, &offered.buyer).await;
    let events = sink.events();
    assert_eq!(
        events.iter().filter(|e| *e == "tempfail").count(),
        1,
        "{events:?}"
    );
    past_the_delay().await;
    assert_eq!(sink.messages_to(&offered.buyer.email).len(), 1);
    assert_eq!(
        settings(&app, &offered.buyer).await["emailUndeliverable"],
        false
    );
}

#[tokio::test]
async fn a_permanent_refusal_marks_the_address_undeliverable_and_nothing_more_is_tried() {
    // The buyer's address is known only once registered: start the sink rejecting a fixed
    // address, and register the buyer with it.
    let rejected = format!("gone-{}@test.local", uuid::Uuid::now_v7().simple());
    let sink = SmtpSink::start(SinkScript {
        reject: vec![rejected.clone()],
        ..Default::default()
    })
    .await;
    let app = app_with(&sink).await;
    let buyer = app.register_as(&rejected, "buyer").await;
    let request_id = app.create_request(&buyer).await;
    let seller = app.seller().await;
    app.make_offer(&seller, &request_id, "100.00").await;

    eventually(Duration::from_secs(20), || async {
        let s = settings(&app, &buyer).await;
        (s["emailUndeliverable"] == true).then_some(())
    })
    .await
    .expect("the address is marked undeliverable");
    let other = app.seller().await;
    app.make_offer(&other, &request_id, "90.00").await;
    past_the_delay().await;
    past_the_delay().await;
    let events = sink.events();
    assert_eq!(
        events.iter().filter(|e| *e == "reject").count(),
        1,
        "never tried again: {events:?}"
    );
    assert!(sink.messages().is_empty());

    // Admins see the refused address.
    let admin = app.admin().await;
    let page = app
        .get("/api/admin/mail-failures", Some(&admin.token))
        .await
        .expect(200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["state"], "bounced");
    assert_eq!(items[0]["email"], rejected.as_str());
    assert_eq!(items[0]["userId"], buyer.id.as_str());
    assert!(
        items[0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("550")),
        "{page}"
    );
    app.get("/api/admin/mail-failures", Some(&buyer.token))
        .await
        .expect(403);
}

#[tokio::test]
async fn a_muted_kind_is_not_mailed_but_still_listed() {
    let sink = SmtpSink::start(SinkScript::default()).await;
    let app = app_with(&sink).await;
    let open = app.open_request().await;
    app.patch(
        "/api/users/me/notification-settings",
        Some(&open.buyer.token),
        json!({ "mutedKinds": ["request:offer-received"] }),
    )
    .await
    .expect(200);
    let buyer = open.buyer.clone();
    let offered = app.offer_on(open, "100.00").await;
    // An unmuted kind in the same window still goes out, alone.
    app.send_message(
        &offered.seller,
        &app.chat_id(&offered.seller, &offered.request_id).await,
        "hello",
    )
    .await;

    let email = first_email(&sink, &buyer).await;
    let text = part(&email, "text/plain").expect("text");
    assert!(text.contains("New chat message"), "{text}");
    assert!(
        !text.contains("New offer"),
        "the muted kind is not mailed: {text}"
    );
    let listed = app
        .get("/api/notifications", Some(&buyer.token))
        .await
        .expect(200);
    let kinds: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"request:offer-received"),
        "still listed: {kinds:?}"
    );
    past_the_delay().await;
    assert_eq!(sink.messages_to(&buyer.email).len(), 1);
}

/// Cluster (PostgreSQL + Redis): the buyer's only socket is on node B, and the digest job can
/// run only on node A (B has no `SMTP_URL`, so it never claims digest jobs, and A, started
/// first, holds the scheduler's lease): A must learn from the cluster's presence that the
/// buyer is connected elsewhere.
#[tokio::test]
async fn a_user_connected_on_another_node_is_not_mailed() {
    use marketplace_tests::cluster::{Cluster, postgres_or_skip, redis_url};
    if !postgres_or_skip("a_user_connected_on_another_node_is_not_mailed") {
        return;
    }
    let sink = SmtpSink::start(SinkScript::default()).await;
    let mut cluster = Cluster::start_with(1, &redis_url(), |env| mail_env(env, &sink)).await;
    let b = TestApp::start(cluster.env()).await;
    cluster.nodes.push(b);
    let (a, b) = (cluster.node(0), cluster.node(1));

    let open = a.open_request().await;
    let buyer = open.buyer.clone();
    let request_id = open.request_id.clone();
    let socket = b.socket(&buyer).await;
    eventually(Duration::from_secs(10), || async {
        let p = a
            .get(
                &format!("/api/users/{}/presence", buyer.id),
                Some(&buyer.token),
            )
            .await
            .expect(200);
        (p["online"] == true).then_some(())
    })
    .await
    .expect("node A sees the buyer online on node B");
    a.offer_on(open, "100.00").await;
    past_the_delay().await;
    assert!(
        sink.messages_to(&buyer.email).is_empty(),
        "connected on another node: not mailed ({:?})",
        sink.events()
    );

    socket.close().await;
    eventually(Duration::from_secs(15), || async {
        let p = a
            .get(
                &format!("/api/users/{}/presence", buyer.id),
                Some(&buyer.token),
            )
            .await
            .expect(200);
        (p["online"] == false).then_some(())
    })
    .await
    .expect("offline everywhere");
    let seller = a.seller().await;
    a.make_offer(&seller, &request_id, "90.00").await;
    let email = first_email(&sink, &buyer).await;
    let text = part(&email, "text/plain").expect("text");
    assert!(
        text.contains("90.00 USD") && !text.contains("100.00 USD"),
        "{text}"
    );
    cluster.stop().await;
}

/// A relay that speaks TLS (`tls`), requires AUTH, and whose certificate a private CA signed
/// (trusted through `SMTP_TLS_CA_FILE` when `trust` is set).
async fn tls_relay(tls: SinkTls) -> SmtpSink {
    SmtpSink::start(SinkScript {
        tls: Some(tls),
        auth: Some(("mailer".into(), "s3cret pass".into())),
        ..Default::default()
    })
    .await
}

async fn app_over_tls(sink: &SmtpSink, url: String, trust: bool) -> TestApp {
    let ca = sink.ca_file().display().to_string();
    TestApp::spawn_with(|env| {
        mail_env(env, sink);
        env.insert("SMTP_URL".into(), url);
        if trust {
            env.insert("SMTP_TLS_CA_FILE".into(), ca);
        }
    })
    .await
}

#[tokio::test]
async fn a_digest_goes_out_over_starttls_with_auth() {
    let sink = tls_relay(SinkTls::StartTls).await;
    let url = format!(
        "smtp://mailer:s3cret%20pass@localhost:{}?tls=required",
        sink.port
    );
    let app = app_over_tls(&sink, url, true).await;
    let offered = app.offered_request("100.00").await;

    let email = first_email(&sink, &offered.buyer).await;
    assert_eq!(email["tls"], true, "sent after STARTTLS");
    assert_eq!(email["login"], "mailer", "authenticated over TLS");
    assert!(part(&email, "text/plain").is_some());
}

#[tokio::test]
async fn a_digest_goes_out_over_implicit_tls_with_auth() {
    let sink = tls_relay(SinkTls::Implicit).await;
    let url = format!("smtps://mailer:s3cret%20pass@localhost:{}", sink.port);
    let app = app_over_tls(&sink, url, true).await;
    let offered = app.offered_request("100.00").await;

    let email = first_email(&sink, &offered.buyer).await;
    assert_eq!(email["tls"], true);
    assert_eq!(email["login"], "mailer");
}

#[tokio::test]
async fn a_relay_whose_certificate_is_not_trusted_gets_nothing_and_the_digest_waits() {
    let sink = tls_relay(SinkTls::StartTls).await;
    let url = format!(
        "smtp://mailer:s3cret%20pass@localhost:{}?tls=required",
        sink.port
    );
    // No SMTP_TLS_CA_FILE: the private CA is not trusted, so no credentials and no message
    // may cross; the failure is temporary (the operator can mend the configuration).
    let app = app_over_tls(&sink, url, false).await;
    let offered = app.offered_request("100.00").await;

    let admin = app.admin().await;
    let failing = eventually(Duration::from_secs(20), || async {
        let page = app
            .get("/api/admin/mail-failures", Some(&admin.token))
            .await
            .expect(200);
        page["items"].as_array().unwrap().first().cloned()
    })
    .await
    .expect("the failing digest is listed for admins");
    assert_eq!(failing["state"], "failing");
    assert_eq!(failing["email"], offered.buyer.email.as_str());
    let events = sink.events();
    assert!(
        !events
            .iter()
            .any(|e| e == "auth" || e == "rcpt" || e == "accepted"),
        "nothing crossed an untrusted connection: {events:?}"
    );
    assert!(sink.messages().is_empty());
    assert_eq!(
        settings(&app, &offered.buyer).await["emailUndeliverable"],
        false,
        "a TLS failure is not the recipient's"
    );
}
