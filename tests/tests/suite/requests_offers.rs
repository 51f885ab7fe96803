//! Purchase requests and offers: the buyer/seller story, visibility, every 4xx of both
//! sections, the accept race, pagination under inserts, and the events in the durable log.

use std::collections::HashSet;
use std::time::Duration;

use marketplace_tests::{OFFER_MESSAGE, TestApp, TestUser, eventually};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

fn request_body(title: &str) -> Value {
    json!({
        "title": title,
        "description": "A used road bike in good shape, 56 cm frame.",
        "category": "bikes",
        "budget": { "amount": "450.00", "currency": "USD" }
    })
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect()
}

/// Every durable event in the log, oldest first: (name, payload, audience).
async fn events(app: &TestApp) -> Vec<(String, Value, Value)> {
    use kernel::bus::entity::event;
    let db = app.db().await;
    let rows = event::Entity::find()
        .order_by_asc(event::Column::Id)
        .all(&db)
        .await
        .expect("events");
    rows.into_iter()
        .map(|r| (r.name, r.payload, r.audience))
        .collect()
}

/// Sets a request's status behind the API's back, for the one state the API never reaches:
/// a cancelled request whose offer is still pending (cancelling rejects pending offers).
async fn force_status(app: &TestApp, request_id: &str, status: &str) {
    let db = app.db().await;
    let stmt = Query::update()
        .table(Alias::new("purchase_requests"))
        .value(Alias::new("status"), status)
        .and_where(Expr::col(Alias::new("id")).eq(Uuid::parse_str(request_id).expect("uuid")))
        .to_owned();
    let res = db.execute(&stmt).await.expect("update");
    assert_eq!(res.rows_affected(), 1);
}

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
