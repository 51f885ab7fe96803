//! A stored value the server cannot read (a corrupted status, role or amount, written past
//! every rule with raw SQL) is an error the API reports as a 500 problem, never a silent
//! default: not `open`, not `withdrawn`, not a buyer, not zero.

use marketplace_tests::{Resp, TestApp};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::json;

/// Overwrites one column of the row with this id, as a broken tool or a bad manual fix would.
async fn corrupt(app: &TestApp, table: &str, column: &str, id: &str, value: &str) {
    let db = app.db().await;
    let update = Query::update()
        .table(Alias::new(table))
        .value(Alias::new(column), value)
        .and_where(Expr::col(Alias::new("id")).eq(uuid::Uuid::parse_str(id).unwrap()))
        .to_owned();
    let res = db.execute(&update).await.expect("corrupt the row");
    assert_eq!(res.rows_affected(), 1, "{table} {id} not found");
    let _ = db.close().await;
}

/// A generic 500 problem document that does not echo what was stored.
#[track_caller]
fn assert_unreadable(r: &Resp, stored: &str) {
    assert_eq!(r.status, 500, "body: {}", r.body);
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{}",
        r.content_type
    );
    assert_eq!(r.code(), "internal");
    assert!(!r.body.to_string().contains(stored), "leaks: {}", r.body);
}

#[tokio::test]
async fn a_corrupted_request_status_is_an_error_not_open() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let seller = app.seller().await;
    let request_id = app.create_request(&buyer).await;
    corrupt(&app, "purchase_requests", "status", &request_id, "shipped").await;

    let one = app
        .get(&format!("/api/requests/{request_id}"), Some(&buyer.token))
        .await;
    assert_unreadable(&one, "shipped");
    assert_unreadable(
        &app.get("/api/requests", Some(&buyer.token)).await,
        "shipped",
    );
    // Read as `open` it would be offered to every seller.
    let offer = app
        .post(
            &format!("/api/requests/{request_id}/offers"),
            Some(&seller.token),
            json!({ "price": { "amount": "10.00", "currency": "USD" }, "message": "hi" }),
        )
        .await;
    assert_unreadable(&offer, "shipped");
}

#[tokio::test]
async fn a_corrupted_offer_price_is_an_error_not_zero() {
    let app = TestApp::spawn().await;
    let offered = app.offered_request("120.00").await;
    let (buyer, request_id, offer_id) = (&offered.buyer, &offered.request_id, &offered.offer_id);
    corrupt(&app, "offers", "price_amount", offer_id, "twelve").await;

    let list = app
        .get(
            &format!("/api/requests/{request_id}/offers"),
            Some(&buyer.token),
        )
        .await;
    assert_unreadable(&list, "twelve");
    let accept = app
        .post(
            &format!("/api/offers/{offer_id}/accept"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_unreadable(&accept, "twelve");
    assert_eq!(app.request_status(&buyer.token, request_id).await, "open");
}

#[tokio::test]
async fn a_corrupted_offer_status_is_an_error_not_withdrawn() {
    let app = TestApp::spawn().await;
    let offered = app.offered_request("120.00").await;
    let (buyer, seller) = (&offered.buyer, &offered.seller);
    let (request_id, offer_id) = (&offered.request_id, &offered.offer_id);
    corrupt(&app, "offers", "status", offer_id, "lost").await;

    let list = app
        .get(
            &format!("/api/requests/{request_id}/offers"),
            Some(&seller.token),
        )
        .await;
    assert_unreadable(&list, "lost");
    let accept = app
        .post(
            &format!("/api/offers/{offer_id}/accept"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_unreadable(&accept, "lost");
}

#[tokio::test]
async fn a_corrupted_role_is_an_error_not_a_buyer() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    corrupt(&app, "users", "role", &seller.id, "superuser").await;

    assert_unreadable(
        &app.get("/api/users/me", Some(&seller.token)).await,
        "superuser",
    );
}

#[tokio::test]
async fn a_corrupted_payment_amount_is_an_error_not_zero() {
    let app = TestApp::spawn().await;
    let accepted = app.accepted_request("120.00").await;
    let (buyer, request_id) = (&accepted.buyer, &accepted.request_id);
    let payment = app.create_payment(buyer, request_id).await;
    let payment_id = payment["id"].as_str().unwrap();
    corrupt(&app, "payments", "paid_amount", payment_id, "lots").await;

    let one = app
        .get(&format!("/api/payments/{payment_id}"), Some(&buyer.token))
        .await;
    assert_unreadable(&one, "lots");
    let list = app
        .get(
            &format!("/api/payments?requestId={request_id}"),
            Some(&buyer.token),
        )
        .await;
    assert_unreadable(&list, "lots");
}
