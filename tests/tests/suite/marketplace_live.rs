//! The buyer/seller story from request to accepted offer as live clients see it: the buyer,
//! the seller who wins, a seller who loses, an unrelated buyer and an admin each hold a real
//! Socket.IO connection; each must get exactly its events, once, and nothing else.

use std::time::Duration;

use marketplace_tests::TestApp;
use marketplace_tests::socket::SocketClient;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(600);

async fn once(socket: &mut SocketClient, event: &str) -> Value {
    let args = socket.expect(event, WAIT).await;
    assert_eq!(socket.count(event, QUIET).await, 0, "{event} arrived twice");
    assert!(args[1]["id"].is_i64(), "{event} carries {{ id, at }}");
    args[0].clone()
}

async fn events_of(socket: &mut SocketClient) -> Vec<String> {
    socket
        .drain(QUIET)
        .await
        .into_iter()
        .map(|r| r.event)
        .collect()
}

#[tokio::test]
async fn from_request_to_accepted_offer_each_party_sees_exactly_its_events() {
    let app = TestApp::spawn().await;
    let (buyer, winner, loser) = (app.buyer().await, app.seller().await, app.seller().await);
    let stranger = app.buyer().await;
    let admin = app.admin().await;
    let mut b = app.socket(&buyer).await;
    let mut w = app.socket(&winner).await;
    let mut l = app.socket(&loser).await;
    let mut o = app.socket(&stranger).await;
    let mut a = app.socket(&admin).await;

    // A new request reaches the sellers, not the buyers.
    let request_id = app.create_request(&buyer).await;
    for s in [&mut w, &mut l] {
        assert_eq!(once(s, "request:created").await["id"], request_id.as_str());
    }
    assert!(
        !events_of(&mut b)
            .await
            .contains(&"request:created".to_owned())
    );
    assert!(
        !events_of(&mut o)
            .await
            .contains(&"request:created".to_owned())
    );

    // Two offers: the buyer hears of each on its user room.
    let win_offer = app.make_offer(&winner, &request_id, "100.00").await;
    assert_eq!(
        once(&mut b, "request:offer-received").await["offer"]["id"],
        win_offer.as_str()
    );
    let lose_offer = app.make_offer(&loser, &request_id, "90.00").await;
    assert_eq!(
        once(&mut b, "request:offer-received").await["offer"]["id"],
        lose_offer.as_str()
    );

    // The buyer and the winning seller follow the request room; the loser does not.
    for s in [&b, &w] {
        assert_eq!(
            s.ack("join-request-room", json!(request_id)).await["ok"],
            true
        );
    }
    assert_eq!(
        o.ack("join-request-room", json!(request_id)).await["error"],
        "not_found"
    );

    // Negotiation goes to the request room: buyer and winner, not the loser or the stranger.
    app.post(
        &format!("/api/offers/{win_offer}/counter"),
        Some(&buyer.token),
        json!({ "message": "95?", "price": { "amount": "95.00", "currency": "USD" } }),
    )
    .await
    .expect(200);
    for s in [&mut b, &mut w] {
        let n = once(s, "offer:negotiation-update").await;
        assert_eq!(n["offerId"], win_offer.as_str());
        assert_eq!(n["message"]["price"]["amount"], "95.00");
    }

    // Acceptance: the winner's seller room and the buyer's user room; status to the request
    // room and the buyer (who is in both, and gets one copy).
    app.post(
        &format!("/api/offers/{win_offer}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    for s in [&mut b, &mut w] {
        let e = once(s, "offer:accepted").await;
        assert_eq!(e, json!({ "offerId": win_offer, "requestId": request_id }));
        let st = once(s, "request:status-updated").await;
        assert_eq!(st, json!({ "requestId": request_id, "status": "accepted" }));
    }
    // The winner is told by notifications too: first of the counter, then of the acceptance.
    let mut kinds = Vec::new();
    while let Some(n) = w.wait_for("notification:received", WAIT).await {
        kinds.push(n[0]["kind"].as_str().unwrap_or_default().to_owned());
        if kinds.last().is_some_and(|k| k == "offer:accepted") {
            break;
        }
    }
    assert_eq!(kinds, ["offer:negotiation-update", "offer:accepted"]);
    // The buyer is notified of the offers it received, never of its own counter or accept.
    let buyer_kinds: Vec<String> = b
        .drain(QUIET)
        .await
        .into_iter()
        .filter(|r| r.event == "notification:received")
        .map(|r| r.args[0]["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        buyer_kinds,
        ["request:offer-received", "request:offer-received"]
    );

    // A chat message reaches the buyer on its user room without joining the chat.
    let chat_id = app.chat_id(&winner, &request_id).await;
    app.send_message(&winner, &chat_id, "Shipping tomorrow")
        .await;
    assert_eq!(
        once(&mut b, "chat:new-message").await["content"],
        "Shipping tomorrow"
    );

    // The losing seller saw the request and nothing of the deal; the stranger saw nothing.
    let lost = events_of(&mut l).await;
    for e in [
        "offer:accepted",
        "offer:negotiation-update",
        "request:status-updated",
        "chat:new-message",
    ] {
        assert!(
            !lost.iter().any(|x| x == e),
            "{e} leaked to the losing seller: {lost:?}"
        );
    }
    let strange = events_of(&mut o).await;
    assert!(
        !strange.iter().any(|e| e.starts_with("request:")
            || e.starts_with("offer:")
            || e.starts_with("chat:")),
        "leaked to an unrelated buyer: {strange:?}"
    );
    // The admin is in no room of these events unless it joins one.
    let admin_saw = events_of(&mut a).await;
    assert!(
        !admin_saw.iter().any(|e| e.starts_with("offer:")),
        "{admin_saw:?}"
    );
}

/// Whether a seller other than `a_seller_id` may see this event (`name`, `payload`): only
/// what REST shows a competing seller — new requests, a request's status, and its own offer.
fn fine_for_a_competitor(name: &str, payload: &Value, a_seller_id: &str) -> bool {
    match name {
        "request:created" | "request:status-updated" => true,
        "request:offer-received" => payload["offer"]["sellerId"] != a_seller_id,
        "notification:received" | "notification:read" => true,
        _ => false,
    }
}

/// Issue 25, finding 1: seller B offered on the same request as seller A, so B may be in the
/// request room. A's offer and price, the buyer's counter to A, A's acceptance, the payment
/// and the dispute with its evidence must reach B neither live in the room, nor on replay,
/// nor through `GET /api/events`.
#[tokio::test]
async fn a_competing_seller_sees_no_other_sellers_bid_payment_or_dispute_anywhere() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let (a, b) = (app.seller().await, app.seller().await);
    let request_id = app.create_request(&buyer).await;
    let b_offer = app.make_offer(&b, &request_id, "80.00").await;
    let mut live = app.socket(&b).await;
    let joined = live.ack("join-request-room", json!(request_id)).await;
    assert_eq!(
        joined["ok"], true,
        "a seller who offered may follow: {joined}"
    );

    // A bids, the buyer counters A, accepts A, pays; A opens a dispute with evidence; an
    // admin resolves it.
    let a_offer = app.make_offer(&a, &request_id, "71.37").await;
    app.post(
        &format!("/api/offers/{a_offer}/counter"),
        Some(&buyer.token),
        json!({ "message": "Would you take 65.10?", "price": { "amount": "65.10", "currency": "USD" } }),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/offers/{a_offer}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    let payment = app.create_payment(&buyer, &request_id).await;
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/sandbox/payments/{payment_id}/simulate"),
        Some(&buyer.token),
        json!({ "status": "PAID" }),
    )
    .await
    .expect(200);
    let dispute = app
        .post(
            &format!("/api/requests/{request_id}/disputes"),
            Some(&a.token),
            json!({ "reason": "The buyer says it never came" }),
        )
        .await
        .expect(201);
    let dispute_id = dispute["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/disputes/{dispute_id}/evidence"),
        Some(&a.token),
        json!({ "description": "Tracking number 1Z999" }),
    )
    .await
    .expect(201);
    let admin = app.admin().await;
    app.post(
        &format!("/api/disputes/{dispute_id}/resolve"),
        Some(&admin.token),
        json!({ "resolution": "release_to_seller", "note": "Delivered per tracking" }),
    )
    .await
    .expect(200);
    app.settled().await;

    // Live, in the request room.
    let got = live.drain(QUIET).await;
    let leaked: Vec<&str> = got
        .iter()
        .filter(|r| !fine_for_a_competitor(&r.event, &r.args[0], &a.id))
        .map(|r| r.event.as_str())
        .collect();
    assert!(
        leaked.is_empty(),
        "leaked live to the competitor: {leaked:?}"
    );
    assert!(
        got.iter().any(|r| r.event == "request:status-updated"),
        "the room still carries the request's status: {:?}",
        got.iter().map(|r| &r.event).collect::<Vec<_>>()
    );

    // Replay from the start of the log.
    let mut replayed = app.socket_after(&b, 0).await;
    let again = replayed.drain(QUIET).await;
    let leaked: Vec<&str> = again
        .iter()
        .filter(|r| !fine_for_a_competitor(&r.event, &r.args[0], &a.id))
        .map(|r| r.event.as_str())
        .collect();
    assert!(leaked.is_empty(), "leaked on replay: {leaked:?}");
    assert!(
        again
            .iter()
            .any(|r| r.event == "request:offer-received"
                && r.args[0]["offer"]["id"] == b_offer.as_str()),
        "B's own offer is replayed to B"
    );

    // Over REST, the whole log.
    let mut cursor = "0".to_owned();
    let mut listed = Vec::new();
    loop {
        let page = app
            .get(
                &format!("/api/events?after={cursor}&limit=100"),
                Some(&b.token),
            )
            .await
            .expect(200);
        listed.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let leaked: Vec<&Value> = listed
        .iter()
        .filter(|i| !fine_for_a_competitor(i["event"].as_str().unwrap(), &i["payload"], &a.id))
        .map(|i| &i["event"])
        .collect();
    assert!(leaked.is_empty(), "leaked over GET /api/events: {leaked:?}");
    assert!(
        !serde_json::to_string(&listed).unwrap().contains("71.37"),
        "A's price reached B"
    );

    // The winner and the buyer still get theirs (user rooms), each once.
    let mut w = app.socket_after(&a, 0).await;
    let names: Vec<String> = w.drain(QUIET).await.into_iter().map(|r| r.event).collect();
    for event in [
        "offer:negotiation-update",
        "payment:status-updated",
        "payment:completed",
        "dispute:opened",
        "dispute:evidence-added",
        "dispute:resolved",
    ] {
        assert_eq!(
            names.iter().filter(|n| *n == event).count(),
            1,
            "{event} reaches the winning seller once: {names:?}"
        );
    }
}
