//! Notifications: made from events for the people concerned (never the actor), once per
//! event even when it is handled again; listing, unread filter, read and read-all.

use std::time::Duration;

use marketplace_tests::{TestApp, TestUser, eventually};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

/// The user's notifications (first page, up to 100).
async fn notifications(app: &TestApp, user: &TestUser, query: &str) -> Vec<Value> {
    let page = app
        .get(
            &format!("/api/notifications?limit=100{query}"),
            Some(&user.token),
        )
        .await
        .expect(200);
    page["items"].as_array().expect("items").clone()
}

/// Waits until the user has exactly `n` notifications.
async fn wait_for(app: &TestApp, user: &TestUser, n: usize) -> Vec<Value> {
    let found = eventually(Duration::from_secs(10), || async {
        let items = notifications(app, user, "").await;
        (items.len() >= n).then_some(items)
    })
    .await
    .unwrap_or_else(|| panic!("{} did not get {n} notifications", user.role));
    assert_eq!(found.len(), n, "{found:?}");
    found
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .expect("a row");
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Waits until the `notifications` subscriber has handled every event in the log.
async fn subscriber_caught_up(app: &TestApp) {
    let db = app.db().await;
    let done = eventually(Duration::from_secs(10), || async {
        let latest = scalar(&db, "SELECT COALESCE(MAX(id), 0) FROM events").await;
        let cursor =
            scalar(&db, "SELECT COALESCE(MAX(last_event_id), 0) FROM subscriber_cursors WHERE name = 'notifications'").await;
        (cursor >= latest).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "the notifications subscriber did not catch up"
    );
    let _ = db.close().await;
}

#[tokio::test]
async fn an_offer_notifies_the_buyer_and_never_the_seller_who_made_it() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("120.00").await;
    let (buyer, seller) = (&o.buyer, &o.seller);

    let items = wait_for(&app, buyer, 1).await;
    let n = &items[0];
    assert_eq!(n["kind"], "request:offer-received");
    assert_eq!(n["recipientId"], buyer.id.as_str());
    assert_eq!(n["data"]["requestId"], o.request_id.as_str());
    assert_eq!(n["data"]["offerId"], o.offer_id.as_str());
    assert!(n["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(n["body"].as_str().unwrap().contains("120.00 USD"), "{n}");
    assert_eq!(n["readAt"], Value::Null);
    assert!(n["createdAt"].is_string());
    subscriber_caught_up(&app).await;
    assert!(notifications(&app, seller, "").await.is_empty());
    let count = app
        .get("/api/notifications/unread-count", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(count, json!({ "count": 1 }));
}

#[tokio::test]
async fn a_counter_offer_notifies_only_the_other_party() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("120.00").await;
    let (buyer, seller) = (&o.buyer, &o.seller);
    wait_for(&app, buyer, 1).await;

    app.post(
        &format!("/api/offers/{}/counter", o.offer_id),
        Some(&buyer.token),
        json!({ "message": "30 EUR?" }),
    )
    .await
    .expect(200);
    let to_seller = wait_for(&app, seller, 1).await;
    assert_eq!(to_seller[0]["kind"], "offer:negotiation-update");
    assert_eq!(to_seller[0]["data"]["offerId"], o.offer_id.as_str());

    app.post(
        &format!("/api/offers/{}/counter", o.offer_id),
        Some(&seller.token),
        json!({ "message": "Meet at 32", "price": { "amount": "32.00", "currency": "EUR" } }),
    )
    .await
    .expect(200);
    let to_buyer = wait_for(&app, buyer, 2).await;
    assert_eq!(to_buyer[0]["kind"], "offer:negotiation-update");
    assert!(to_buyer[0]["body"].as_str().unwrap().contains("Meet at 32"));

    subscriber_caught_up(&app).await;
    assert_eq!(
        notifications(&app, buyer, "").await.len(),
        2,
        "the buyer is never told of their own acts"
    );
    assert_eq!(
        notifications(&app, seller, "").await.len(),
        1,
        "the seller is never told of their own acts"
    );
}

#[tokio::test]
async fn a_chat_message_notifies_only_the_other_participant() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller) = (&c.buyer, &c.seller);
    wait_for(&app, buyer, 1).await;

    let m = app
        .send_message(seller, &c.chat_id, "When can you pick it up?")
        .await;
    let to_buyer = wait_for(&app, buyer, 2).await;
    assert_eq!(to_buyer[0]["kind"], "chat:new-message");
    assert_eq!(to_buyer[0]["data"]["chatId"], c.chat_id.as_str());
    assert_eq!(to_buyer[0]["data"]["messageId"], m["id"]);
    assert_eq!(to_buyer[0]["data"]["requestId"], c.request_id.as_str());
    assert_eq!(to_buyer[0]["body"], "When can you pick it up?");

    subscriber_caught_up(&app).await;
    assert!(
        notifications(&app, seller, "").await.is_empty(),
        "the seller is never told of their own acts"
    );
}

#[tokio::test]
async fn accepting_an_offer_notifies_only_the_seller() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("120.00").await;
    wait_for(&app, &o.buyer, 1).await;
    let a = app.accept(o).await;

    let to_seller = wait_for(&app, &a.seller, 1).await;
    assert_eq!(to_seller[0]["kind"], "offer:accepted");
    assert_eq!(
        to_seller[0]["data"],
        json!({ "requestId": a.request_id, "offerId": a.offer_id })
    );
    subscriber_caught_up(&app).await;
    assert_eq!(
        notifications(&app, &a.buyer, "").await.len(),
        1,
        "the buyer is never told of their own acts"
    );
}

