//! Payments against a stand-in SHKeeper: the invoice request, every way a callback can fail
//! authentication, PARTIAL then PAID, duplicates (also concurrent) applied once, late and
//! unknown callbacks, provider errors and timeouts on create, and payouts — by polling, by
//! callback, both racing, failing, and across a crash mid-submission.

use std::time::Duration;

use marketplace_tests::shkeeper::{
    API_KEY, InvoiceMode, PAYOUT_PASSWORD, PAYOUT_USER, StandIn, TaskMode, app_with,
    completed_request, count_events, event_payloads, now_secs, paid_request, payment_callback,
    post_raw, post_signed, post_signed_raw, sign,
};
use marketplace_tests::{TestApp, eventually};
use serde_json::{Value, json};

const HOOK: &str = "/api/webhooks/shkeeper";
const PAYOUT_HOOK: &str = "/api/webhooks/shkeeper/payout";

/// A named way to call a callback: (name, body, headers).
type Case<'a> = (&'a str, String, Vec<(&'a str, String)>);

async fn payment(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/payments/{id}"), Some(token))
        .await
        .expect(200)
}

async fn webhook_outcomes(app: &TestApp) -> Vec<String> {
    let admin = app.admin().await;
    let page = app
        .get("/api/admin/webhooks?limit=100", Some(&admin.token))
        .await
        .expect(200);
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn creating_a_payment_sends_the_contracts_invoice_request() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let a = app.accepted_request("125.50").await;

    let p = app.create_payment(&a.buyer, &a.request_id).await;
    assert_eq!(p["status"], "pending");
    assert_eq!(p["requestId"], a.request_id.as_str());
    assert_eq!(p["offerId"], a.offer_id.as_str());
    assert_eq!(p["sellerId"], a.seller.id.as_str());
    assert_eq!(
        p["amount"],
        json!({ "amount": "125.50", "currency": "USD" })
    );
    assert_eq!(
        p["paidAmount"],
        json!({ "amount": "0.00", "currency": "USD" })
    );
    assert_eq!(p["cryptoAmount"], "0.00251");
    assert_eq!(p["exchangeRate"], "50000");
    assert_eq!(p["payAddress"], "bc1qstandin1");
    assert_eq!(p["providerPaymentId"], "1");

    let calls = standin.calls("POST", "/payment_request");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/v1/BTC/payment_request");
    assert_eq!(
        calls[0]
            .headers
            .get("x-shkeeper-api-key")
            .map(String::as_str),
        Some(API_KEY)
    );
    assert_eq!(
        calls[0].body,
        json!({
            "external_id": p["id"],
            "fiat": "USD",
            "amount": "125.50",
            "callback_url": "https://market.example/api/webhooks/shkeeper",
        })
    );
}

#[tokio::test]
async fn asking_again_while_a_payment_is_pending_answers_it_without_a_new_invoice() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let a = app.accepted_request("125.50").await;
    let p = app.create_payment(&a.buyer, &a.request_id).await;

    let again = app
        .post(
            "/api/payments",
            Some(&a.buyer.token),
            json!({ "requestId": a.request_id, "crypto": "BTC" }),
        )
        .await
        .expect(200);
    assert_eq!(again["id"], p["id"]);
    assert_eq!(standin.calls("POST", "/payment_request").len(), 1);
    assert_eq!(count_events(&app, "payment:created").await, 1);
}

#[tokio::test]
async fn a_payment_is_visible_to_its_buyer_seller_and_admins_and_404_to_anyone_else() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let a = app.accepted_request("125.50").await;
    let p = app.create_payment(&a.buyer, &a.request_id).await;
    let (seller, request_id) = (&a.seller, &a.request_id);

    let id = p["id"].as_str().unwrap();
    payment(&app, &a.buyer.token, id).await;
    payment(&app, &seller.token, id).await;
    payment(&app, &app.admin().await.token, id).await;
    let outsider = app.buyer().await;
    assert_eq!(
        app.get(&format!("/api/payments/{id}"), Some(&outsider.token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(
            &format!("/api/payments?requestId={request_id}"),
            Some(&outsider.token)
        )
        .await
        .status,
        404
    );
    let listed = app
        .get(
            &format!("/api/payments?requestId={request_id}"),
            Some(&seller.token),
        )
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["id"], p["id"]);
}

