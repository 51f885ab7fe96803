//! The 403/404 rule (docs/architecture.md, "403 or 404"): 403 when the caller's role may never do this
//! action, whatever the id (so it tells nothing about the object); 404 when the role may, but
//! the object is unknown, not the caller's, or not visible to them. One test per route that
//! used to answer 404 to a role that may never act there (or 403 to an owner check).

use marketplace_tests::{TestApp, TestUser};
use serde_json::{Value, json};

fn unknown() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// POSTs `body` to `path` as `who` and expects `status`: 403 `forbidden` (the role may never
/// do this) or 404 `not_found` (the object is unknown, not theirs, or not visible).
async fn answers(app: &TestApp, path: &str, who: &TestUser, body: Value, status: u16) {
    let r = app.post(path, Some(&who.token), body).await;
    let code = if status == 403 {
        "forbidden"
    } else {
        "not_found"
    };
    assert_eq!(
        (r.status, r.code()),
        (status, code),
        "{path} as {}: {}",
        who.email,
        r.body
    );
}

#[tokio::test]
async fn cancel_and_complete_are_403_for_sellers_and_admins_whatever_the_request() {
    let app = TestApp::spawn().await;
    let (buyer, other_buyer) = (app.buyer().await, app.buyer().await);
    let (seller, admin) = (app.seller().await, app.admin().await);
    let rid = app.create_request(&buyer).await;
    for action in ["cancel", "complete"] {
        let (unknown_one, real) = (
            format!("/api/requests/{}/{action}", unknown()),
            format!("/api/requests/{rid}/{action}"),
        );
        for who in [&seller, &admin] {
            answers(&app, &unknown_one, who, json!({}), 403).await;
            answers(&app, &real, who, json!({}), 403).await;
        }
        answers(&app, &real, &other_buyer, json!({}), 404).await;
    }
    assert_eq!(app.request_status(&buyer.token, &rid).await, "open");
}

#[tokio::test]
async fn accept_and_reject_are_403_for_sellers_whatever_the_offer() {
    let app = TestApp::spawn().await;
    let (buyer, other_buyer) = (app.buyer().await, app.buyer().await);
    let (seller, other_seller) = (app.seller().await, app.seller().await);
    let rid = app.create_request(&buyer).await;
    let oid = app.make_offer(&seller, &rid, "50.00").await;
    for action in ["accept", "reject"] {
        let (real, unknown_one) = (
            format!("/api/offers/{oid}/{action}"),
            format!("/api/offers/{}/{action}", unknown()),
        );
        // Another seller cannot see this offer: still 403, sellers never accept or reject.
        answers(&app, &real, &other_seller, json!({}), 403).await;
        answers(&app, &unknown_one, &seller, json!({}), 403).await;
        answers(&app, &real, &other_buyer, json!({}), 404).await;
    }
    assert_eq!(app.request_status(&buyer.token, &rid).await, "open");
}

#[tokio::test]
async fn withdraw_is_403_for_buyers_and_admins_whatever_the_offer() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let (other_buyer, admin) = (app.buyer().await, app.admin().await);
    let (seller, other_seller) = (app.seller().await, app.seller().await);
    let rid = app.create_request(&buyer).await;
    let oid = app.make_offer(&seller, &rid, "50.00").await;
    let real = format!("/api/offers/{oid}/withdraw");
    for who in [&other_buyer, &buyer, &admin] {
        answers(&app, &real, who, json!({}), 403).await;
    }
    let unknown_one = format!("/api/offers/{}/withdraw", unknown());
    answers(&app, &unknown_one, &other_buyer, json!({}), 403).await;
    answers(&app, &real, &other_seller, json!({}), 404).await;
}

#[tokio::test]
async fn negotiating_is_403_for_admins_whatever_the_offer() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let other_seller = app.seller().await;
    let body = json!({ "message": "admins do not haggle" });
    let counter = format!("/api/offers/{}/counter", unknown());
    answers(&app, &counter, &admin, body.clone(), 403).await;
    let counter = format!("/api/offers/{}/counter", unknown());
    answers(&app, &counter, &other_seller, body, 404).await;
}

#[tokio::test]
async fn opening_a_dispute_is_403_for_admins_whatever_the_request() {
    let app = TestApp::spawn().await;
    let (admin, buyer) = (app.admin().await, app.buyer().await);
    let body = json!({ "reason": "admins resolve, they do not open" });
    let open = format!("/api/requests/{}/disputes", unknown());
    answers(&app, &open, &admin, body.clone(), 403).await;
    let open = format!("/api/requests/{}/disputes", unknown());
    answers(&app, &open, &buyer, body, 404).await;
}

#[tokio::test]
async fn writing_in_a_chat_is_403_for_admins_whatever_the_chat() {
    let app = TestApp::spawn().await;
    let (admin, buyer) = (app.admin().await, app.buyer().await);
    let chat = unknown();
    let (send, read) = (
        format!("/api/chats/{chat}/messages"),
        format!("/api/chats/{chat}/read"),
    );
    let message = json!({ "content": "hi" });
    answers(&app, &send, &admin, message.clone(), 403).await;
    answers(&app, &read, &admin, json!({ "messageId": unknown() }), 403).await;
    answers(&app, &send, &buyer, message, 404).await;
}

#[tokio::test]
async fn simulating_a_payment_is_403_for_sellers_even_its_own() {
    let app = TestApp::spawn().await;
    let accepted = app.accepted_request("50.00").await;
    let (buyer, rid) = (&accepted.buyer, &accepted.request_id);
    let seller = &accepted.seller;
    let other_buyer = app.buyer().await;
    let payment = app.create_payment(buyer, rid).await;
    let simulate = format!(
        "/api/sandbox/payments/{}/simulate",
        payment["id"].as_str().unwrap()
    );
    let paid = json!({ "status": "PAID" });
    answers(&app, &simulate, seller, paid.clone(), 403).await;
    answers(&app, &simulate, &other_buyer, paid, 404).await;
    assert_eq!(app.request_status(&buyer.token, rid).await, "accepted");
}