#[tokio::test]
async fn handling_every_event_again_after_a_restart_creates_no_duplicates() {
    let mut app = TestApp::spawn().await;
    let c = app.chat().await;
    for i in 0..3 {
        app.send_message(&c.seller, &c.chat_id, &format!("m{i}"))
            .await;
    }
    let buyer = c.buyer;
    let before = wait_for(&app, &buyer, 4).await;
    subscriber_caught_up(&app).await;

    app.stop().await;
    let db = app.db().await;
    db.execute_unprepared(
        "UPDATE subscriber_cursors SET last_event_id = 0 WHERE name = 'notifications'",
    )
    .await
    .unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT last_event_id FROM subscriber_cursors WHERE name = 'notifications'"
        )
        .await,
        0
    );
    let app = app.restart().await;
    subscriber_caught_up(&app).await;

    let after = notifications(&app, &buyer, "").await;
    assert_eq!(after, before, "the same notifications, none added");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM notifications").await, 4);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM events WHERE name = 'notification:received'"
        )
        .await,
        4
    );
}

/// A buyer's open request with offers from `n` new sellers, once the buyer holds the `n`
/// notifications (newest first).
async fn buyer_with_offers(app: &TestApp, n: usize) -> (TestUser, Vec<Value>) {
    let r = app.request_with_offers(&vec!["120.00"; n]).await;
    let items = wait_for(app, &r.buyer, n).await;
    (r.buyer, items)
}