#[tokio::test]
async fn only_the_requests_buyer_pays_and_only_in_a_well_formed_crypto() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let a = app.accepted_request("125.50").await;
    let outsider = app.buyer().await;
    let pay_as = |token: String, crypto: &'static str| {
        let body = json!({ "requestId": a.request_id, "crypto": crypto });
        let app = &app;
        async move { app.post("/api/payments", Some(&token), body).await }
    };

    // Sellers are refused by role; another buyer does not see the request.
    assert_eq!(pay_as(a.seller.token.clone(), "BTC").await.status, 403);
    assert_eq!(pay_as(outsider.token.clone(), "BTC").await.status, 404);
    assert_eq!(pay_as(a.buyer.token.clone(), "B T C").await.status, 422);
    assert!(standin.calls("POST", "/payment_request").is_empty());
    assert_eq!(count_events(&app, "payment:created").await, 0);
}

#[tokio::test]
async fn the_crypto_list_comes_from_the_provider() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let buyer = app.buyer().await;
    let cryptos = app
        .get("/api/payments/cryptos", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(
        cryptos[0],
        json!({ "name": "BTC", "displayName": "Bitcoin" })
    );
}

#[tokio::test]
async fn a_request_that_is_not_accepted_cannot_be_paid() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let open = app.open_request().await;
    let res = app
        .post(
            "/api/payments",
            Some(&open.buyer.token),
            json!({ "requestId": open.request_id, "crypto": "BTC" }),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(standin.calls("POST", "/payment_request").is_empty());
}

