//! The dispute story as live clients see it: the buyer, the seller, an unrelated buyer, an
//! unrelated seller and an admin each hold a real Socket.IO connection while the request is
//! paid, and while the case goes from open to resolution; then admin broadcasts reach every
//! socket of every role.

use std::time::Duration;

use marketplace_tests::TestApp;
use marketplace_tests::socket::SocketClient;
use marketplace_tests::story::Party;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(600);

/// Asserts `event` arrives exactly once on this socket, and returns its (payload, meta).
async fn once(socket: &mut SocketClient, event: &str) -> (Value, Value) {
    let args = socket.expect(event, WAIT).await;
    assert_eq!(socket.count(event, QUIET).await, 0, "{event} arrived twice");
    let meta = args.get(1).cloned().unwrap_or(Value::Null);
    assert!(
        meta["id"].is_i64() && meta["at"].is_string(),
        "{event} meta: {meta}"
    );
    (args[0].clone(), meta)
}

/// Asserts no event whose name starts with one of `prefixes` reaches this socket.
async fn sees_none(socket: &mut SocketClient, prefixes: &[&str]) {
    let leaked: Vec<String> = socket
        .drain(QUIET)
        .await
        .into_iter()
        .map(|r| r.event)
        .filter(|e| prefixes.iter().any(|p| e.starts_with(p)))
        .collect();
    assert!(leaked.is_empty(), "leaked to an outsider: {leaked:?}");
}

/// Every socket of `sockets` asks to join the request's room; each is admitted or not as given.
async fn join_request_room(sockets: &[(&SocketClient, bool)], request_id: &str) {
    for (socket, ok) in sockets {
        let ack = socket.ack("join-request-room", json!(request_id)).await;
        assert_eq!(ack["ok"], *ok, "{ack}");
        if !ok {
            assert_eq!(
                ack["error"], "not_found",
                "tampering is answered like an unknown room"
            );
        }
    }
}

#[tokio::test]
async fn paying_is_seen_live_by_buyer_and_seller_and_outsiders_see_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let accepted = app.accepted_request("250.00").await;
    let (buyer, seller, request_id) = (&accepted.buyer, &accepted.seller, &accepted.request_id);
    let stranger = app.buyer().await;
    let other_seller = app.seller().await;

    let mut b = app.socket(buyer).await;
    let mut s = app.socket(seller).await;
    let a = app.socket(&admin).await;
    let mut o = app.socket(&stranger).await;
    let mut os = app.socket(&other_seller).await;

    // Paying: the buyer sees the invoice; completion reaches buyer and seller on their user
    // rooms, each once.
    let payment = app.create_payment(buyer, request_id).await;
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let (created, _) = once(&mut b, "payment:created").await;
    assert_eq!(created["id"], payment_id.as_str());
    assert!(created["payAddress"].is_string());
    app.post(
        &format!("/api/sandbox/payments/{payment_id}/simulate"),
        Some(&buyer.token),
        json!({ "status": "PAID" }),
    )
    .await
    .expect(200);
    let (status, _) = once(&mut b, "payment:status-updated").await;
    assert_eq!(status["status"], "completed");
    for socket in [&mut b, &mut s] {
        let (done, _) = once(socket, "payment:completed").await;
        assert_eq!(
            done,
            json!({ "paymentId": payment_id, "requestId": request_id })
        );
    }
    assert_eq!(app.request_status(&buyer.token, request_id).await, "paid");
    join_request_room(
        &[
            (&b, true),
            (&s, true),
            (&a, true),
            (&o, false),
            (&os, false),
        ],
        request_id,
    )
    .await;

    // The unrelated buyer and seller saw nothing of it.
    sees_none(&mut o, &["request:", "payment:", "payout:"]).await;
    sees_none(&mut os, &["request:", "payment:", "payout:"]).await;
}

