//! The admin console (`/admin`) in a real browser: headless Debian Chromium driven by
//! `playwright-core` from `tests/js/browser/console.test.mjs`, against the real server.
//! An admin logs in, sees a dispute opened over REST appear without a reload, then its
//! evidence, resolves it from the page (after seeing `no_payout_address` spelled out), and the
//! request and payout move (checked over REST here too); a buyer gets an error and no data;
//! a payment completed after its request was cancelled is refunded from the "money that needs
//! attention" list (after `no_payout_address` is shown); a delivered request shows when it
//! completes by itself and leaves the list when its buyer completes it; the page asks no other
//! origin for anything and throws nothing.

use std::path::Path;

use marketplace_tests::js::{ensure_packages, node_test};
use marketplace_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test]
async fn an_admin_follows_and_resolves_a_dispute_live_in_a_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get update && apt-get install -y chromium` (.ci/run does this)"
    );
    ensure_packages(&["playwright-core"]).await;
    let app = TestApp::spawn().await;
    let paid = app.paid_request("250.00").await;
    let (buyer, seller, request_id) = (&paid.buyer, &paid.seller, &paid.request_id);
    // Money that needs a person: paid after the buyer cancelled, and no payout address yet.
    let late = app.paid_after_cancel("80.00").await;
    let (late_buyer, late_payment) = (&late.buyer, &late.payment_id);
    // Delivered from the page's test, then completed by its buyer.
    let to_deliver = app.paid_request("60.00").await;

    // Evidence files the buyer adds from the page's test: a photo (shown as its thumbnail)
    // and a PDF (a link).
    let photo = app.upload_photo(buyer).await;
    let pdf = app
        .upload(
            buyer,
            "receipt.pdf",
            Some("application/pdf"),
            b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        )
        .await
        .expect(201);
    let (photo_id, pdf_id) = (
        photo["id"].as_str().expect("id").to_owned(),
        pdf["id"].as_str().expect("id").to_owned(),
    );
    let screenshot = std::env::var("CONSOLE_SCREENSHOT").unwrap_or_default();
    let mut env = vec![
        ("PHOTO_ID", photo_id.as_str()),
        ("PDF_ID", pdf_id.as_str()),
        ("BASE_URL", app.base.as_str()),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BUYER_EMAIL", buyer.email.as_str()),
        ("BUYER_PASSWORD", buyer.password.as_str()),
        ("BUYER_TOKEN", buyer.token.as_str()),
        ("SELLER_TOKEN", seller.token.as_str()),
        ("REQUEST_ID", request_id.as_str()),
        ("OTHER_BUYER_TOKEN", late_buyer.token.as_str()),
        ("LATE_PAYMENT_ID", late_payment.as_str()),
        ("DELIVER_REQUEST_ID", to_deliver.request_id.as_str()),
        ("DELIVER_SELLER_TOKEN", to_deliver.seller.token.as_str()),
        ("DELIVER_BUYER_TOKEN", to_deliver.buyer.token.as_str()),
    ];
    if !screenshot.is_empty() {
        env.push(("SCREENSHOT", screenshot.as_str()));
    }
    node_test("browser/console.test.mjs", &env, 5).await;

    // What the page did, seen over REST from here as well.
    assert_eq!(
        app.request_status(&buyer.token, request_id).await,
        "completed"
    );
    let payout = app
        .latest_payout(&seller.token)
        .await
        .expect("the release payout to the seller");
    assert_eq!(payout["kind"], "release");
    assert_eq!(payout["requestId"], request_id.as_str());
    let disputes = app
        .get("/api/disputes?status=open", Some(&app.admin().await.token))
        .await
        .expect(200);
    assert_eq!(disputes["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn the_console_page_and_its_assets_come_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/app.js", "text/javascript"),
        ("/admin/api.js", "text/javascript"),
        ("/admin/dom.js", "text/javascript"),
        ("/admin/console.css", "text/css"),
        ("/admin/vendor/socket.io.esm.min.js", "text/javascript"),
        ("/admin/vendor/socket.io-client.LICENSE", "text/plain"),
    ] {
        let res = app.http.get(app.url(path)).send().await.expect("get");
        assert_eq!(res.status(), 200, "{path}");
        let header = |h: &str| {
            res.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    let html = app
        .http
        .get(app.url("/admin"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    // No inline handlers or scripts, nothing from another origin.
    assert!(!html.contains(" onclick="), "inline handler");
    assert!(!html.contains("<script>"), "inline script");
    assert!(!html.contains("src=\"http"), "another origin");
    assert!(!html.contains("href=\"http"), "another origin");
    let vendored = app
        .http
        .get(app.url("/admin/vendor/socket.io.esm.min.js"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        vendored.starts_with("/*!\n * Socket.IO v4.8.4"),
        "vendored client version"
    );
}

#[tokio::test]
async fn an_admin_sees_mail_and_push_failures_in_the_console() {
    use marketplace_tests::smtp::{SinkScript, SmtpSink};
    use marketplace_tests::webpush::PushService;

    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing");
    ensure_packages(&["playwright-core"]).await;
    let bounced = format!("gone-{}@test.local", uuid::Uuid::now_v7().simple());
    let sink = SmtpSink::start(SinkScript {
        reject: vec![bounced.clone()],
        ..Default::default()
    })
    .await;
    let service = PushService::start().await;
    let app = TestApp::spawn_with(|env| {
        env.insert("SMTP_URL".into(), sink.url());
        env.insert(
            "MAIL_FROM".into(),
            "Marketplace <no-reply@marketplace.test>".into(),
        );
        env.insert("EMAIL_DIGEST_DELAY_SECS".into(), "1".into());
        env.insert("TIMER_LEASE_SECS".into(), "2".into());
        env.insert("PUSH_ALLOW_HTTP_ENDPOINTS".into(), "true".into());
    })
    .await;
    // A buyer whose address the relay refuses for good, with a browser whose push service
    // refuses the push: one offer fails both ways.
    let buyer = app.register_as(&bounced, "buyer").await;
    let key = app.get("/api/push/public-key", None).await.expect(200);
    let sub = service
        .subscribe(key["publicKey"].as_str().expect("publicKey"))
        .await;
    app.post("/api/push/subscriptions", Some(&buyer.token), sub.body())
        .await
        .expect(201);
    service.refuse_next(&sub, 5);
    let request_id = app.create_request(&buyer).await;
    let seller = app.seller().await;
    app.make_offer(&seller, &request_id, "100.00").await;

    let origin = sub
        .endpoint
        .split('/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    node_test(
        "browser/delivery-failures.test.mjs",
        &[
            ("BASE_URL", app.base.as_str()),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BOUNCED_EMAIL", bounced.as_str()),
            ("PUSH_USER_ID", buyer.id.as_str()),
            ("PUSH_ORIGIN", origin.as_str()),
        ],
        1,
    )
    .await;
}