#[tokio::test]
async fn a_provider_error_is_502_with_its_message_and_leaves_nothing_behind() {
    let standin = StandIn::start().await;
    standin.script(|s| s.invoice = InvoiceMode::Error("BTC payment gateway is unavailable".into()));
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("10.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let res = app
        .post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await;
    assert_eq!(res.status, 502, "{}", res.body);
    assert_eq!(res.code(), "provider_error");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("BTC payment gateway is unavailable")
    );
    let listed = app
        .get(
            &format!("/api/payments?requestId={request_id}"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(listed["items"], json!([]));
    assert_eq!(count_events(&app, "payment:created").await, 0);

    // Once the provider recovers, paying works.
    standin.script(|s| s.invoice = InvoiceMode::Success);
    app.create_payment(buyer, request_id).await;
}

#[tokio::test]
async fn a_slow_provider_is_503_and_leaves_nothing_behind() {
    let standin = StandIn::start().await;
    standin.script(|s| s.invoice = InvoiceMode::Slow(Duration::from_secs(12)));
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("10.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let started = std::time::Instant::now();
    let res = app
        .post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(res.code(), "provider_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "gave up after {:?}",
        started.elapsed()
    );
    let listed = app
        .get(
            &format!("/api/payments?requestId={request_id}"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(listed["items"], json!([]));
    assert_eq!(count_events(&app, "payment:created").await, 0);
}

#[tokio::test]
async fn an_unreachable_provider_is_503() {
    let mut standin = StandIn::start().await;
    standin.base = "http://127.0.0.1:9".into();
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("10.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let res = app
        .post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(res.code(), "provider_unavailable");
}

#[tokio::test]
async fn two_concurrent_creates_leave_one_payment() {
    let standin = StandIn::start().await;
    standin.script(|s| s.invoice = InvoiceMode::Slow(Duration::from_millis(300)));
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("10.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let body = json!({ "requestId": request_id, "crypto": "BTC" });
    let (a, b) = tokio::join!(
        app.post("/api/payments", Some(&buyer.token), body.clone()),
        app.post("/api/payments", Some(&buyer.token), body.clone())
    );
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![200, 201], "{} / {}", a.body, b.body);
    assert_eq!(a.body["id"], b.body["id"]);
    let listed = app
        .get(
            &format!("/api/payments?requestId={request_id}"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(count_events(&app, "payment:created").await, 1);
}

#[tokio::test]
async fn callbacks_that_fail_authentication_are_401_and_change_nothing() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("100.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let p = app.create_payment(buyer, request_id).await;
    let id = p["id"].as_str().unwrap();
    let body =
        serde_json::to_string(&payment_callback(id, "PAID", "100.00", "0.002", "tx-1")).unwrap();
    let now = now_secs();
    let good = sign(API_KEY, now, body.as_bytes());
    let altered = body.replace("100.00", "999.00");
    let cases: Vec<Case> = vec![
        (
            "bad signature",
            body.clone(),
            vec![
                ("X-Shkeeper-Timestamp", now.to_string()),
                (
                    "X-Shkeeper-Signature",
                    sign("wrong-key", now, body.as_bytes()),
                ),
            ],
        ),
        (
            "garbage signature",
            body.clone(),
            vec![
                ("X-Shkeeper-Timestamp", now.to_string()),
                ("X-Shkeeper-Signature", "zz".into()),
            ],
        ),
        (
            "stale timestamp",
            body.clone(),
            vec![
                ("X-Shkeeper-Timestamp", (now - 301).to_string()),
                (
                    "X-Shkeeper-Signature",
                    sign(API_KEY, now - 301, body.as_bytes()),
                ),
            ],
        ),
        (
            "future timestamp",
            body.clone(),
            vec![
                ("X-Shkeeper-Timestamp", (now + 301).to_string()),
                (
                    "X-Shkeeper-Signature",
                    sign(API_KEY, now + 301, body.as_bytes()),
                ),
            ],
        ),
        (
            "timestamp not the signed one",
            body.clone(),
            vec![
                ("X-Shkeeper-Timestamp", (now - 1).to_string()),
                ("X-Shkeeper-Signature", good.clone()),
            ],
        ),
        ("missing headers", body.clone(), vec![]),
        (
            "missing timestamp",
            body.clone(),
            vec![("X-Shkeeper-Signature", good.clone())],
        ),
        (
            "missing signature",
            body.clone(),
            vec![("X-Shkeeper-Timestamp", now.to_string())],
        ),
        (
            "legacy header not allowed",
            body.clone(),
            vec![("X-Shkeeper-Api-Key", API_KEY.to_owned())],
        ),
        (
            "body altered after signing",
            altered,
            vec![
                ("X-Shkeeper-Timestamp", now.to_string()),
                ("X-Shkeeper-Signature", good.clone()),
            ],
        ),
    ];
    for (name, body, headers) in cases {
        let res = post_raw(&app, HOOK, &body, &headers).await;
        assert_eq!(res.status, 401, "{name}: {}", res.body);
        assert_eq!(res.content_type, "application/problem+json", "{name}");
        let res = post_raw(&app, PAYOUT_HOOK, &body, &headers).await;
        assert_eq!(res.status, 401, "{name} (payout callback)");
    }
    let p = payment(&app, &buyer.token, id).await;
    assert_eq!(p["status"], "pending");
    assert_eq!(
        app.request_status(&buyer.token, request_id).await,
        "accepted"
    );
    assert!(
        webhook_outcomes(&app).await.is_empty(),
        "nothing is stored for unauthenticated callbacks"
    );

    // The correctly signed one goes through.
    post_raw(
        &app,
        HOOK,
        &body,
        &[
            ("X-Shkeeper-Timestamp", now.to_string()),
            ("X-Shkeeper-Signature", good),
        ],
    )
    .await
    .expect(202);
    assert_eq!(payment(&app, &buyer.token, id).await["status"], "completed");
}

#[tokio::test]
async fn the_legacy_api_key_header_is_accepted_only_when_allowed() {
    let standin = StandIn::start().await;
    let app = TestApp::spawn_with(|env| {
        standin.env(env);
        env.insert("SHKEEPER_ALLOW_LEGACY_API_KEY".into(), "true".into());
    })
    .await;
    let accepted = app.accepted_request("100.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let p = app.create_payment(buyer, request_id).await;
    let id = p["id"].as_str().unwrap();
    let body =
        serde_json::to_string(&payment_callback(id, "PARTIAL", "40.00", "0.001", "tx-1")).unwrap();
    let res = post_raw(
        &app,
        HOOK,
        &body,
        &[("X-Shkeeper-Api-Key", "not-the-key".into())],
    )
    .await;
    assert_eq!(res.status, 401);
    post_raw(&app, HOOK, &body, &[("X-Shkeeper-Api-Key", API_KEY.into())])
        .await
        .expect(202);
    assert_eq!(
        payment(&app, &buyer.token, id).await["status"],
        "partially_paid"
    );
}

#[tokio::test]
async fn partial_then_paid_moves_payment_and_request_and_a_late_partial_changes_no_status() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("100.00").await;
    let (buyer, seller, request_id) = (&accepted.buyer, &accepted.seller, &accepted.request_id);
    let p = app.create_payment(buyer, request_id).await;
    let id = p["id"].as_str().unwrap();

    let res = post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PARTIAL", "40.00", "0.0008", "tx-a"),
    )
    .await;
    assert_eq!(res.expect(202)["outcome"], "applied");
    let now = payment(&app, &buyer.token, id).await;
    assert_eq!(now["status"], "partially_paid");
    assert_eq!(
        now["paidAmount"],
        json!({ "amount": "40.00", "currency": "USD" })
    );
    assert_eq!(
        app.request_status(&buyer.token, request_id).await,
        "accepted"
    );
    // Still open: asking to pay again answers it.
    let again = app
        .post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await;
    assert_eq!(again.expect(200)["id"], p["id"]);

    post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PAID", "100.00", "0.002", "tx-b"),
    )
    .await
    .expect(202);
    let now = payment(&app, &seller.token, id).await;
    assert_eq!(now["status"], "completed");
    assert_eq!(now["paidAmount"]["amount"], "100.00");
    assert_eq!(app.request_status(&buyer.token, request_id).await, "paid");

    // A PARTIAL arriving late (another transaction) never moves the status back.
    let res = post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PARTIAL", "100.00", "0.002", "tx-late"),
    )
    .await;
    assert_eq!(res.expect(202)["outcome"], "applied");
    let now = payment(&app, &buyer.token, id).await;
    assert_eq!(now["status"], "completed");
    assert_eq!(app.request_status(&buyer.token, request_id).await, "paid");

    // An OVERPAID later raises paidAmount but the status stays.
    post_signed(
        &app,
        HOOK,
        &payment_callback(id, "OVERPAID", "120.00", "0.0024", "tx-c"),
    )
    .await
    .expect(202);
    let now = payment(&app, &buyer.token, id).await;
    assert_eq!(now["status"], "completed");
    assert_eq!(now["paidAmount"]["amount"], "120.00");

    let names = marketplace_tests::shkeeper::event_names(&app).await;
    let updates = names
        .iter()
        .filter(|n| *n == "payment:status-updated")
        .count();
    assert_eq!(
        updates, 2,
        "pending→partially_paid and partially_paid→completed: {names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "payment:completed").count(),
        1
    );
    let outcomes = webhook_outcomes(&app).await;
    assert_eq!(outcomes, vec!["applied"; 4]);
}

#[tokio::test]
async fn a_new_payment_of_a_paid_request_is_refused() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let paid = paid_request(&app, "100.00", "0.002", "tx-paid").await;
    let res = app
        .post(
            "/api/payments",
            Some(&paid.buyer.token),
            json!({ "requestId": paid.request_id, "crypto": "BTC" }),
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(standin.calls("POST", "/payment_request").len(), 1);
}

#[tokio::test]
async fn duplicate_callbacks_even_concurrent_ones_are_applied_once() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("100.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let p = app.create_payment(buyer, request_id).await;
    let id = p["id"].as_str().unwrap();
    let cb = payment_callback(id, "PAID", "100.00", "0.002", "tx-dup");

    let sends = (0..6).map(|_| post_signed(&app, HOOK, &cb));
    let results = futures::future::join_all(sends).await;
    for r in &results {
        assert_eq!(r.status, 202, "{}", r.body);
    }
    post_signed(&app, HOOK, &cb).await.expect(202);

    assert_eq!(payment(&app, &buyer.token, id).await["status"], "completed");
    assert_eq!(app.request_status(&buyer.token, request_id).await, "paid");
    assert_eq!(count_events(&app, "payment:completed").await, 1);
    assert_eq!(count_events(&app, "payment:status-updated").await, 1);
    let outcomes = webhook_outcomes(&app).await;
    assert_eq!(outcomes.len(), 7, "every valid callback is stored");
    assert_eq!(outcomes.iter().filter(|o| *o == "applied").count(), 1);
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 6);
    let admin = app.admin().await;
    let dups = app
        .get("/api/admin/webhooks?status=duplicate", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(dups["items"].as_array().map(Vec::len), Some(6));
    assert_eq!(dups["items"][0]["txid"], "tx-dup");
    assert_eq!(
        app.get("/api/admin/webhooks", Some(&buyer.token))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn callbacks_for_unknown_ids_are_kept_as_unmatched() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;

    let res = post_signed(
        &app,
        HOOK,
        &payment_callback("order-that-never-was", "PAID", "1", "1", "tx-x"),
    )
    .await;
    assert_eq!(res.expect(202)["outcome"], "unmatched");
    let res = post_signed(
        &app,
        HOOK,
        &payment_callback(&uuid::Uuid::now_v7().to_string(), "PAID", "1", "1", "tx-y"),
    )
    .await;
    assert_eq!(res.expect(202)["outcome"], "unmatched");

    let admin = app.admin().await;
    let unmatched = app
        .get("/api/admin/webhooks?status=unmatched", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(unmatched["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(unmatched["items"][1]["externalId"], "order-that-never-was");
    assert_eq!(unmatched["items"][1]["body"]["status"], "PAID");
    assert_eq!(
        app.get("/api/admin/webhooks?status=weird", Some(&admin.token))
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn a_mempool_notice_is_applied_and_changes_no_status() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let a = app.accepted_request("100.00").await;
    let p = app.create_payment(&a.buyer, &a.request_id).await;
    let id = p["id"].as_str().unwrap();

    let notice = json!({ "status": "unconfirmed", "external_id": id, "crypto": "BTC", "addr": "bc1qstandin1", "txid": "tx-mempool", "amount": "0.002" });
    post_signed(&app, HOOK, &notice).await.expect(202);
    assert_eq!(payment(&app, &a.buyer.token, id).await["status"], "pending");
    let admin = app.admin().await;
    let applied = app
        .get("/api/admin/webhooks?status=applied", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(applied["items"][0]["providerStatus"], "unconfirmed");
}

#[tokio::test]
async fn a_signed_callback_that_is_not_json_is_a_400_problem_and_recorded_rejected() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;

    for path in [HOOK, PAYOUT_HOOK] {
        let res = post_signed_raw(&app, path, "this is not json").await;
        assert_eq!(res.status, 400, "{path}");
        assert!(
            res.content_type.starts_with("application/problem+json")
                && res.body["status"] == 400
                && res.body["code"].is_string(),
            "{path}: {res:?}"
        );
    }
    let admin = app.admin().await;
    let rejected = app
        .get("/api/admin/webhooks?status=rejected", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(rejected["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(webhook_outcomes(&app).await, vec!["rejected"; 2]);
}

#[tokio::test]
async fn completing_a_paid_request_pays_the_seller_by_polling_less_the_platform_fee() {
    let standin = StandIn::start().await;
    let app = TestApp::spawn_with(|env| {
        standin.env(env);
        env.insert("PLATFORM_FEE_PERCENT".into(), "10".into());
        env.insert("SHKEEPER_PAYOUT_FEE".into(), "7".into());
    })
    .await;
    let c = completed_request(&app, "100.00", "0.002", "tx-paid").await;
    let (buyer, seller) = (&c.buyer, &c.seller);

    let done = app
        .wait_payout(&seller.token, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(done["kind"], "release");
    assert_eq!(done["amount"], "0.0018");
    assert_eq!(done["crypto"], "BTC");
    assert_eq!(done["paymentId"], c.payment_id.as_str());
    assert_eq!(done["recipientId"], seller.id.as_str());
    let payout_id = done["id"].as_str().unwrap();
    assert_eq!(done["txHash"], format!("txid-{payout_id}"));
    assert!(
        done["providerTaskId"]
            .as_str()
            .is_some_and(|t| t.starts_with("task-"))
    );

    let calls = standin.calls("POST", "/payout");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/v1/BTC/payout");
    let me = app
        .get("/api/users/me", Some(&seller.token))
        .await
        .expect(200);
    assert_eq!(
        calls[0].body,
        json!({
            "amount": "0.0018",
            "destination": me["payoutAddress"],
            "fee": "7",
            "external_id": payout_id,
            "callback_url": "https://market.example/api/webhooks/shkeeper/payout",
        })
    );
    let basic = calls[0]
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    // HTTP Basic with SHKEEPER_PAYOUT_USER:SHKEEPER_PAYOUT_PASSWORD, for the payout and its task.
    assert_eq!(
        (PAYOUT_USER, PAYOUT_PASSWORD),
        ("payout-bot", "payout-secret")
    );
    let expected = "Basic cGF5b3V0LWJvdDpwYXlvdXQtc2VjcmV0";
    assert_eq!(basic, expected);
    let tasks = standin.calls("GET", "/task/");
    assert!(!tasks.is_empty());
    assert!(
        tasks
            .iter()
            .all(|t| t.headers.get("authorization").map(String::as_str) == Some(expected))
    );

    assert_eq!(count_events(&app, "payout:created").await, 1);
    assert_eq!(count_events(&app, "payout:completed").await, 1);
    // The recipient and admins see it; the buyer does not.
    app.get(&format!("/api/payouts/{payout_id}"), Some(&seller.token))
        .await
        .expect(200);
    app.get(
        &format!("/api/payouts/{payout_id}"),
        Some(&app.admin().await.token),
    )
    .await
    .expect(200);
    assert_eq!(
        app.get(&format!("/api/payouts/{payout_id}"), Some(&buyer.token))
            .await
            .status,
        404
    );
    assert!(app.latest_payout(&buyer.token).await.is_none());
}

#[tokio::test]
async fn the_payout_callback_can_finish_a_payout_and_the_later_poll_changes_nothing() {
    let standin = StandIn::start().await;
    standin.script(|s| s.task = TaskMode::Pending);
    let app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    let processing = app
        .wait_payout(&seller.token, "processing", Duration::from_secs(15))
        .await;
    let payout_id = processing["id"].as_str().unwrap();

    let cb = json!({ "payout_id": 77, "external_id": payout_id, "tx_hash": "0xcallbackhash", "status": "SUCCESS" });
    let res = post_signed(&app, PAYOUT_HOOK, &cb).await;
    assert_eq!(res.expect(202)["outcome"], "applied");
    let done = app.latest_payout(&seller.token).await.unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["txHash"], "0xcallbackhash");

    // The task now succeeds with another txid: polling comes second and changes nothing.
    standin.script(|s| s.task = TaskMode::Success);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = app.latest_payout(&seller.token).await.unwrap();
    assert_eq!(still["txHash"], "0xcallbackhash");
    post_signed(&app, PAYOUT_HOOK, &cb).await.expect(202);
    assert_eq!(count_events(&app, "payout:completed").await, 1);
}

#[tokio::test]
async fn polling_and_the_payout_callback_racing_complete_the_payout_once() {
    let standin = StandIn::start().await;
    standin.script(|s| s.task = TaskMode::Pending);
    let app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    let processing = app
        .wait_payout(&seller.token, "processing", Duration::from_secs(15))
        .await;
    let payout_id = processing["id"].as_str().unwrap().to_owned();

    standin.script(|s| s.task = TaskMode::Success);
    let cb = json!({ "payout_id": 1, "external_id": payout_id, "tx_hash": format!("txid-{payout_id}"), "status": "SUCCESS" });
    let sends = (0..4).map(|_| post_signed(&app, PAYOUT_HOOK, &cb));
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.status, 202);
    }
    let done = app
        .wait_payout(&seller.token, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(done["txHash"], format!("txid-{payout_id}"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count_events(&app, "payout:completed").await, 1);
}

#[tokio::test]
async fn a_failed_payout_task_marks_it_failed_with_the_reason() {
    let standin = StandIn::start().await;
    standin.script(|s| s.task = TaskMode::Failure("insufficient funds".into()));
    let app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    let failed = app
        .wait_payout(&seller.token, "failed", Duration::from_secs(15))
        .await;
    assert!(failed["txHash"].is_null());
    let payloads = event_payloads(&app, "payout:failed").await;
    assert_eq!(payloads.len(), 1);
    let payload = &payloads[0];
    assert_eq!(payload["reason"], "insufficient funds");
    assert_eq!(payload["payoutId"], failed["id"]);
}

#[tokio::test]
async fn a_payout_item_with_status_error_fails_the_payout() {
    let standin = StandIn::start().await;
    standin.script(|s| s.task = TaskMode::ItemError("bad destination".into()));
    let app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    app.wait_payout(&seller.token, "failed", Duration::from_secs(15))
        .await;
    assert_eq!(count_events(&app, "payout:completed").await, 0);
}

#[tokio::test]
async fn a_crash_between_the_payout_call_and_its_answer_does_not_pay_twice() {
    let standin = StandIn::start().await;
    standin.script(|s| s.payout_delay = Duration::from_secs(30));
    let mut app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    eventually(Duration::from_secs(10), || async {
        (!standin.calls("POST", "/payout").is_empty()).then_some(())
    })
    .await
    .expect("the payout was submitted");

    // Crash while the provider has not answered, then start again on the same database.
    let env = app.env.clone();
    app.kill().await;
    drop(app);
    standin.script(|s| s.payout_delay = Duration::ZERO);
    let app = TestApp::start(env).await;

    let done = app
        .wait_payout(&seller.token, "completed", Duration::from_secs(40))
        .await;
    let payout_id = done["id"].as_str().unwrap();
    assert_eq!(done["txHash"], format!("txid-{payout_id}"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = standin.calls("POST", "/payout");
    assert_eq!(
        posts.len(),
        1,
        "exactly one payout submission per external_id"
    );
    assert_eq!(posts[0].body["external_id"], payout_id);
    let lookups = standin.calls("GET", "/payout/status");
    assert!(
        lookups
            .iter()
            .any(|r| r.query.get("external_id").map(String::as_str) == Some(payout_id))
    );
    assert_eq!(count_events(&app, "payout:completed").await, 1);
}

#[tokio::test]
async fn a_payout_the_provider_never_received_is_resubmitted_after_a_look_up() {
    let standin = StandIn::start().await;
    // The first submission is refused at the door (unreachable), the look-up then finds
    // nothing, so it is submitted again, once.
    let mut app = app_with(&standin).await;
    let paid = paid_request(&app, "100.00", "0.002", "tx-paid").await;
    let env = app.env.clone();
    app.kill().await;
    drop(app);
    let mut env2 = env.clone();
    env2.insert("SHKEEPER_URL".into(), "http://127.0.0.1:9".into());
    let app = TestApp::start(env2).await;
    let seller = app.complete(paid).await.seller;
    app.wait_payout(&seller.token, "pending", Duration::from_secs(15))
        .await;
    let db = app.db().await;
    eventually(Duration::from_secs(10), || async {
        use sea_orm::{ConnectionTrait, Statement};
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT submit_attempts FROM payouts",
            ))
            .await
            .ok()??;
        let n: i32 = row.try_get_by_index(0).ok()?;
        (n >= 1).then_some(())
    })
    .await
    .expect("a submission was attempted");
    let _ = db.close().await;
    let mut app = app;
    app.kill().await;
    drop(app);
    let app = TestApp::start(env).await;
    let done = app
        .wait_payout(&seller.token, "completed", Duration::from_secs(40))
        .await;
    assert_eq!(standin.calls("POST", "/payout").len(), 1);
    assert!(
        !standin.calls("GET", "/payout/status").is_empty(),
        "looked up before resubmitting"
    );
    assert_eq!(done["status"], "completed");
}

#[tokio::test]
async fn a_payout_the_provider_refuses_is_failed_with_its_message() {
    let standin = StandIn::start().await;
    standin.script(|s| s.payout_error = Some("Not enough funds to pay".into()));
    let app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    let failed = app
        .wait_payout(&seller.token, "failed", Duration::from_secs(15))
        .await;
    let payloads = event_payloads(&app, "payout:failed").await;
    assert_eq!(
        payloads,
        vec![json!({ "payoutId": failed["id"], "reason": "Not enough funds to pay" })]
    );
    assert_eq!(standin.calls("POST", "/payout").len(), 1);
}

#[tokio::test]
async fn a_failed_payout_callback_fails_the_payout_and_unknown_payouts_are_unmatched() {
    let standin = StandIn::start().await;
    standin.script(|s| s.task = TaskMode::Pending);
    let app = app_with(&standin).await;
    let seller = completed_request(&app, "100.00", "0.002", "tx-paid")
        .await
        .seller;
    let processing = app
        .wait_payout(&seller.token, "processing", Duration::from_secs(15))
        .await;
    let cb = json!({ "payout_id": 5, "external_id": processing["id"], "status": "FAIL", "message": "rejected by the node" });
    assert_eq!(
        post_signed(&app, PAYOUT_HOOK, &cb).await.expect(202)["outcome"],
        "applied"
    );
    let failed = app.latest_payout(&seller.token).await.unwrap();
    assert_eq!(failed["status"], "failed");
    let cb = json!({ "payout_id": 6, "external_id": uuid::Uuid::now_v7().to_string(), "tx_hash": "x", "status": "SUCCESS" });
    assert_eq!(
        post_signed(&app, PAYOUT_HOOK, &cb).await.expect(202)["outcome"],
        "unmatched"
    );
}
