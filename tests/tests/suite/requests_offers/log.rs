//! What the durable event log holds after each change of a request or offer (with its
//! audience), and that a refused change leaves nothing in it.

use super::*;

#[tokio::test]
async fn every_change_is_in_the_durable_log_with_its_audience() {
    let app = TestApp::spawn().await;
    let (buyer, seller) = (app.buyer().await, app.seller().await);
    let req = app.post_request(&buyer, request_body("logged")).await;
    let rid = id(&req);
    let offer = app.post_offer(&seller, &rid, "12.50").await;
    let oid = id(&offer);
    let msg = app
        .post(
            &format!("/api/offers/{oid}/counter"),
            Some(&buyer.token),
            json!({ "message": "ok?" }),
        )
        .await
        .expect(200);
    app.post(
        &format!("/api/offers/{oid}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/requests/{rid}/cancel"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);

    let log: Vec<(String, Value, Value)> = events(&app)
        .await
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("request:") || n.starts_with("offer:"))
        .collect();
    let names: Vec<&str> = log.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "request:created",
            "request:offer-received",
            "offer:negotiation-update",
            "request:status-updated",
            "offer:accepted",
            "request:status-updated"
        ]
    );
    let (b, s) = (buyer.id.as_str(), seller.id.as_str());

    let (_, payload, audience) = &log[0];
    assert_eq!(payload, &req, "request:created carries the PurchaseRequest");
    assert_eq!(
        audience,
        &json!({ "buyerId": b, "requestId": rid, "actorId": b })
    );

    let (_, payload, audience) = &log[1];
    assert_eq!(payload, &json!({ "requestId": rid, "offer": offer }));
    assert_eq!(
        audience,
        &json!({ "buyerId": b, "sellerId": s, "requestId": rid, "actorId": s })
    );

    let (_, payload, audience) = &log[2];
    assert_eq!(
        payload,
        &json!({ "offerId": oid, "requestId": rid, "message": msg })
    );
    assert_eq!(
        audience,
        &json!({ "buyerId": b, "sellerId": s, "requestId": rid, "actorId": b })
    );

    let (_, payload, audience) = &log[3];
    assert_eq!(payload, &json!({ "requestId": rid, "status": "accepted" }));
    assert_eq!(
        audience,
        &json!({ "buyerId": b, "requestId": rid, "actorId": b })
    );

    let (_, payload, audience) = &log[4];
    assert_eq!(payload, &json!({ "offerId": oid, "requestId": rid }));
    assert_eq!(
        audience,
        &json!({ "buyerId": b, "sellerId": s, "requestId": rid, "actorId": b })
    );

    let (_, payload, _) = &log[5];
    assert_eq!(payload, &json!({ "requestId": rid, "status": "cancelled" }));
}

#[tokio::test]
async fn a_refused_change_leaves_nothing_in_the_log() {
    let app = TestApp::spawn().await;
    let a = app.accepted_request("12.50").await;
    let (buyer, rid, oid) = (&a.buyer, &a.request_id, &a.offer_id);
    app.cancel_request(buyer, rid).await;
    // The side effects of the cancellation write events of their own, after the answer.
    app.settled().await;

    let before = events(&app).await.len();
    assert_eq!(
        app.post(
            &format!("/api/requests/{rid}/cancel"),
            Some(&buyer.token),
            json!({})
        )
        .await
        .status,
        409
    );
    assert_eq!(
        app.post(
            &format!("/api/offers/{oid}/accept"),
            Some(&buyer.token),
            json!({})
        )
        .await
        .status,
        409
    );
    assert_eq!(events(&app).await.len(), before);
}
