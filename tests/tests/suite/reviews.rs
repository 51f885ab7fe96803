//! Reviews (issue 21): once a request is completed its buyer and its accepted seller review
//! each other, once each, double-blind: a review is visible only to its author until the
//! other party has reviewed too or `REVIEW_WINDOW_SECS` after completion have passed; then
//! both are published at once, exactly once, with `review:published` to the two users' rooms
//! (nobody else's) and a notification to the reviewed user. Ratings add up into
//! `User.rating`, the offer listings' seller and `GET /api/users/{id}/reviews`.

use std::time::Duration;

use marketplace_tests::js::{ensure_packages, node_test};
use marketplace_tests::socket::SocketClient;
use marketplace_tests::story::{CompletedRequest, OfferedRequest, Party};
use marketplace_tests::{TestApp, TestUser, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const QUIET: Duration = Duration::from_millis(2000);

async fn review(
    app: &TestApp,
    user: &TestUser,
    request_id: &str,
    body: Value,
) -> marketplace_tests::Resp {
    app.post(
        &format!("/api/requests/{request_id}/reviews"),
        Some(&user.token),
        body,
    )
    .await
}

/// The published reviews about `user_id` and their summary, as `viewer` sees them.
async fn about(app: &TestApp, viewer: &TestUser, user_id: &str) -> Value {
    app.get(
        &format!("/api/users/{user_id}/reviews"),
        Some(&viewer.token),
    )
    .await
    .expect(200)
}

/// The reviews of a request that `viewer` sees.
async fn of_request(app: &TestApp, viewer: &TestUser, request_id: &str) -> Vec<Value> {
    app.get(
        &format!("/api/requests/{request_id}/reviews"),
        Some(&viewer.token),
    )
    .await
    .expect(200)["items"]
        .as_array()
        .expect("items")
        .clone()
}

async fn me(app: &TestApp, user: &TestUser) -> Value {
    app.get("/api/users/me", Some(&user.token))
        .await
        .expect(200)
}

/// The `review:published` payloads `socket` receives within `within`.
async fn published(socket: &mut SocketClient, within: Duration) -> Vec<Value> {
    socket
        .drain(within)
        .await
        .into_iter()
        .filter(|r| r.event == "review:published")
        .map(|r| {
            assert!(r.args[1]["id"].is_i64(), "durable: {r:?}");
            r.args[0].clone()
        })
        .collect()
}

/// `seller` (made by the caller, with a payout address) wins a new buyer's request at
/// `price`, is paid and the buyer completes it.
async fn completed_with(app: &TestApp, seller: &TestUser, price: &str) -> CompletedRequest {
    let open = app.open_request().await;
    let offer_id = app.make_offer(seller, &open.request_id, price).await;
    let accepted = app
        .accept(OfferedRequest {
            buyer: open.buyer,
            seller: seller.clone(),
            request_id: open.request_id,
            offer_id,
            price: price.to_owned(),
        })
        .await;
    let paid = app.pay_in_sandbox(accepted).await;
    app.complete(paid).await
}

#[tokio::test]
async fn a_review_stays_hidden_until_the_other_party_reviews_then_both_are_published_at_once() {
    let app = TestApp::spawn().await;
    let done = app.completed_request("200.00").await;
    let (buyer, seller, request_id) = (&done.buyer, &done.seller, &done.request_id);
    let stranger = app.buyer().await;
    let mut buyer_socket = app.socket(buyer).await;
    let mut seller_socket = app.socket(seller).await;
    let mut stranger_socket = app.socket(&stranger).await;

    let first = review(
        &app,
        buyer,
        request_id,
        json!({ "rating": 5, "comment": "  Exactly as described, shipped the next day.  " }),
    )
    .await
    .expect(201);
    assert_eq!(first["requestId"], request_id.as_str());
    assert_eq!(first["authorId"], buyer.id.as_str());
    assert_eq!(first["subjectId"], seller.id.as_str());
    assert_eq!(first["rating"], 5);
    assert_eq!(
        first["comment"],
        "Exactly as described, shipped the next day."
    );
    assert_eq!(first["publishedAt"], Value::Null);

    // Hidden: its author sees it, the reviewed seller and everyone else do not.
    assert_eq!(
        of_request(&app, buyer, request_id).await,
        vec![first.clone()]
    );
    assert!(of_request(&app, seller, request_id).await.is_empty());
    let summary = about(&app, &stranger, &seller.id).await;
    assert_eq!(summary["items"], json!([]));
    assert_eq!(summary["summary"], json!({ "average": null, "count": 0 }));
    assert_eq!(
        me(&app, seller).await["rating"],
        json!({ "average": null, "count": 0 })
    );
    assert!(
        published(&mut seller_socket, Duration::from_millis(500))
            .await
            .is_empty()
    );

    // The seller answers: both are published at once.
    let second = review(&app, seller, request_id, json!({ "rating": 3 }))
        .await
        .expect(201);
    assert_eq!(second["subjectId"], buyer.id.as_str());
    assert_eq!(second["comment"], Value::Null);
    assert!(second["publishedAt"].is_string(), "{second}");
    let both = of_request(&app, seller, request_id).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(
        both.iter()
            .all(|r| r["publishedAt"] == second["publishedAt"])
    );
    assert_eq!(both, of_request(&app, buyer, request_id).await);

    // `review:published` reaches both parties' rooms, once per review, and no one else.
    for socket in [&mut buyer_socket, &mut seller_socket] {
        let mut got = published(socket, QUIET).await;
        got.sort_by_key(|r| r["authorId"].as_str().map(str::to_owned));
        let mut want = both.clone();
        want.sort_by_key(|r| r["authorId"].as_str().map(str::to_owned));
        assert_eq!(got, want);
    }
    assert!(
        published(&mut stranger_socket, Duration::from_millis(200))
            .await
            .is_empty()
    );

    // Ratings and the list about each user.
    assert_eq!(
        me(&app, seller).await["rating"],
        json!({ "average": 5.0, "count": 1 })
    );
    assert_eq!(
        me(&app, buyer).await["rating"],
        json!({ "average": 3.0, "count": 1 })
    );
    let about_seller = about(&app, &stranger, &seller.id).await;
    assert_eq!(about_seller["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(about_seller["items"][0]["id"], first["id"]);
    assert_eq!(
        about_seller["summary"],
        json!({ "average": 5.0, "count": 1 })
    );

    // The reviewed user is notified (the author is not notified of their own review).
    app.settled().await;
    let notes = app
        .get("/api/notifications?limit=100", Some(&seller.token))
        .await
        .expect(200);
    let about_review: Vec<&Value> = notes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|n| n["kind"] == "review:published")
        .collect();
    assert_eq!(about_review.len(), 1, "{notes}");
    assert_eq!(about_review[0]["data"]["reviewId"], first["id"]);
    assert!(
        about_review[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("Rated 5 out of 5") && b.contains("shipped the next day")),
        "{}",
        about_review[0]
    );
}

#[tokio::test]
async fn a_lone_review_is_published_once_when_the_window_closes_and_later_ones_are_refused() {
    let app = TestApp::spawn_with(|env| {
        env.insert("REVIEW_WINDOW_SECS".into(), "2".into());
    })
    .await;
    let done = app.completed_request("60.00").await;
    let (buyer, seller, request_id) = (&done.buyer, &done.seller, &done.request_id);
    let mut seller_socket = app.socket(seller).await;
    let mut buyer_socket = app.socket(buyer).await;
    let mine = review(
        &app,
        buyer,
        request_id,
        json!({ "rating": 4, "comment": "Good." }),
    )
    .await
    .expect(201);
    assert_eq!(mine["publishedAt"], Value::Null);

    // Nobody answers: the deadline publishes it, once.
    let got = seller_socket.expect("review:published", WAIT).await;
    assert_eq!(got[0]["id"], mine["id"]);
    assert!(got[0]["publishedAt"].is_string());
    assert_eq!(
        published(&mut buyer_socket, QUIET).await.len(),
        1,
        "the author hears of it too"
    );
    assert!(
        published(&mut seller_socket, QUIET).await.is_empty(),
        "once"
    );
    let listed = about(&app, buyer, &seller.id).await;
    assert_eq!(listed["items"][0]["id"], mine["id"]);
    assert_eq!(listed["summary"], json!({ "average": 4.0, "count": 1 }));

    // The window is closed for the seller now.
    let late = review(&app, seller, request_id, json!({ "rating": 1 })).await;
    assert_eq!(
        (late.status, late.code()),
        (409, "review_window_closed"),
        "{}",
        late.body
    );
    assert_eq!(me(&app, buyer).await["rating"]["count"], 0);
}

#[tokio::test]
async fn the_average_is_the_rounded_mean_of_published_ratings_and_lists_are_newest_first() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let mut ids = Vec::new();
    for (price, rating) in [("10.00", 5), ("20.00", 4), ("30.00", 4)] {
        let done = completed_with(&app, &seller, price).await;
        let by_buyer = review(
            &app,
            &done.buyer,
            &done.request_id,
            json!({ "rating": rating }),
        )
        .await
        .expect(201);
        review(&app, &seller, &done.request_id, json!({ "rating": 5 }))
            .await
            .expect(201);
        ids.push(by_buyer["id"].clone());
    }
    // A hidden one does not count.
    let hidden = completed_with(&app, &seller, "40.00").await;
    review(
        &app,
        &hidden.buyer,
        &hidden.request_id,
        json!({ "rating": 1 }),
    )
    .await
    .expect(201);

    let rating = json!({ "average": 4.33, "count": 3 });
    assert_eq!(me(&app, &seller).await["rating"], rating);
    let viewer = app.buyer().await;
    let first = app
        .get(
            &format!("/api/users/{}/reviews?limit=2", seller.id),
            Some(&viewer.token),
        )
        .await
        .expect(200);
    assert_eq!(first["summary"], rating, "over all of them, not the page");
    let page: Vec<Value> = first["items"].as_array().expect("items").clone();
    assert_eq!(page.len(), 2);
    let cursor = first["nextCursor"].as_str().expect("a next page");
    let rest = app
        .get(
            &format!("/api/users/{}/reviews?limit=2&cursor={cursor}", seller.id),
            Some(&viewer.token),
        )
        .await
        .expect(200);
    assert_eq!(rest["nextCursor"], Value::Null);
    let listed: Vec<Value> = page
        .iter()
        .chain(rest["items"].as_array().expect("items"))
        .map(|r| r["id"].clone())
        .collect();
    ids.reverse();
    assert_eq!(listed, ids, "newest first");

    // A buyer choosing between offers sees the seller's rating in the listing.
    let open = app.open_request().await;
    app.make_offer(&seller, &open.request_id, "99.00").await;
    let offers = app
        .get(
            &format!("/api/requests/{}/offers", open.request_id),
            Some(&open.buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(
        offers["items"][0]["seller"],
        json!({ "id": seller.id, "name": "A seller", "rating": rating })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_parties_reviewing_at_the_same_moment_publish_both_exactly_once() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        let done = app.completed_request("45.00").await;
        let mut buyer_socket = app.socket(&done.buyer).await;
        let (a, b) = tokio::join!(
            review(&app, &done.buyer, &done.request_id, json!({ "rating": 2 })),
            review(&app, &done.seller, &done.request_id, json!({ "rating": 4 })),
        );
        assert_eq!((a.status, b.status), (201, 201), "{} {}", a.body, b.body);
        let both = of_request(&app, &done.buyer, &done.request_id).await;
        assert_eq!(both.len(), 2);
        assert!(
            both.iter().all(|r| r["publishedAt"].is_string()),
            "{both:?}"
        );
        assert_eq!(published(&mut buyer_socket, QUIET).await.len(), 2);
        assert_eq!(
            me(&app, &done.buyer).await["rating"],
            json!({ "average": 4.0, "count": 1 })
        );
        assert_eq!(
            me(&app, &done.seller).await["rating"],
            json!({ "average": 2.0, "count": 1 })
        );
    }
}

#[tokio::test]
async fn reviews_check_their_fields_their_author_and_the_request() {
    let app = TestApp::spawn().await;
    let done = app.completed_request("70.00").await;
    let (buyer, seller, id) = (&done.buyer, &done.seller, &done.request_id);

    for (body, field) in [
        (json!({ "rating": 0 }), "rating"),
        (json!({ "rating": 6 }), "rating"),
        (json!({ "rating": -1 }), "rating"),
        (json!({ "rating": 2.5 }), "rating"),
        (json!({ "rating": "5" }), "rating"),
        (json!({ "rating": null }), "rating"),
        (json!({ "comment": "no rating" }), "body"),
        (
            json!({ "rating": 4, "comment": "x".repeat(2001) }),
            "comment",
        ),
        (json!({ "rating": 4, "comment": "a\u{0}b" }), "comment"),
        (json!({ "rating": 4, "comment": 7 }), "comment"),
    ] {
        let r = review(&app, buyer, id, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.iter().any(|f| f.contains(field)) || field == "body",
            "{body}: {}",
            r.body
        );
    }
    let malformed = app
        .send(
            app.http
                .post(app.url(&format!("/api/requests/{id}/reviews")))
                .bearer_auth(&buyer.token)
                .header("content-type", "application/json")
                .body("{\"rating\": 5"),
        )
        .await;
    assert_eq!(malformed.status, 400);
    let anonymous = app
        .post(
            &format!("/api/requests/{id}/reviews"),
            None,
            json!({ "rating": 5 }),
        )
        .await;
    assert_eq!(anonymous.status, 401);

    // Who: admins never review (403); anyone who is not a party gets the unknown id's 404.
    let admin = app.admin().await;
    let r = review(&app, &admin, id, json!({ "rating": 5 })).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    for outsider in [app.buyer().await, app.seller().await] {
        let r = review(&app, &outsider, id, json!({ "rating": 5 })).await;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
        let r = app
            .get(
                &format!("/api/requests/{id}/reviews"),
                Some(&outsider.token),
            )
            .await;
        assert_eq!(r.status, 404);
    }
    let r = review(
        &app,
        buyer,
        &uuid::Uuid::now_v7().to_string(),
        json!({ "rating": 5 }),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = app
        .get(
            &format!("/api/users/{}/reviews", uuid::Uuid::now_v7()),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status, 404);

    // Once per author, the longest comment accepted.
    review(
        &app,
        buyer,
        id,
        json!({ "rating": 4, "comment": "y".repeat(2000) }),
    )
    .await
    .expect(201);
    let again = review(&app, buyer, id, json!({ "rating": 5 })).await;
    assert_eq!((again.status, again.code()), (409, "review_exists"));
    review(&app, seller, id, json!({ "rating": 5 }))
        .await
        .expect(201);
    let again = review(&app, seller, id, json!({ "rating": 5 })).await;
    assert_eq!((again.status, again.code()), (409, "review_exists"));

    // Before completion, whatever the stage, and after a refund: not completed.
    let open = app.open_request().await;
    let r = review(&app, &open.buyer, &open.request_id, json!({ "rating": 5 })).await;
    assert_eq!((r.status, r.code()), (409, "request_not_completed"));
    let paid = app.paid_request("20.00").await;
    for party in [&paid.buyer, &paid.seller] {
        let r = review(&app, party, &paid.request_id, json!({ "rating": 5 })).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "request_not_completed"),
            "{}",
            r.body
        );
    }
    let delivered = app.deliver(paid).await;
    let r = review(
        &app,
        &delivered.buyer,
        &delivered.request_id,
        json!({ "rating": 5 }),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "request_not_completed"));
    app.patch(
        "/api/users/me",
        Some(&delivered.buyer.token),
        json!({ "payoutAddress": "bc1q-refund-me" }),
    )
    .await
    .expect(200);
    let open = app
        .dispute(delivered.as_paid(), Party::Buyer, "Never came.")
        .await;
    let refunded = app.resolve(open, "refund_buyer", "Lost in transit.").await;
    let r = review(
        &app,
        &refunded.buyer,
        &refunded.request_id,
        json!({ "rating": 1 }),
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "request_not_completed"));
}

