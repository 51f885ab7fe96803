//! Offers and their negotiation: making one (one live offer per seller), countering,
//! accepting (exactly one wins a race), rejecting and withdrawing, and the pages of both.

use super::*;

#[tokio::test]
async fn the_buyer_sees_every_offer_newest_first_and_each_seller_only_its_own() {
    let app = TestApp::spawn().await;
    let r = app.request_with_offers(&["430", "440.50"]).await;
    let (s1, rid) = (&r.sellers[0], &r.request_id);
    let (o1, o2) = (&r.offers[0], &r.offers[1]);

    assert_eq!(o1["status"], "pending");
    assert_eq!(o1["sellerId"], s1.id.as_str());
    assert_eq!(o1["requestId"], rid.as_str());
    assert_eq!(o1["price"], json!({ "amount": "430", "currency": "USD" }));
    let all = app
        .get(&format!("/api/requests/{rid}/offers"), Some(&r.buyer.token))
        .await
        .expect(200);
    assert_eq!(ids(&all), vec![id(o2), id(o1)]);
    let own = app
        .get(&format!("/api/requests/{rid}/offers"), Some(&s1.token))
        .await
        .expect(200);
    assert_eq!(ids(&own), vec![id(o1)]);
}

#[tokio::test]
async fn a_negotiation_threads_its_messages_and_a_countered_price_becomes_the_offers_price() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("430").await;
    let (buyer, s1, rid, o1id) = (&o.buyer, &o.seller, &o.request_id, &o.offer_id);

    // The buyer proposes a price, the seller answers without one.
    let m1 = app
        .post(
            &format!("/api/offers/{o1id}/counter"),
            Some(&buyer.token),
            json!({ "message": "Would you take 400?", "price": { "amount": "400", "currency": "USD" } }),
        )
        .await
        .expect(200);
    assert_eq!(m1["offerId"], o1id.as_str());
    assert_eq!(m1["authorId"], buyer.id.as_str());
    assert_eq!(m1["price"], json!({ "amount": "400", "currency": "USD" }));
    let m2 = app
        .post(
            &format!("/api/offers/{o1id}/counter"),
            Some(&s1.token),
            json!({ "message": "Deal." }),
        )
        .await
        .expect(200);
    assert_eq!(m2["price"], Value::Null);
    let own = app
        .get(&format!("/api/requests/{rid}/offers"), Some(&s1.token))
        .await
        .expect(200);
    assert_eq!(
        own["items"][0]["price"]["amount"], "400",
        "a countered price becomes the offer's price"
    );
    let thread = app
        .get(&format!("/api/offers/{o1id}/messages"), Some(&s1.token))
        .await
        .expect(200);
    let texts: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, [OFFER_MESSAGE, "Would you take 400?", "Deal."]);
    assert_eq!(
        app.get(&format!("/api/offers/{o1id}/messages"), Some(&buyer.token))
            .await
            .expect(200),
        thread
    );

    // Accepted, the offer carries the negotiated price.
    let accepted = app
        .post(
            &format!("/api/offers/{o1id}/accept"),
            Some(&buyer.token),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["price"]["amount"], "400");
}

