//! Disputes with the sandbox provider: paying through the sandbox, opening a dispute,
//! evidence, listing, both resolutions with their payouts, every forbidden path, and the
//! admin system notices. Each test starts from its state in the story kit
//! (`marketplace_tests::story`).

use std::time::Duration;

use marketplace_tests::shkeeper::{StandIn, count_events, event_payloads};
use marketplace_tests::story::{OpenDispute, Party};
use marketplace_tests::{TestApp, eventually};
use serde_json::json;

const PAYOUT_WAIT: Duration = Duration::from_secs(15);

/// The holder of `token` adds evidence to the dispute; the answer.
async fn add_evidence(
    app: &TestApp,
    token: &str,
    dispute_id: &str,
    body: serde_json::Value,
) -> marketplace_tests::Resp {
    app.post(
        &format!("/api/disputes/{dispute_id}/evidence"),
        Some(token),
        body,
    )
    .await
}

// ---------------------------------------------------------------- paying in the sandbox

#[tokio::test]
async fn the_sandbox_offers_btc_and_invoices_at_a_sandbox_address() {
    let app = TestApp::spawn().await;
    let accepted = app.accepted_request("100.00").await;

    let cryptos = app
        .get("/api/payments/cryptos", Some(&accepted.buyer.token))
        .await
        .expect(200);
    assert!(
        cryptos
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "BTC")
    );
    let p = app
        .create_payment(&accepted.buyer, &accepted.request_id)
        .await;
    assert_eq!(p["cryptoAmount"], "0.002");
    assert!(
        p["payAddress"]
            .as_str()
            .unwrap()
            .starts_with("sandbox-btc-")
    );
}

#[tokio::test]
async fn only_the_payments_buyer_may_simulate_and_only_a_status_shkeeper_sends() {
    let app = TestApp::spawn().await;
    let accepted = app.accepted_request("100.00").await;
    let p = app
        .create_payment(&accepted.buyer, &accepted.request_id)
        .await;
    let id = p["id"].as_str().unwrap();

    // Only the payment's buyer (or an admin) may simulate (a seller never: 403); the status
    // must be one SHKeeper sends.
    let res = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&accepted.seller.token),
            json!({ "status": "PAID" }),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&accepted.buyer.token),
            json!({ "status": "DONE" }),
        )
        .await;
    assert_eq!(res.status, 422);
}

