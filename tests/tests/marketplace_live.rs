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