/// `user` marks the notification `id` read; the answer.
async fn read(app: &TestApp, user: &TestUser, id: &str) -> marketplace_tests::Resp {
    app.post(
        &format!("/api/notifications/{id}/read"),
        Some(&user.token),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn reading_one_notification_marks_only_it_and_reading_again_keeps_the_first_time() {
    let app = TestApp::spawn().await;
    let (buyer, items) = buyer_with_offers(&app, 3).await;
    let second = items[1]["id"].as_str().unwrap();

    let read_once = read(&app, &buyer, second).await.expect(200);
    assert_eq!(read_once["id"], second);
    assert!(read_once["readAt"].is_string());
    let again = read(&app, &buyer, second).await.expect(200);
    assert_eq!(
        again["readAt"], read_once["readAt"],
        "reading twice keeps the first time"
    );

    let unread: Vec<Value> = notifications(&app, &buyer, "&unread=true").await;
    assert_eq!(unread.len(), 2);
    assert!(
        unread
            .iter()
            .all(|n| n["id"] != second && n["readAt"].is_null())
    );
    assert_eq!(notifications(&app, &buyer, "&unread=false").await.len(), 3);
    let count = app
        .get("/api/notifications/unread-count", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(count["count"], 2);
}

#[tokio::test]
async fn someone_elses_or_an_unknown_notification_does_not_exist_for_the_caller() {
    let app = TestApp::spawn().await;
    let (buyer, items) = buyer_with_offers(&app, 1).await;
    let first = items[0]["id"].as_str().unwrap();

    let stranger = app.buyer().await;
    assert_eq!(read(&app, &stranger, first).await.status, 404);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(read(&app, &buyer, &unknown).await.status, 404);
    assert_eq!(read(&app, &buyer, "nope").await.status, 404);
    assert!(notifications(&app, &stranger, "").await.is_empty());
    assert_eq!(
        app.post(
            "/api/notifications/read-all",
            Some(&stranger.token),
            json!({})
        )
        .await
        .expect(200)["updated"],
        0
    );
    assert_eq!(
        notifications(&app, &buyer, "&unread=true").await.len(),
        1,
        "the stranger's read-all touched nothing"
    );
}

#[tokio::test]
async fn read_all_marks_the_rest_once_with_one_event_per_change() {
    let app = TestApp::spawn().await;
    let (buyer, items) = buyer_with_offers(&app, 3).await;
    read(&app, &buyer, items[1]["id"].as_str().unwrap())
        .await
        .expect(200);

    let all = app
        .post("/api/notifications/read-all", Some(&buyer.token), json!({}))
        .await
        .expect(200);
    assert_eq!(all, json!({ "updated": 2 }));
    let all = app
        .post("/api/notifications/read-all", Some(&buyer.token), json!({}))
        .await
        .expect(200);
    assert_eq!(all, json!({ "updated": 0 }));
    assert_eq!(
        app.get("/api/notifications/unread-count", Some(&buyer.token))
            .await
            .expect(200)["count"],
        0
    );
    assert!(notifications(&app, &buyer, "&unread=true").await.is_empty());
    let everything = notifications(&app, &buyer, "").await;
    assert_eq!(everything.len(), 3);
    assert!(everything.iter().all(|n| n["readAt"].is_string()));

    // One notification:read per change: one for the single read, two for read-all.
    let db = app.db().await;
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM events WHERE name = 'notification:read'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn notifications_are_listed_newest_first_in_pages() {
    let app = TestApp::spawn().await;
    let (buyer, all) = buyer_with_offers(&app, 5).await;
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = all
        .iter()
        .map(|n| chrono::DateTime::parse_from_rfc3339(n["createdAt"].as_str().unwrap()).unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/notifications?limit=2&cursor={c}"),
            None => "/api/notifications?limit=2".to_owned(),
        };
        let page = app.get(&path, Some(&buyer.token)).await.expect(200);
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert_eq!(
        app.get("/api/notifications?cursor=bogus", Some(&buyer.token))
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/notifications?unread=maybe", Some(&buyer.token))
            .await
            .status,
        422
    );
    assert_eq!(app.get("/api/notifications", None).await.status, 401);
    assert_eq!(
        app.get("/api/notifications/unread-count", None)
            .await
            .status,
        401
    );
}

/// Waits for the user's newest notification of this kind.
async fn wait_kind(app: &TestApp, user: &TestUser, kind: &str) -> Value {
    eventually(Duration::from_secs(15), || async {
        notifications(app, user, "")
            .await
            .into_iter()
            .find(|n| n["kind"] == kind)
    })
    .await
    .unwrap_or_else(|| panic!("{} got no {kind} notification", user.role))
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_completed_payment_notifies_buyer_and_seller_once() {
    let app = TestApp::spawn().await;
    let paid = app.paid_request("120.00").await;
    for user in [&paid.buyer, &paid.seller] {
        let n = wait_kind(&app, user, "payment:completed").await;
        assert_eq!(n["recipientId"], user.id.as_str());
        assert_eq!(
            n["data"],
            json!({ "requestId": paid.request_id, "paymentId": paid.payment_id })
        );
    }
    subscriber_caught_up(&app).await;
    assert_eq!(
        kinds(&notifications(&app, &paid.buyer, "").await)
            .iter()
            .filter(|k| **k == "payment:completed")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_completed_payout_notifies_its_recipient_only() {
    let app = TestApp::spawn().await;
    let c = app.completed_request("120.00").await;
    let (buyer, seller) = (&c.buyer, &c.seller);

    let n = wait_kind(&app, seller, "payout:completed").await;
    assert_eq!(n["data"]["requestId"], c.request_id.as_str());
    assert!(n["data"]["payoutId"].is_string(), "{n}");
    let payout = app
        .get(
            &format!("/api/payouts/{}", n["data"]["payoutId"].as_str().unwrap()),
            Some(&seller.token),
        )
        .await
        .expect(200);
    assert_eq!(payout["recipientId"], seller.id.as_str());
    subscriber_caught_up(&app).await;
    let to_buyer = notifications(&app, buyer, "").await;
    assert!(
        !kinds(&to_buyer).contains(&"payout:completed"),
        "{to_buyer:?}"
    );
}

#[tokio::test]
async fn an_opened_dispute_notifies_the_other_party_only() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("120.00").await;
    let n = wait_kind(&app, d.other_party(), "dispute:opened").await;
    assert_eq!(
        n["data"],
        json!({ "requestId": d.request_id, "disputeId": d.dispute_id })
    );
    assert!(n["body"].as_str().unwrap().contains("never arrived"));
    subscriber_caught_up(&app).await;
    assert!(
        !kinds(&notifications(&app, d.opener(), "").await).contains(&"dispute:opened"),
        "the buyer opened it"
    );
}

#[tokio::test]
async fn a_resolved_dispute_notifies_both_parties_and_not_the_admin() {
    let app = TestApp::spawn().await;
    let open = app.open_dispute("120.00").await;
    let r = app
        .resolve(open, "release_to_seller", "Tracking shows delivery")
        .await;
    for user in [&r.buyer, &r.seller] {
        let n = wait_kind(&app, user, "dispute:resolved").await;
        assert_eq!(n["data"]["disputeId"], r.dispute_id.as_str());
        assert_eq!(n["data"]["requestId"], r.request_id.as_str());
        assert_eq!(n["data"]["resolution"], "release_to_seller");
    }
    subscriber_caught_up(&app).await;
    assert!(
        notifications(&app, &r.admin, "").await.is_empty(),
        "the admin acted"
    );
}