#[tokio::test]
async fn a_request_completed_by_a_dispute_resolution_can_be_reviewed() {
    let app = TestApp::spawn().await;
    let resolved = app.resolved_dispute("55.00").await;
    let r = review(
        &app,
        &resolved.seller,
        &resolved.request_id,
        json!({ "rating": 2 }),
    )
    .await
    .expect(201);
    assert_eq!(r["subjectId"], resolved.buyer.id.as_str());
    review(
        &app,
        &resolved.buyer,
        &resolved.request_id,
        json!({ "rating": 3 }),
    )
    .await
    .expect(201);
    let published = eventually(WAIT, || async {
        let about = about(&app, &resolved.seller, &resolved.buyer.id).await;
        (about["summary"]["count"] == 1).then_some(about)
    })
    .await
    .expect("published");
    assert_eq!(published["items"][0]["rating"], 2);
}

/// The same rooms as the official browser client sees them (`tests/js/reviews`), with one
/// party on WebSocket and the other on long-polling.
#[tokio::test]
async fn the_official_socket_io_client_receives_review_published_in_the_parties_rooms_only() {
    ensure_packages(&["socket.io-client"]).await;
    let app = TestApp::spawn().await;
    let done = app.completed_request("35.00").await;
    let stranger = app.buyer().await;
    node_test(
        "reviews/published.test.mjs",
        &[
            ("BASE_URL", app.base.as_str()),
            ("REQUEST_ID", done.request_id.as_str()),
            ("BUYER_TOKEN", done.buyer.token.as_str()),
            ("SELLER_TOKEN", done.seller.token.as_str()),
            ("STRANGER_TOKEN", stranger.token.as_str()),
        ],
        1,
    )
    .await;
    assert_eq!(
        of_request(&app, &done.buyer, &done.request_id).await.len(),
        2
    );
}