#[tokio::test]
async fn a_dispute_is_seen_live_by_both_parties_and_admins_from_open_to_refund() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let accepted = app.accepted_request("250.00").await;
    let stranger = app.buyer().await;
    let other_seller = app.seller().await;

    let mut b = app.socket(&accepted.buyer).await;
    let mut s = app.socket(&accepted.seller).await;
    let mut a = app.socket(&admin).await;
    let mut o = app.socket(&stranger).await;
    let mut os = app.socket(&other_seller).await;
    join_request_room(
        &[
            (&b, true),
            (&s, true),
            (&a, true),
            (&o, false),
            (&os, false),
        ],
        &accepted.request_id,
    )
    .await;
    let paid = app.pay_in_sandbox(accepted).await;
    // The payment's events are checked by the test above; the parties' are set aside (the
    // outsiders keep theirs for the final check).
    b.expect("payment:completed", WAIT).await;
    s.expect("payment:completed", WAIT).await;
    for socket in [&mut b, &mut s, &mut a] {
        socket.drain(QUIET).await;
    }

    // Opened by the buyer: the request room and the admin room (the admin is in both: once).
    let d = app
        .dispute(paid, Party::Buyer, "The frame is cracked.")
        .await;
    for socket in [&mut b, &mut s, &mut a] {
        let (payload, _) = once(socket, "dispute:opened").await;
        assert_eq!(payload["id"], d.dispute_id.as_str());
        assert_eq!(payload["requestId"], d.request_id.as_str());
        assert_eq!(payload["status"], "open");
    }

    // Evidence from the seller reaches the same three.
    app.post(
        &format!("/api/disputes/{}/evidence", d.dispute_id),
        Some(&d.seller.token),
        json!({ "description": "Shipped intact", "attachmentUrl": "https://example.com/box.jpg" }),
    )
    .await
    .expect(201);
    for socket in [&mut b, &mut s, &mut a] {
        let (payload, _) = once(socket, "dispute:evidence-added").await;
        assert_eq!(payload["disputeId"], d.dispute_id.as_str());
        assert_eq!(
            payload["evidence"]["attachmentUrl"],
            "https://example.com/box.jpg"
        );
    }

    // Resolved with a refund: request room + both users + admin, one copy each.
    app.patch(
        "/api/users/me",
        Some(&d.buyer.token),
        json!({ "payoutAddress": "bc1qbuyer" }),
    )
    .await
    .expect(200);
    let r = app.resolve(d, "refund_buyer", "Damaged in transit").await;
    for socket in [&mut b, &mut s, &mut a] {
        let (payload, _) = once(socket, "dispute:resolved").await;
        assert_eq!(
            payload,
            json!({ "disputeId": r.dispute_id, "resolution": "refund_buyer" })
        );
    }
    // Status updates arrive in order: disputed (on opening), then refunded.
    let first = b.expect("request:status-updated", WAIT).await;
    assert_eq!(first[0]["status"], "disputed");
    let second = b.expect("request:status-updated", WAIT).await;
    assert_eq!(second[0]["status"], "refunded");
    assert!(second[1]["id"].as_i64() > first[1]["id"].as_i64());
    let payout = b.expect("payout:created", WAIT).await;
    assert_eq!(payout[0]["kind"], "refund");
    assert_eq!(payout[0]["destination"], "bc1qbuyer");

    // The unrelated buyer and seller saw nothing of the case.
    sees_none(&mut o, &["dispute:", "request:", "payment:", "payout:"]).await;
    sees_none(&mut os, &["dispute:", "request:", "payment:", "payout:"]).await;
}

#[tokio::test]
async fn announcements_and_maintenance_reach_every_socket_of_every_role() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let buyer = app.buyer().await;
    let seller = app.seller().await;
    let mut sockets = [
        app.socket(&admin).await,
        app.socket(&buyer).await,
        app.socket(&buyer).await,
        app.socket(&seller).await,
    ];

    let res = app
        .post(
            "/api/admin/announcements",
            Some(&buyer.token),
            json!({ "message": "not yours to say" }),
        )
        .await;
    assert_eq!(res.status, 403);
    app.post(
        "/api/admin/announcements",
        Some(&admin.token),
        json!({ "message": "Welcome" }),
    )
    .await
    .expect(202);
    let starts_at = "2026-12-01T02:00:00Z";
    app.post(
        "/api/admin/maintenance",
        Some(&admin.token),
        json!({ "message": "Upgrade", "startsAt": starts_at }),
    )
    .await
    .expect(202);
    for socket in sockets.iter_mut() {
        let (a, _) = once(socket, "system:announcement").await;
        assert_eq!(a, json!({ "message": "Welcome" }));
        let (m, _) = once(socket, "system:maintenance").await;
        assert_eq!(m["message"], "Upgrade");
        let at = chrono::DateTime::parse_from_rfc3339(m["startsAt"].as_str().unwrap()).unwrap();
        assert_eq!(at, chrono::DateTime::parse_from_rfc3339(starts_at).unwrap());
    }
}
