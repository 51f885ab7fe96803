//! Creating, seeing, listing, cancelling and completing a purchase request: the buyer/seller
//! story of the request itself, who sees what, and every 4xx.

use super::*;

#[tokio::test]
async fn a_new_request_is_open_with_trimmed_fields_and_sellers_see_it() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let s1 = app.seller().await;

    let req = app
        .post_request(&buyer, request_body("  Road bike  "))
        .await;
    assert_eq!(req["title"], "Road bike");
    assert_eq!(req["buyerId"], buyer.id.as_str());
    assert_eq!(req["status"], "open");
    assert_eq!(
        req["budget"],
        json!({ "amount": "450.00", "currency": "USD" })
    );
    assert_eq!(req["acceptedOfferId"], Value::Null);
    let rid = id(&req);

    // Sellers see it in their list and by id.
    let list = app.get("/api/requests", Some(&s1.token)).await.expect(200);
    assert_eq!(ids(&list), vec![rid.clone()]);
    assert_eq!(
        app.get(&format!("/api/requests/{rid}"), Some(&s1.token))
            .await
            .expect(200),
        req
    );
}

#[tokio::test]
async fn creating_a_request_checks_the_token_the_role_and_every_field() {
    let app = TestApp::spawn().await;
    let (buyer, seller, admin) = (app.buyer().await, app.seller().await, app.admin().await);

    assert_eq!(
        app.post("/api/requests", None, request_body("x"))
            .await
            .status,
        401
    );
    assert_eq!(
        app.post("/api/requests", Some("garbage"), request_body("x"))
            .await
            .status,
        401
    );
    for who in [&seller, &admin] {
        let res = app
            .post("/api/requests", Some(&who.token), request_body("x"))
            .await;
        assert_eq!(res.status, 403, "{}", who.role);
        assert_eq!(res.code(), "forbidden");
    }

    let res = app
        .send(
            app.http
                .post(app.url("/api/requests"))
                .bearer_auth(&buyer.token)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.content_type, "application/problem+json");

    let long = "x".repeat(201);
    for (body, field) in [
        (
            json!({ "title": "  ", "description": "d", "category": "c" }),
            "title",
        ),
        (
            json!({ "title": long, "description": "d", "category": "c" }),
            "title",
        ),
        (
            json!({ "title": "t", "description": "", "category": "c" }),
            "description",
        ),
        (
            json!({ "title": "t", "description": "x".repeat(5001), "category": "c" }),
            "description",
        ),
        (
            json!({ "title": "t", "description": "d", "category": "" }),
            "category",
        ),
        (
            json!({ "title": "t", "description": "d", "category": "x".repeat(101) }),
            "category",
        ),
        (
            json!({ "title": "t", "description": "d", "category": "c", "budget": { "amount": 12.5, "currency": "USD" } }),
            "budget.amount",
        ),
        (
            json!({ "title": "t", "description": "d", "category": "c", "budget": { "amount": "-1", "currency": "USD" } }),
            "budget.amount",
        ),
        (
            json!({ "title": "t", "description": "d", "category": "c", "budget": { "amount": "1.234", "currency": "USD" } }),
            "budget.amount",
        ),
        (
            json!({ "title": "t", "description": "d", "category": "c", "budget": { "amount": "10", "currency": "XYZ" } }),
            "budget.currency",
        ),
    ] {
        let res = app
            .post("/api/requests", Some(&buyer.token), body.clone())
            .await;
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        let fields: Vec<&str> = res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    let res = app
        .post(
            "/api/requests",
            Some(&buyer.token),
            json!({ "description": "d", "category": "c" }),
        )
        .await;
    assert_eq!(res.status, 422, "a missing title: {}", res.body);
    assert!(
        ids(&app
            .get("/api/requests", Some(&buyer.token))
            .await
            .expect(200))
        .is_empty(),
        "nothing was created"
    );

    let no_budget = app
        .post(
            "/api/requests",
            Some(&buyer.token),
            json!({ "title": "t", "description": "d", "category": "c" }),
        )
        .await
        .expect(201);
    assert_eq!(no_budget["budget"], Value::Null);
}

#[tokio::test]
async fn another_buyers_request_and_its_offers_are_404() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("10").await;
    let (buyer, rid, oid) = (&o.buyer, &o.request_id, &o.offer_id);
    let other = app.buyer().await;

    for res in [
        app.get(&format!("/api/requests/{rid}"), Some(&other.token))
            .await,
        app.get(&format!("/api/requests/{rid}/offers"), Some(&other.token))
            .await,
        app.post(
            &format!("/api/requests/{rid}/cancel"),
            Some(&other.token),
            json!({}),
        )
        .await,
        app.post(
            &format!("/api/requests/{rid}/complete"),
            Some(&other.token),
            json!({}),
        )
        .await,
        app.get(&format!("/api/offers/{oid}/messages"), Some(&other.token))
            .await,
        app.post(
            &format!("/api/offers/{oid}/accept"),
            Some(&other.token),
            json!({}),
        )
        .await,
        app.post(
            &format!("/api/offers/{oid}/reject"),
            Some(&other.token),
            json!({}),
        )
        .await,
        app.post(
            &format!("/api/offers/{oid}/counter"),
            Some(&other.token),
            json!({ "message": "hi" }),
        )
        .await,
    ] {
        assert_eq!(res.status, 404, "{}", res.body);
        assert_eq!(res.code(), "not_found");
    }
    assert!(
        ids(&app
            .get("/api/requests", Some(&other.token))
            .await
            .expect(200))
        .is_empty()
    );
    assert_eq!(
        ids(&app
            .get("/api/requests", Some(&buyer.token))
            .await
            .expect(200)),
        vec![rid.clone()]
    );
}