#[tokio::test]
async fn the_review_routes_are_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    let post = &doc["paths"]["/api/requests/{id}/reviews"]["post"];
    for status in ["201", "400", "401", "403", "404", "409", "422"] {
        assert!(
            post["responses"][status].is_object(),
            "POST reviews {status}"
        );
    }
    assert!(doc["paths"]["/api/requests/{id}/reviews"]["get"].is_object());
    assert!(doc["paths"]["/api/users/{id}/reviews"]["get"]["responses"]["200"].is_object());
    assert!(doc["paths"]["/api/requests/{id}/deliver"]["post"]["responses"]["409"].is_object());
    let schemas = &doc["components"]["schemas"];
    let mut required: Vec<&str> = schemas["Review"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(
        required,
        [
            "authorId",
            "comment",
            "createdAt",
            "id",
            "publishedAt",
            "rating",
            "requestId",
            "subjectId"
        ],
        "the server always writes every field"
    );
    assert!(schemas["User"]["properties"]["rating"].is_object());
    assert!(schemas["PurchaseRequest"]["properties"]["autoCompleteAt"].is_object());
    let asyncapi = app.get("/api/asyncapi.json", None).await.expect(200);
    assert!(
        asyncapi.to_string().contains("review:published"),
        "the AsyncAPI document names the event"
    );
}
