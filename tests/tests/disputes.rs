//! Disputes with the sandbox provider: the whole story (pay, simulate, dispute, evidence,
//! resolve, payout), every forbidden path, both resolutions with their payouts, and the admin
//! system notices.

use std::time::Duration;

use marketplace_tests::shkeeper::{
    StandIn, accepted_request, count_events, event_payloads, paid_request,
};
use marketplace_tests::{TestApp, TestUser, eventually};
use serde_json::{Value, json};

async fn open_dispute(app: &TestApp, user: &TestUser, request_id: &str) -> Value {
    app.post(
        &format!("/api/requests/{request_id}/disputes"),
        Some(&user.token),
        json!({ "reason": "The bike never arrived." }),
    )
    .await
    .expect(201)
}

#[tokio::test]
async fn the_sandbox_story_pay_simulate_dispute_resolve_to_the_seller_and_pay_out() {
    let app = TestApp::spawn().await;
    let (buyer, seller, request_id, _) = accepted_request(&app, "100.00").await;

    let cryptos = app
        .get("/api/payments/cryptos", Some(&buyer.token))
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
        .post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await
        .expect(201);
    assert_eq!(p["cryptoAmount"], "0.002");
    assert!(
        p["payAddress"]
            .as_str()
            .unwrap()
            .starts_with("sandbox-btc-")
    );
    let id = p["id"].as_str().unwrap();

    // Only the payment's buyer (or an admin) may simulate (a seller never: 403); the status
    // must be one SHKeeper sends.
    let res = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&seller.token),
            json!({ "status": "PAID" }),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&buyer.token),
            json!({ "status": "DONE" }),
        )
        .await;
    assert_eq!(res.status, 422);

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
    assert_eq!(app.request_status(&buyer.token, &request_id).await, "paid");
    // The simulated callbacks went through the webhook path and are on record.
    let admin = app.admin().await;
    let hooks = app
        .get("/api/admin/webhooks?status=applied", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(hooks["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(hooks["items"][0]["auth"], "signature");

    let d = open_dispute(&app, &buyer, &request_id).await;
    assert_eq!(d["status"], "open");
    assert_eq!(d["requestId"], request_id.as_str());
    assert_eq!(d["openedBy"], buyer.id.as_str());
    assert!(d["resolution"].is_null() && d["resolvedAt"].is_null());
    assert_eq!(
        app.request_status(&buyer.token, &request_id).await,
        "disputed"
    );
    let dispute_id = d["id"].as_str().unwrap();

    let ev = app
        .post(
            &format!("/api/disputes/{dispute_id}/evidence"),
            Some(&seller.token),
            json!({ "description": "Tracking says delivered.", "attachmentUrl": "https://example.com/tracking.png" }),
        )
        .await
        .expect(201);
    assert_eq!(ev["authorId"], seller.id.as_str());
    assert_eq!(ev["attachmentUrl"], "https://example.com/tracking.png");
    app.post(
        &format!("/api/disputes/{dispute_id}/evidence"),
        Some(&admin.token),
        json!({ "description": "Asked the carrier." }),
    )
    .await
    .expect(201);
    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/evidence"),
            Some(&buyer.token),
            json!({ "description": "x", "attachmentUrl": "javascript:alert(1)" }),
        )
        .await;
    assert_eq!(res.status, 422);
    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/evidence"),
            Some(&buyer.token),
            json!({ "description": "  " }),
        )
        .await;
    assert_eq!(res.status, 422);

    let full = app
        .get(&format!("/api/disputes/{dispute_id}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(full["id"], d["id"]);
    assert_eq!(full["evidence"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        full["evidence"][0]["description"],
        "Tracking says delivered."
    );

    let open = app
        .get("/api/disputes?status=open", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(open["items"][0]["id"], d["id"]);
    let mine = app
        .get("/api/disputes", Some(&seller.token))
        .await
        .expect(200);
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));

    let resolved = app
        .post(
            &format!("/api/disputes/{dispute_id}/resolve"),
            Some(&admin.token),
            json!({ "resolution": "release_to_seller", "note": "Delivery confirmed by the carrier." }),
        )
        .await
        .expect(200);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution"], "release_to_seller");
    assert_eq!(resolved["note"], "Delivery confirmed by the carrier.");
    assert!(resolved["resolvedAt"].is_string());
    assert_eq!(
        app.request_status(&buyer.token, &request_id).await,
        "completed"
    );

    let payout = app
        .wait_payout(&seller.token, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(payout["kind"], "release");
    assert_eq!(payout["amount"], "0.002");
    assert_eq!(payout["recipientId"], seller.id.as_str());
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
    assert_eq!(count_events(&app, "dispute:opened").await, 1);
    assert_eq!(count_events(&app, "dispute:evidence-added").await, 2);
    let resolved_events = event_payloads(&app, "dispute:resolved").await;
    assert_eq!(
        resolved_events,
        vec![json!({ "disputeId": dispute_id, "resolution": "release_to_seller" })]
    );

    // Nothing more happens to a resolved dispute.
    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/evidence"),
            Some(&buyer.token),
            json!({ "description": "Late." }),
        )
        .await;
    assert_eq!(res.status, 409);
    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/resolve"),
            Some(&admin.token),
            json!({ "resolution": "refund_buyer" }),
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(count_events(&app, "payout:created").await, 1);
}

#[tokio::test]
async fn a_refund_needs_the_buyers_payout_address_and_then_refunds_the_payment() {
    let app = TestApp::spawn().await;
    let (buyer, seller, request_id, payment) = paid_request(&app, "80.00").await;
    let d = open_dispute(&app, &seller, &request_id).await;
    assert_eq!(d["openedBy"], seller.id.as_str());
    let dispute_id = d["id"].as_str().unwrap();
    let admin = app.admin().await;

    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/resolve"),
            Some(&admin.token),
            json!({ "resolution": "refund_buyer", "note": "Refund." }),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert_eq!(res.code(), "no_payout_address");
    // Nothing of the resolution happened.
    let still = app
        .get(&format!("/api/disputes/{dispute_id}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(still["status"], "open");
    assert_eq!(
        app.request_status(&buyer.token, &request_id).await,
        "disputed"
    );
    assert_eq!(count_events(&app, "payout:created").await, 0);
    assert_eq!(count_events(&app, "dispute:resolved").await, 0);

    app.patch(
        "/api/users/me",
        Some(&buyer.token),
        json!({ "payoutAddress": "bc1qbuyerrefund" }),
    )
    .await
    .expect(200);
    let resolved = app
        .post(
            &format!("/api/disputes/{dispute_id}/resolve"),
            Some(&admin.token),
            json!({ "resolution": "refund_buyer", "note": "Refund." }),
        )
        .await
        .expect(200);
    assert_eq!(resolved["resolution"], "refund_buyer");
    assert_eq!(
        app.request_status(&buyer.token, &request_id).await,
        "refunded"
    );
    let payout = app
        .wait_payout(&buyer.token, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(payout["kind"], "refund");
    assert_eq!(payout["destination"], "bc1qbuyerrefund");
    assert_eq!(payout["amount"], "0.0016");
    let pid = payment["id"].as_str().unwrap();
    let refunded = eventually(Duration::from_secs(5), || async {
        let p = app
            .get(&format!("/api/payments/{pid}"), Some(&buyer.token))
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
        .get("/api/payouts", Some(&seller.token))
        .await
        .expect(200);
    assert_eq!(seller_payouts["items"], json!([]));
}

#[tokio::test]
async fn forbidden_dispute_paths_answer_404_403_409_and_422() {
    let app = TestApp::spawn().await;
    let (buyer, seller, request_id, _) = paid_request(&app, "50.00").await;
    let outsider_buyer = app.buyer().await;
    let outsider_seller = app.seller().await;
    let admin = app.admin().await;
    let path = format!("/api/requests/{request_id}/disputes");
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
        app.post(&path, Some(&buyer.token), json!({ "reason": "" }))
            .await
            .status,
        422
    );

    // A request that is not paid cannot be disputed.
    let (b2, _, unpaid, _) = accepted_request(&app, "20.00").await;
    let res = app
        .post(
            &format!("/api/requests/{unpaid}/disputes"),
            Some(&b2.token),
            body.clone(),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);

    let d = open_dispute(&app, &buyer, &request_id).await;
    let dispute_id = d["id"].as_str().unwrap();
    // One open dispute per request.
    let res = app.post(&path, Some(&seller.token), body.clone()).await;
    assert_eq!(res.status, 409);
    assert_eq!(res.code(), "dispute_open");

    // Outsiders see nothing of it.
    assert_eq!(
        app.get(
            &format!("/api/disputes/{dispute_id}"),
            Some(&outsider_buyer.token)
        )
        .await
        .status,
        404
    );
    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/evidence"),
            Some(&outsider_seller.token),
            json!({ "description": "x" }),
        )
        .await;
    assert_eq!(res.status, 404);
    let theirs = app
        .get("/api/disputes", Some(&outsider_buyer.token))
        .await
        .expect(200);
    assert_eq!(theirs["items"], json!([]));

    // Only admins resolve.
    for who in [&buyer, &seller] {
        let res = app
            .post(
                &format!("/api/disputes/{dispute_id}/resolve"),
                Some(&who.token),
                json!({ "resolution": "refund_buyer" }),
            )
            .await;
        assert_eq!(res.status, 403);
    }
    let res = app
        .post(
            &format!("/api/disputes/{dispute_id}/resolve"),
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
    let (buyer, seller, request_id, _) = paid_request(&app, "50.00").await;
    let path = format!("/api/requests/{request_id}/disputes");
    let body = json!({ "reason": "Broken." });
    let (a, b) = tokio::join!(
        app.post(&path, Some(&buyer.token), body.clone()),
        app.post(&path, Some(&seller.token), body.clone())
    );
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![201, 409], "{} / {}", a.body, b.body);
    assert_eq!(count_events(&app, "dispute:opened").await, 1);
}

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
async fn the_sandbox_routes_exist_only_with_the_sandbox_provider() {
    let standin = StandIn::start().await;
    let app = TestApp::spawn_with(|env| standin.env(env)).await;
    let (buyer, _, request_id, _) = accepted_request(&app, "10.00").await;
    let p = app
        .post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await
        .expect(201);
    let id = p["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/api/sandbox/payments/{id}/simulate"),
            Some(&buyer.token),
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