#[tokio::test]
async fn accepting_one_offer_rejects_the_others_and_moves_the_request() {
    let app = TestApp::spawn().await;
    let r = app.request_with_offers(&["430", "440.50"]).await;
    let (buyer, s2, rid) = (&r.buyer, &r.sellers[1], &r.request_id);
    let o1id = id(&r.offers[0]);

    app.post(
        &format!("/api/offers/{o1id}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    let req = app
        .get(&format!("/api/requests/{rid}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(req["status"], "accepted");
    assert_eq!(req["acceptedOfferId"], o1id.as_str());
    let all = app
        .get(&format!("/api/requests/{rid}/offers"), Some(&buyer.token))
        .await
        .expect(200);
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["rejected", "accepted"]);

    // Both sellers still see the request they offered on; it left the open list.
    app.get(&format!("/api/requests/{rid}"), Some(&s2.token))
        .await
        .expect(200);
    let open = app.get("/api/requests", Some(&s2.token)).await.expect(200);
    assert!(ids(&open).is_empty());
    let mine = app
        .get("/api/requests?mine=true", Some(&s2.token))
        .await
        .expect(200);
    assert_eq!(ids(&mine), vec![rid.clone()]);
}

#[tokio::test]
async fn each_sellers_first_offer_opens_a_chat_with_the_buyer() {
    let app = TestApp::spawn().await;
    let r = app.request_with_offers(&["430", "440.50"]).await;

    let page = app
        .get("/api/chats?limit=100", Some(&r.buyer.token))
        .await
        .expect(200);
    let chats: HashSet<(String, String, String)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().expect("an id").to_owned();
            (field("requestId"), field("buyerId"), field("sellerId"))
        })
        .collect();
    let expected: HashSet<_> = r
        .sellers
        .iter()
        .map(|s| (r.request_id.clone(), r.buyer.id.clone(), s.id.clone()))
        .collect();
    assert_eq!(chats, expected);
}

/// The body of a valid offer (99.90 EUR).
fn good_offer() -> Value {
    json!({ "price": { "amount": "99.90", "currency": "EUR" }, "message": "Ready to ship." })
}

#[tokio::test]
async fn only_a_seller_with_a_payout_address_offers_on_a_request_that_exists() {
    let app = TestApp::spawn().await;
    let open = app.open_request().await;
    let (buyer, rid) = (&open.buyer, &open.request_id);
    let seller = app.seller().await;
    let path = format!("/api/requests/{rid}/offers");
    let good = good_offer();

    assert_eq!(app.post(&path, None, good.clone()).await.status, 401);
    let res = app.post(&path, Some(&buyer.token), good.clone()).await;
    assert_eq!((res.status, res.code()), (403, "forbidden"));
    let admin = app.admin().await;
    assert_eq!(
        app.post(&path, Some(&admin.token), good.clone())
            .await
            .status,
        403
    );

    let no_address = app.register("seller").await;
    let res = app.post(&path, Some(&no_address.token), good.clone()).await;
    assert_eq!(
        (res.status, res.code()),
        (422, "payout_address_required"),
        "{}",
        res.body
    );
    let unknown = Uuid::now_v7();
    assert_eq!(
        app.post(
            &format!("/api/requests/{unknown}/offers"),
            Some(&seller.token),
            good.clone()
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn an_offer_with_a_bad_price_or_message_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let open = app.open_request().await;
    let seller = app.seller().await;
    let path = format!("/api/requests/{}/offers", open.request_id);
    for (body, field) in [
        (
            json!({ "price": { "amount": "0", "currency": "USD" }, "message": "m" }),
            "price.amount",
        ),
        (
            json!({ "price": { "amount": "abc", "currency": "USD" }, "message": "m" }),
            "price.amount",
        ),
        (
            json!({ "price": { "amount": "10", "currency": "usd" }, "message": "m" }),
            "price.currency",
        ),
        (
            json!({ "price": { "amount": "10", "currency": "USD" }, "message": " " }),
            "message",
        ),
        (
            json!({ "price": { "amount": "10", "currency": "USD" }, "message": "x".repeat(2001) }),
            "message",
        ),
    ] {
        let res = app.post(&path, Some(&seller.token), body.clone()).await;
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        let fields: Vec<&str> = res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    assert_eq!(
        app.post(&path, Some(&seller.token), json!({ "message": "no price" }))
            .await
            .status,
        422
    );
    let own = app.get(&path, Some(&seller.token)).await.expect(200);
    assert_eq!(own["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn a_seller_has_one_live_offer_per_request_even_under_concurrent_tries() {
    let app = TestApp::spawn().await;
    let open = app.open_request().await;
    let seller = app.seller().await;
    let path = format!("/api/requests/{}/offers", open.request_id);
    let good = good_offer();

    let first = app
        .post(&path, Some(&seller.token), good.clone())
        .await
        .expect(201);
    assert_eq!(
        first["price"],
        json!({ "amount": "99.90", "currency": "EUR" })
    );
    let res = app.post(&path, Some(&seller.token), good.clone()).await;
    assert_eq!((res.status, res.code()), (409, "offer_exists"));
    // Concurrent duplicates fail in the database too: at most one more goes through.
    let fid = id(&first);
    app.post(
        &format!("/api/offers/{fid}/withdraw"),
        Some(&seller.token),
        json!({}),
    )
    .await
    .expect(200);
    let tries = futures::future::join_all(
        (0..5).map(|_| app.post(&path, Some(&seller.token), good.clone())),
    )
    .await;
    let created = tries.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        tries
            .iter()
            .map(|r| (r.status, r.code().to_owned()))
            .collect::<Vec<_>>()
    );
    assert!(
        tries
            .iter()
            .all(|r| r.status == 201 || (r.status == 409 && r.code() == "offer_exists"))
    );
    let own = app.get(&path, Some(&seller.token)).await.expect(200);
    let statuses: Vec<&str> = own["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "withdrawn"]);
}

#[tokio::test]
async fn offer_actions_check_who_may_act_and_what_they_send() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("20").await;
    let (buyer, seller, oid) = (&o.buyer, &o.seller, &o.offer_id);
    let admin = app.admin().await;
    let at = |action: &str| format!("/api/offers/{oid}/{action}");

    // Visible, but not theirs to do: 403.
    for (who, action) in [
        (seller, "accept"),
        (seller, "reject"),
        (buyer, "withdraw"),
        (&admin, "accept"),
        (&admin, "withdraw"),
    ] {
        let res = app.post(&at(action), Some(&who.token), json!({})).await;
        assert_eq!(
            (res.status, res.code()),
            (403, "forbidden"),
            "{} {action}",
            who.role
        );
    }
    let res = app
        .post(
            &at("counter"),
            Some(&admin.token),
            json!({ "message": "admins do not haggle" }),
        )
        .await;
    assert_eq!(res.status, 403);
    for action in ["accept", "withdraw", "reject"] {
        assert_eq!(app.post(&at(action), None, json!({})).await.status, 401);
    }
    for body in [
        json!({ "message": "" }),
        json!({ "message": "m", "price": { "amount": "1.001", "currency": "USD" } }),
    ] {
        let res = app
            .post(&at("counter"), Some(&buyer.token), body.clone())
            .await;
        assert_eq!(res.status, 422, "{body}");
    }
    for q in ["limit=0", "cursor=xyz"] {
        assert_eq!(
            app.get(&format!("{}?{q}", at("messages")), Some(&buyer.token))
                .await
                .status,
            422
        );
    }
    assert_eq!(
        app.request_status(&buyer.token, &o.request_id).await,
        "open"
    );
}

#[tokio::test]
async fn a_rejected_offer_takes_no_further_action() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("20").await;
    let (buyer, seller, oid) = (&o.buyer, &o.seller, &o.offer_id);
    let at = |action: &str| format!("/api/offers/{oid}/{action}");

    assert_eq!(
        app.post(&at("reject"), Some(&buyer.token), json!({}))
            .await
            .expect(200)["status"],
        "rejected"
    );
    for (who, action) in [(buyer, "reject"), (buyer, "accept"), (seller, "withdraw")] {
        let res = app.post(&at(action), Some(&who.token), json!({})).await;
        assert_eq!(
            (res.status, res.code()),
            (409, "invalid_transition"),
            "{action}"
        );
    }
    let res = app
        .post(
            &at("counter"),
            Some(&seller.token),
            json!({ "message": "still there?" }),
        )
        .await;
    assert_eq!(res.status, 409);
}

#[tokio::test]
async fn an_offer_is_withdrawn_once() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("25").await;
    let withdraw = format!("/api/offers/{}/withdraw", o.offer_id);
    let w = app
        .post(&withdraw, Some(&o.seller.token), json!({}))
        .await
        .expect(200);
    assert_eq!(w["status"], "withdrawn");
    let res = app.post(&withdraw, Some(&o.seller.token), json!({})).await;
    assert_eq!((res.status, res.code()), (409, "invalid_transition"));
}

#[tokio::test]
async fn a_pending_offer_on_a_request_no_longer_open_is_409_request_not_open() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("30").await;
    let oid3 = &o.offer_id;
    force_status(&app, &o.request_id, "cancelled").await;
    let res = app
        .post(
            &format!("/api/offers/{oid3}/accept"),
            Some(&o.buyer.token),
            json!({}),
        )
        .await;
    assert_eq!((res.status, res.code()), (409, "request_not_open"));
    let res = app
        .post(
            &format!("/api/offers/{oid3}/counter"),
            Some(&o.buyer.token),
            json!({ "message": "hello?" }),
        )
        .await;
    assert_eq!((res.status, res.code()), (409, "request_not_open"));
}

#[tokio::test]
async fn concurrent_accepts_on_one_request_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let rid = id(&app.post_request(&buyer, request_body("race")).await);
    let mut offers = Vec::new();
    for _ in 0..3 {
        let s = app.seller().await;
        offers.push(id(&app.post_offer(&s, &rid, "50").await));
    }

    let attempts = (0..8).map(|i| {
        let oid = offers[i % offers.len()].clone();
        let app = &app;
        let token = buyer.token.clone();
        async move {
            (
                oid.clone(),
                app.post(
                    &format!("/api/offers/{oid}/accept"),
                    Some(&token),
                    json!({}),
                )
                .await,
            )
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.status == 200)
        .map(|(o, _)| o)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        results
            .iter()
            .map(|(_, r)| (r.status, r.body.clone()))
            .collect::<Vec<_>>()
    );
    for (_, r) in &results {
        assert!(
            r.status == 200 || r.status == 409,
            "{} {}",
            r.status,
            r.body
        );
    }

    let all = app
        .get(&format!("/api/requests/{rid}/offers"), Some(&buyer.token))
        .await
        .expect(200);
    let accepted: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "accepted")
        .map(id)
        .collect();
    assert_eq!(accepted, vec![winners[0].clone()]);
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "accepted" || o["status"] == "rejected")
    );
    let req = app
        .get(&format!("/api/requests/{rid}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(req["status"], "accepted");
    assert_eq!(req["acceptedOfferId"], winners[0].as_str());
    let log = events(&app).await;
    assert_eq!(
        log.iter().filter(|(n, _, _)| n == "offer:accepted").count(),
        1
    );
    assert_eq!(
        log.iter()
            .filter(|(n, _, _)| n == "request:status-updated")
            .count(),
        1
    );
}

#[tokio::test]
async fn cancelling_a_request_rejects_its_pending_offers() {
    let app = TestApp::spawn().await;
    let (buyer, seller) = (app.buyer().await, app.seller().await);
    let rid = id(&app
        .post_request(&buyer, request_body("changed my mind"))
        .await);
    let oid = id(&app.post_offer(&seller, &rid, "10").await);
    app.post(
        &format!("/api/requests/{rid}/cancel"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    let status = eventually(Duration::from_secs(10), || async {
        let page = app
            .get(&format!("/api/requests/{rid}/offers"), Some(&seller.token))
            .await
            .expect(200);
        let s = page["items"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (s != "pending").then_some(s)
    })
    .await;
    assert_eq!(status.as_deref(), Some("rejected"));
    let res = app
        .post(
            &format!("/api/offers/{oid}/withdraw"),
            Some(&seller.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 409);
}

#[tokio::test]
async fn offer_lists_and_negotiation_threads_page_in_order() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let rid = id(&app.post_request(&buyer, request_body("paged")).await);
    let mut offers = Vec::new();
    for _ in 0..3 {
        let s = app.seller().await;
        offers.push(id(&app.post_offer(&s, &rid, "10").await));
    }
    let first = app
        .get(
            &format!("/api/requests/{rid}/offers?limit=2"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get(
            &format!("/api/requests/{rid}/offers?limit=2&cursor={cursor}"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(second["nextCursor"], Value::Null);
    let seen: Vec<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    offers.reverse();
    assert_eq!(seen, offers, "newest first, each once");

    let oid = &offers[0];
    for i in 1..=4 {
        app.post(
            &format!("/api/offers/{oid}/counter"),
            Some(&buyer.token),
            json!({ "message": format!("c{i}") }),
        )
        .await
        .expect(200);
    }
    let mut texts = Vec::new();
    let mut path = format!("/api/offers/{oid}/messages?limit=2");
    loop {
        let page = app.get(&path, Some(&buyer.token)).await.expect(200);
        texts.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["message"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/api/offers/{oid}/messages?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        texts,
        [OFFER_MESSAGE, "c1", "c2", "c3", "c4"],
        "oldest first, each once"
    );
}