#[tokio::test]
async fn unknown_and_malformed_request_and_offer_ids_are_404() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    // Unknown and malformed ids are 404 too.
    let unknown = Uuid::now_v7();
    assert_eq!(
        app.get(&format!("/api/requests/{unknown}"), Some(&buyer.token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/requests/not-a-uuid", Some(&buyer.token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.post(
            &format!("/api/offers/{unknown}/accept"),
            Some(&buyer.token),
            json!({})
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn the_admin_sees_every_request_its_offers_and_their_threads() {
    let app = TestApp::spawn().await;
    let o = app.offered_request("10").await;
    let (rid, oid) = (&o.request_id, &o.offer_id);
    // The admin sees everything.
    let admin = app.admin().await;
    app.get(&format!("/api/requests/{rid}"), Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(
        ids(&app
            .get(&format!("/api/requests/{rid}/offers"), Some(&admin.token))
            .await
            .expect(200)),
        vec![oid.clone()]
    );
    app.get(&format!("/api/offers/{oid}/messages"), Some(&admin.token))
        .await
        .expect(200);
}

/// A request with `offering`'s offer, and `watching`, a seller who has none on it.
struct WatchedRequest {
    buyer: TestUser,
    offering: TestUser,
    watching: TestUser,
    rid: String,
    oid: String,
}

async fn watched_request(app: &TestApp) -> WatchedRequest {
    let o = app.offered_request("10").await;
    WatchedRequest {
        buyer: o.buyer,
        offering: o.seller,
        watching: app.seller().await,
        rid: o.request_id,
        oid: o.offer_id,
    }
}

/// [`watched_request`], cancelled by its buyer.
async fn closed_watched_request(app: &TestApp) -> WatchedRequest {
    let w = watched_request(app).await;
    app.cancel_request(&w.buyer, &w.rid).await;
    w
}

#[tokio::test]
async fn a_seller_who_may_see_an_open_request_sees_no_other_sellers_offer() {
    let app = TestApp::spawn().await;
    let WatchedRequest {
        watching, rid, oid, ..
    } = watched_request(&app).await;

    // Another seller's offer is not visible to a seller who may see the request.
    assert!(
        ids(&app
            .get(
                &format!("/api/requests/{rid}/offers"),
                Some(&watching.token)
            )
            .await
            .expect(200))
        .is_empty()
    );
    let res = app
        .get(
            &format!("/api/offers/{oid}/messages"),
            Some(&watching.token),
        )
        .await;
    assert_eq!(res.status, 404);
    let res = app
        .post(
            &format!("/api/offers/{oid}/counter"),
            Some(&watching.token),
            json!({ "message": "hi" }),
        )
        .await;
    assert_eq!(res.status, 404);
    let res = app
        .post(
            &format!("/api/offers/{oid}/withdraw"),
            Some(&watching.token),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 404);
}

#[tokio::test]
async fn a_closed_request_is_gone_for_sellers_without_an_offer_and_kept_for_the_one_with_one() {
    let app = TestApp::spawn().await;
    let WatchedRequest {
        offering,
        watching,
        rid,
        ..
    } = closed_watched_request(&app).await;

    // Closed: gone for the seller without an offer, still there for the one with an offer.
    assert_eq!(
        app.get(&format!("/api/requests/{rid}"), Some(&watching.token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(
            &format!("/api/requests/{rid}/offers"),
            Some(&watching.token)
        )
        .await
        .status,
        404
    );
    assert!(
        ids(&app
            .get("/api/requests?status=cancelled", Some(&watching.token))
            .await
            .expect(200))
        .is_empty()
    );
    assert_eq!(
        app.get(&format!("/api/requests/{rid}"), Some(&offering.token))
            .await
            .expect(200)["status"],
        "cancelled"
    );
    assert_eq!(
        ids(&app
            .get("/api/requests?status=cancelled", Some(&offering.token))
            .await
            .expect(200)),
        vec![rid.clone()]
    );
    assert_eq!(
        ids(&app
            .get("/api/requests?mine=true", Some(&offering.token))
            .await
            .expect(200)),
        vec![rid.clone()]
    );
    assert!(
        ids(&app
            .get("/api/requests", Some(&offering.token))
            .await
            .expect(200))
        .is_empty()
    );
}

#[tokio::test]
async fn offering_on_a_closed_request_is_404_if_invisible_and_409_if_not_open() {
    let app = TestApp::spawn().await;
    let WatchedRequest {
        offering,
        watching,
        rid,
        ..
    } = closed_watched_request(&app).await;

    // Offering on it now: invisible → 404 for one, not open → 409 for the other.
    let body = json!({ "price": { "amount": "5", "currency": "USD" }, "message": "m" });
    assert_eq!(
        app.post(
            &format!("/api/requests/{rid}/offers"),
            Some(&watching.token),
            body.clone()
        )
        .await
        .status,
        404
    );
    let res = app
        .post(
            &format!("/api/requests/{rid}/offers"),
            Some(&offering.token),
            body,
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(res.code(), "request_not_open");
}

#[tokio::test]
async fn request_lists_filter_by_status_category_and_role() {
    let app = TestApp::spawn().await;
    let (buyer, seller, admin) = (app.buyer().await, app.seller().await, app.admin().await);
    let bikes = id(&app.post_request(&buyer, request_body("bike")).await);
    let books = id(&app
        .post(
            "/api/requests",
            Some(&buyer.token),
            json!({ "title": "book", "description": "d", "category": "books" }),
        )
        .await
        .expect(201));
    let cancelled = id(&app.post_request(&buyer, request_body("old")).await);
    app.post(
        &format!("/api/requests/{cancelled}/cancel"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);

    assert_eq!(
        ids(&app
            .get("/api/requests", Some(&buyer.token))
            .await
            .expect(200)),
        vec![cancelled.clone(), books.clone(), bikes.clone()]
    );
    assert_eq!(
        ids(&app
            .get("/api/requests?status=open", Some(&buyer.token))
            .await
            .expect(200)),
        vec![books.clone(), bikes.clone()]
    );
    assert_eq!(
        ids(&app
            .get("/api/requests?category=books", Some(&seller.token))
            .await
            .expect(200)),
        vec![books.clone()]
    );
    assert_eq!(
        ids(&app
            .get("/api/requests", Some(&seller.token))
            .await
            .expect(200)),
        vec![books.clone(), bikes.clone()]
    );
    assert_eq!(
        ids(&app
            .get("/api/requests", Some(&admin.token))
            .await
            .expect(200)),
        vec![books.clone(), bikes.clone()]
    );
    assert_eq!(
        ids(&app
            .get("/api/requests?status=cancelled", Some(&admin.token))
            .await
            .expect(200)),
        vec![cancelled.clone()]
    );
    assert!(
        ids(&app
            .get("/api/requests?mine=true", Some(&seller.token))
            .await
            .expect(200))
        .is_empty()
    );

    for q in [
        "status=bogus",
        "limit=0",
        "cursor=not-a-cursor",
        "mine=perhaps",
        "limit=ten",
    ] {
        let res = app
            .get(&format!("/api/requests?{q}"), Some(&buyer.token))
            .await;
        assert_eq!(res.status, 422, "{q}: {}", res.body);
        assert_eq!(res.content_type, "application/problem+json");
    }
    assert_eq!(app.get("/api/requests", None).await.status, 401);
}

#[tokio::test]
async fn request_pages_neither_skip_nor_repeat_while_new_requests_arrive() {
    let app = TestApp::spawn().await;
    let (buyer, seller) = (app.buyer().await, app.seller().await);
    let mut before = Vec::new();
    for i in 0..7 {
        before.push(id(&app
            .post_request(&buyer, request_body(&format!("r{i}")))
            .await));
    }
    before.reverse();

    for who in [&buyer, &seller] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/requests?limit=3&cursor={c}"),
                None => "/api/requests?limit=3".to_owned(),
            };
            let page = app.get(&path, Some(&who.token)).await.expect(200);
            seen.extend(ids(&page));
            pages += 1;
            // New requests between pages land before the first page, never in later ones.
            app.post_request(&buyer, request_body("newcomer")).await;
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(pages < 10, "pagination does not end");
        }
        if who.id == buyer.id {
            assert_eq!(
                seen, before,
                "the buyer's pages are exactly the requests that existed, newest first"
            );
        } else {
            // The seller started after the buyer's walk created 3 newcomers.
            assert_eq!(seen.len(), 10);
            assert_eq!(&seen[3..], &before[..]);
            assert_eq!(
                seen.iter().collect::<HashSet<_>>().len(),
                seen.len(),
                "no repeats"
            );
        }
    }
    let full = app
        .get("/api/requests?limit=100", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(full["nextCursor"], Value::Null);
    assert_eq!(ids(&full).len(), 7 + 3 + 4);
    let capped = app
        .get("/api/requests?limit=1000", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(ids(&capped).len(), 14);
}

/// `user` asks for `action` (`cancel` or `complete`) on the request; the answer.
async fn act(app: &TestApp, user: &TestUser, rid: &str, action: &str) -> marketplace_tests::Resp {
    app.post(
        &format!("/api/requests/{rid}/{action}"),
        Some(&user.token),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn only_its_buyer_may_cancel_a_request() {
    let app = TestApp::spawn().await;
    let (seller, admin) = (app.seller().await, app.admin().await);
    let open = app.open_request().await;
    let rid = open.request_id.as_str();

    for who in [&seller, &admin] {
        let res = act(&app, who, rid, "cancel").await;
        assert_eq!(res.status, 403, "{}: {}", who.role, res.body);
    }
    assert_eq!(
        app.post(&format!("/api/requests/{rid}/cancel"), None, json!({}))
            .await
            .status,
        401
    );
    let unknown = Uuid::now_v7().to_string();
    assert_eq!(act(&app, &open.buyer, &unknown, "cancel").await.status, 404);
    assert_eq!(app.request_status(&open.buyer.token, rid).await, "open");
}

#[tokio::test]
async fn an_open_request_is_cancelled_not_completed_and_a_cancelled_one_takes_neither() {
    let app = TestApp::spawn().await;
    let open = app.open_request().await;
    let (buyer, rid) = (&open.buyer, open.request_id.as_str());

    let res = act(&app, buyer, rid, "complete").await;
    assert_eq!(res.status, 409);
    assert_eq!(res.code(), "invalid_transition");
    let cancelled = act(&app, buyer, rid, "cancel").await.expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    for action in ["cancel", "complete"] {
        let res = act(&app, buyer, rid, action).await;
        assert_eq!(res.status, 409, "{action}");
        assert_eq!(res.code(), "invalid_transition");
    }
}

#[tokio::test]
async fn an_accepted_request_may_be_cancelled_but_not_completed() {
    let app = TestApp::spawn().await;
    let a = app.accepted_request("10").await;
    let res = act(&app, &a.buyer, &a.request_id, "complete").await;
    assert_eq!((res.status, res.code()), (409, "invalid_transition"));
    act(&app, &a.buyer, &a.request_id, "cancel")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_paid_request_is_completed_by_its_buyer_and_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let p = app.paid_request("10").await;
    let res = act(&app, &p.buyer, &p.request_id, "cancel").await;
    assert_eq!((res.status, res.code()), (409, "invalid_transition"));
    let done = act(&app, &p.buyer, &p.request_id, "complete")
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
}

#[tokio::test]
async fn a_disputed_request_is_completed_by_the_resolution_not_by_its_buyer() {
    let app = TestApp::spawn().await;
    let d = app.open_dispute("10").await;
    let res = act(&app, &d.buyer, &d.request_id, "complete").await;
    assert_eq!((res.status, res.code()), (409, "invalid_transition"));
}