#[tokio::test]
async fn simulated_partial_then_paid_callbacks_go_through_the_webhook_and_pay_the_request() {
    let app = TestApp::spawn().await;
    let accepted = app.accepted_request("100.00").await;
    let buyer = &accepted.buyer;
    let p = app.create_payment(buyer, &accepted.request_id).await;
    let id = p["id"].as_str().unwrap();

    let partial = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&buyer.token),
            json!({ "status": "PARTIAL" }),
        )
        .await
        .expect(200);
    assert_eq!(partial["status"], "partially_paid");
    assert_eq!(partial["paidAmount"]["amount"], "50.00");
    let paid = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&buyer.token),
            json!({ "status": "PAID" }),
        )
        .await
        .expect(200);
    assert_eq!(paid["status"], "completed");
    assert_eq!(paid["paidAmount"]["amount"], "100.00");
    assert_eq!(
        app.request_status(&buyer.token, &accepted.request_id).await,
        "paid"
    );
    // The simulated callbacks went through the webhook path and are on record.
    let admin = app.admin().await;
    let hooks = app
        .get("/api/admin/webhooks?status=applied", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(hooks["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(hooks["items"][0]["auth"], "signature");
}

// ---------------------------------------------------------------- opening and evidence

#[tokio::test]
async fn opening_a_dispute_makes_the_request_disputed() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("100.00").await;

    assert_eq!(d.dispute["status"], "open");
    assert_eq!(d.dispute["requestId"], d.request_id.as_str());
    assert_eq!(d.dispute["openedBy"], d.buyer.id.as_str());
    assert!(d.dispute["resolution"].is_null() && d.dispute["resolvedAt"].is_null());
    assert_eq!(
        app.request_status(&d.buyer.token, &d.request_id).await,
        "disputed"
    );
    assert_eq!(count_events(&app, "dispute:opened").await, 1);
}

#[tokio::test]
async fn the_parties_and_admins_add_evidence_that_the_dispute_shows_in_order() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("100.00").await;
    let admin = app.admin().await;

    let ev = add_evidence(
        &app,
        &d.seller.token,
        &d.dispute_id,
        json!({ "description": "Tracking says delivered.", "attachmentUrl": "https://example.com/tracking.png" }),
    )
    .await
    .expect(201);
    assert_eq!(ev["authorId"], d.seller.id.as_str());
    assert_eq!(ev["attachmentUrl"], "https://example.com/tracking.png");
    add_evidence(
        &app,
        &admin.token,
        &d.dispute_id,
        json!({ "description": "Asked the carrier." }),
    )
    .await
    .expect(201);

    let full = app
        .get(
            &format!("/api/disputes/{}", d.dispute_id),
            Some(&d.buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(full["id"], d.dispute["id"]);
    assert_eq!(full["evidence"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        full["evidence"][0]["description"],
        "Tracking says delivered."
    );
    assert_eq!(count_events(&app, "dispute:evidence-added").await, 2);
}

#[tokio::test]
async fn evidence_with_a_script_link_or_a_blank_description_is_422() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("100.00").await;

    let res = add_evidence(
        &app,
        &d.buyer.token,
        &d.dispute_id,
        json!({ "description": "x", "attachmentUrl": "javascript:alert(1)" }),
    )
    .await;
    assert_eq!(res.status, 422);
    let res = add_evidence(
        &app,
        &d.buyer.token,
        &d.dispute_id,
        json!({ "description": "  " }),
    )
    .await;
    assert_eq!(res.status, 422);
    assert_eq!(count_events(&app, "dispute:evidence-added").await, 0);
}

#[tokio::test]
async fn admins_list_open_disputes_and_parties_list_their_own() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("100.00").await;
    let admin = app.admin().await;

    let open = app
        .get("/api/disputes?status=open", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(open["items"][0]["id"], d.dispute["id"]);
    let mine = app
        .get("/api/disputes", Some(&d.seller.token))
        .await
        .expect(200);
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
}

// ---------------------------------------------------------------- resolving

#[tokio::test]
async fn resolving_to_the_seller_completes_the_request_and_pays_the_seller_out() {
    let app = TestApp::spawn().await;
    let open = app.open_dispute("100.00").await;
    let r = app
        .resolve(
            open,
            "release_to_seller",
            "Delivery confirmed by the carrier.",
        )
        .await;

    assert_eq!(r.dispute["status"], "resolved");
    assert_eq!(r.dispute["resolution"], "release_to_seller");
    assert_eq!(r.dispute["note"], "Delivery confirmed by the carrier.");
    assert!(r.dispute["resolvedAt"].is_string());
    assert_eq!(
        app.request_status(&r.buyer.token, &r.request_id).await,
        "completed"
    );
    let payout = app
        .wait_payout(&r.seller.token, "completed", PAYOUT_WAIT)
        .await;
    assert_eq!(payout["kind"], "release");
    assert_eq!(payout["amount"], "0.002");
    assert_eq!(payout["recipientId"], r.seller.id.as_str());
    assert!(
        payout["txHash"]
            .as_str()
            .is_some_and(|h| h.starts_with("0x"))
    );
    assert_eq!(
        count_events(&app, "payout:created").await,
        1,
        "the subscriber found the payout already there"
    );
    assert_eq!(
        event_payloads(&app, "dispute:resolved").await,
        vec![json!({ "disputeId": r.dispute_id, "resolution": "release_to_seller" })]
    );
}

#[tokio::test]
async fn a_resolved_dispute_takes_no_more_evidence_and_no_second_resolution() {
    let app = TestApp::spawn().await;
    let r = app.resolved_dispute("100.00").await;
    app.wait_payout(&r.seller.token, "completed", PAYOUT_WAIT)
        .await;

    let res = add_evidence(
        &app,
        &r.buyer.token,
        &r.dispute_id,
        json!({ "description": "Late." }),
    )
    .await;
    assert_eq!(res.status, 409);
    let res = app
        .post(
            &format!("/api/disputes/{}/resolve", r.dispute_id),
            Some(&r.admin.token),
            json!({ "resolution": "refund_buyer" }),
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(count_events(&app, "payout:created").await, 1);
}

/// A seller's dispute on a paid request of 80.00 USD (sandbox invoice: 0.0016 BTC).
async fn sellers_dispute(app: &TestApp) -> OpenDispute {
    let paid = app.paid_request("80.00").await;
    let d = app
        .dispute(paid, Party::Seller, "The buyer says it never came.")
        .await;
    assert_eq!(d.dispute["openedBy"], d.seller.id.as_str());
    d
}

#[tokio::test]
async fn a_refund_without_the_buyers_payout_address_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let d = sellers_dispute(&app).await;
    let admin = app.admin().await;

    let res = app
        .post(
            &format!("/api/disputes/{}/resolve", d.dispute_id),
            Some(&admin.token),
            json!({ "resolution": "refund_buyer", "note": "Refund." }),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert_eq!(res.code(), "no_payout_address");
    // Nothing of the resolution happened.
    let still = app
        .get(
            &format!("/api/disputes/{}", d.dispute_id),
            Some(&d.buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(still["status"], "open");
    assert_eq!(
        app.request_status(&d.buyer.token, &d.request_id).await,
        "disputed"
    );
    assert_eq!(count_events(&app, "payout:created").await, 0);
    assert_eq!(count_events(&app, "dispute:resolved").await, 0);
}

#[tokio::test]
async fn a_refund_to_the_buyers_payout_address_refunds_the_request_and_the_payment() {
    let app = TestApp::spawn().await;
    let d = sellers_dispute(&app).await;
    app.patch(
        "/api/users/me",
        Some(&d.buyer.token),
        json!({ "payoutAddress": "bc1qbuyerrefund" }),
    )
    .await
    .expect(200);
    let r = app.resolve(d, "refund_buyer", "Refund.").await;

    assert_eq!(r.dispute["resolution"], "refund_buyer");
    assert_eq!(
        app.request_status(&r.buyer.token, &r.request_id).await,
        "refunded"
    );
    let payout = app
        .wait_payout(&r.buyer.token, "completed", PAYOUT_WAIT)
        .await;
    assert_eq!(payout["kind"], "refund");
    assert_eq!(payout["destination"], "bc1qbuyerrefund");
    assert_eq!(payout["amount"], "0.0016");
    let refunded = eventually(Duration::from_secs(5), || async {
        let p = app
            .get(
                &format!("/api/payments/{}", r.payment_id),
                Some(&r.buyer.token),
            )
            .await
            .expect(200);
        (p["status"] == "refunded").then_some(p)
    })
    .await;
    assert!(
        refunded.is_some(),
        "a completed refund marks the payment refunded"
    );
    let seller_payouts = app
        .get("/api/payouts", Some(&r.seller.token))
        .await
        .expect(200);
    assert_eq!(seller_payouts["items"], json!([]));
}

// ---------------------------------------------------------------- forbidden paths

#[tokio::test]
async fn only_the_parties_open_a_dispute_outsiders_get_404_admins_403_and_a_blank_reason_422() {
    let app = TestApp::spawn().await;
    let paid = app.paid_request("50.00").await;
    let outsider_buyer = app.buyer().await;
    let outsider_seller = app.seller().await;
    let admin = app.admin().await;
    let path = format!("/api/requests/{}/disputes", paid.request_id);
    let body = json!({ "reason": "Not as described." });

    // Outsiders cannot open one (the request is not theirs to see).
    for who in [&outsider_buyer, &outsider_seller] {
        assert_eq!(
            app.post(&path, Some(&who.token), body.clone()).await.status,
            404
        );
    }
    assert_eq!(app.post(&path, None, body.clone()).await.status, 401);
    // Admins see every request but settle disputes, they do not open them.
    assert_eq!(
        app.post(&path, Some(&admin.token), body.clone())
            .await
            .status,
        403
    );
    assert_eq!(
        app.post(&path, Some(&paid.buyer.token), json!({ "reason": "" }))
            .await
            .status,
        422
    );
    assert_eq!(count_events(&app, "dispute:opened").await, 0);
}

#[tokio::test]
async fn a_request_that_is_not_paid_cannot_be_disputed() {
    let app = TestApp::spawn().await;
    let unpaid = app.accepted_request("20.00").await;
    let res = app
        .post(
            &format!("/api/requests/{}/disputes", unpaid.request_id),
            Some(&unpaid.buyer.token),
            json!({ "reason": "Not as described." }),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
}

#[tokio::test]
async fn a_second_dispute_on_a_request_is_409_dispute_open() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("50.00").await;
    let res = app
        .post(
            &format!("/api/requests/{}/disputes", d.request_id),
            Some(&d.seller.token),
            json!({ "reason": "Not as described." }),
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(res.code(), "dispute_open");
}

#[tokio::test]
async fn outsiders_see_nothing_of_a_dispute() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("50.00").await;
    let outsider_buyer = app.buyer().await;
    let outsider_seller = app.seller().await;

    assert_eq!(
        app.get(
            &format!("/api/disputes/{}", d.dispute_id),
            Some(&outsider_buyer.token)
        )
        .await
        .status,
        404
    );
    let res = add_evidence(
        &app,
        &outsider_seller.token,
        &d.dispute_id,
        json!({ "description": "x" }),
    )
    .await;
    assert_eq!(res.status, 404);
    let theirs = app
        .get("/api/disputes", Some(&outsider_buyer.token))
        .await
        .expect(200);
    assert_eq!(theirs["items"], json!([]));
}

#[tokio::test]
async fn only_admins_resolve_with_a_known_resolution_and_an_existing_dispute() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("50.00").await;
    let admin = app.admin().await;

    for who in [&d.buyer, &d.seller] {
        let res = app
            .post(
                &format!("/api/disputes/{}/resolve", d.dispute_id),
                Some(&who.token),
                json!({ "resolution": "refund_buyer" }),
            )
            .await;
        assert_eq!(res.status, 403);
    }
    let res = app
        .post(
            &format!("/api/disputes/{}/resolve", d.dispute_id),
            Some(&admin.token),
            json!({ "resolution": "split" }),
        )
        .await;
    assert_eq!(res.status, 422);
    let res = app
        .post(
            &format!("/api/disputes/{}/resolve", uuid::Uuid::now_v7()),
            Some(&admin.token),
            json!({ "resolution": "refund_buyer" }),
        )
        .await;
    assert_eq!(res.status, 404);
    assert_eq!(
        app.get("/api/disputes?status=maybe", Some(&admin.token))
            .await
            .status,
        422
    );
    assert_eq!(count_events(&app, "dispute:resolved").await, 0);
}

#[tokio::test]
async fn two_disputes_opened_at_once_leave_one() {
    let app = TestApp::spawn().await;
    let paid = app.paid_request("50.00").await;
    let path = format!("/api/requests/{}/disputes", paid.request_id);
    let body = json!({ "reason": "Broken." });
    let (a, b) = tokio::join!(
        app.post(&path, Some(&paid.buyer.token), body.clone()),
        app.post(&path, Some(&paid.seller.token), body.clone())
    );
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![201, 409], "{} / {}", a.body, b.body);
    assert_eq!(count_events(&app, "dispute:opened").await, 1);
}

// ---------------------------------------------------------------- system notices

#[tokio::test]
async fn announcements_and_maintenance_are_202_for_admins_and_403_for_others() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let buyer = app.buyer().await;
    let seller = app.seller().await;

    let res = app
        .post(
            "/api/admin/announcements",
            Some(&admin.token),
            json!({ "message": "New categories are live." }),
        )
        .await;
    assert_eq!(res.status, 202);
    let res = app
        .post(
            "/api/admin/maintenance",
            Some(&admin.token),
            json!({ "message": "Database upgrade.", "startsAt": "2026-12-01T02:00:00Z" }),
        )
        .await;
    assert_eq!(res.status, 202);
    for who in [&buyer, &seller] {
        assert_eq!(
            app.post(
                "/api/admin/announcements",
                Some(&who.token),
                json!({ "message": "hi" })
            )
            .await
            .status,
            403
        );
        let res = app
            .post(
                "/api/admin/maintenance",
                Some(&who.token),
                json!({ "message": "x", "startsAt": "2026-12-01T02:00:00Z" }),
            )
            .await;
        assert_eq!(res.status, 403);
    }
    assert_eq!(
        app.post("/api/admin/announcements", None, json!({ "message": "hi" }))
            .await
            .status,
        401
    );
    assert_eq!(
        event_payloads(&app, "system:announcement").await,
        vec![json!({ "message": "New categories are live." })]
    );
    assert_eq!(
        event_payloads(&app, "system:maintenance").await,
        vec![json!({ "message": "Database upgrade.", "startsAt": "2026-12-01T02:00:00Z" })]
    );
}

#[tokio::test]
async fn a_blank_announcement_or_a_maintenance_without_a_time_is_422_and_emits_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    assert_eq!(
        app.post(
            "/api/admin/announcements",
            Some(&admin.token),
            json!({ "message": " " })
        )
        .await
        .status,
        422
    );
    let res = app
        .post(
            "/api/admin/maintenance",
            Some(&admin.token),
            json!({ "message": "x", "startsAt": "soon" }),
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(count_events(&app, "system:announcement").await, 0);
    assert_eq!(count_events(&app, "system:maintenance").await, 0);
}

#[tokio::test]
async fn the_sandbox_routes_exist_only_with_the_sandbox_provider() {
    let standin = StandIn::start().await;
    let app = TestApp::spawn_with(|env| standin.env(env)).await;
    let accepted = app.accepted_request("10.00").await;
    let p = app
        .create_payment(&accepted.buyer, &accepted.request_id)
        .await;
    let id = p["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&accepted.buyer.token),
            json!({ "status": "PAID" }),
        )
        .await;
    assert_eq!(res.status, 404);
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    assert!(
        doc["paths"]
            .get("/api/sandbox/payments/{id}/simulate")
            .is_none()
    );
    assert!(doc["paths"].get("/api/webhooks/shkeeper").is_some());
}
