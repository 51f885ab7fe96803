//! `Idempotency-Key` (contract "Conventions"): a retried POST with the same key and body gets
//! the first answer again and changes nothing; another body is 422; a duplicate while the first
//! runs is 409 or the replay, never a second row; keys belong to their caller; a 5xx is not
//! kept.

use marketplace_tests::shkeeper::{InvoiceMode, StandIn, app_with, count_events};
use marketplace_tests::{Resp, TestApp, TestUser};
use serde_json::{Value, json};

fn bike() -> Value {
    json!({ "title": "A used road bike", "description": "56 cm frame", "category": "bikes" })
}

async fn post_with_key(app: &TestApp, user: &TestUser, path: &str, key: &str, body: Value) -> Resp {
    app.send(
        app.http
            .post(app.url(path))
            .bearer_auth(&user.token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await
}

async fn my_requests(app: &TestApp, buyer: &TestUser) -> usize {
    app.get("/api/requests?mine=true", Some(&buyer.token))
        .await
        .expect(200)["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_gets_the_first_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let first = post_with_key(&app, &buyer, "/api/requests", "create-bike-1", bike()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(first.header("idempotent-replayed").is_none());
    let again = post_with_key(&app, &buyer, "/api/requests", "create-bike-1", bike()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the very same answer");
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert!(again.content_type.starts_with("application/json"));
    assert_eq!(my_requests(&app, &buyer).await, 1, "one row");
    assert_eq!(count_events(&app, "request:created").await, 1, "one event");

    // An error answer is kept too (it is not a 5xx): the same 409 again, nothing new.
    let seller = app.seller().await;
    let rid = first.body["id"].as_str().unwrap();
    let path = format!("/api/requests/{rid}/offers");
    let offer =
        json!({ "price": { "amount": "50.00", "currency": "USD" }, "message": "In stock." });
    assert_eq!(
        post_with_key(&app, &seller, &path, "offer-1", offer.clone())
            .await
            .status,
        201
    );
    let replayed = post_with_key(&app, &seller, &path, "offer-1", offer.clone()).await;
    assert_eq!(replayed.status, 201);
    assert_eq!(
        replayed.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(count_events(&app, "request:offer-received").await, 1);
    // Without a key the handler's own rule answers a second offer.
    let dup = app.post(&path, Some(&seller.token), offer).await;
    assert_eq!((dup.status, dup.code()), (409, "offer_exists"));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_a_bad_key_is_422() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    post_with_key(&app, &buyer, "/api/requests", "k-1", bike())
        .await
        .expect(201);
    let mut other = bike();
    other["title"] = json!("A used mountain bike");
    let r = post_with_key(&app, &buyer, "/api/requests", "k-1", other).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "idempotency_key_reused"),
        "{}",
        r.body
    );
    for bad in ["", "has space", &"k".repeat(256)] {
        let r = post_with_key(&app, &buyer, "/api/requests", bad, bike()).await;
        assert_eq!(r.status, 422, "{bad:?}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(my_requests(&app, &buyer).await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_never_make_two_rows() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let answers = futures::future::join_all(
        (0..12).map(|_| post_with_key(&app, &buyer, "/api/requests", "burst", bike())),
    )
    .await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| &r.body["id"])
        .collect();
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|id| *id == created[0]),
        "one request id: {created:?}"
    );
    for r in &answers {
        assert!(
            r.status == 201 || (r.status == 409 && r.code() == "idempotency_key_in_flight"),
            "{} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(my_requests(&app, &buyer).await, 1);
    assert_eq!(count_events(&app, "request:created").await, 1);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.buyer().await, app.buyer().await);
    let ra = post_with_key(&app, &a, "/api/requests", "shared-key", bike())
        .await
        .expect(201);
    let rb = post_with_key(&app, &b, "/api/requests", "shared-key", bike()).await;
    assert_eq!(rb.status, 201);
    assert!(rb.header("idempotent-replayed").is_none());
    assert_ne!(rb.body["id"], ra["id"]);
    assert_eq!(rb.body["buyerId"], b.id.as_str());
}

#[tokio::test]
async fn a_5xx_answer_is_not_kept_and_the_retry_runs_again() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("30.00").await;
    let body = json!({ "requestId": accepted.request_id, "crypto": "BTC" });
    standin.script(|s| s.invoice = InvoiceMode::Error("BTC payment gateway is unavailable".into()));
    let failed = post_with_key(
        &app,
        &accepted.buyer,
        "/api/payments",
        "pay-1",
        body.clone(),
    )
    .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    standin.script(|s| s.invoice = InvoiceMode::Success);
    let paid = post_with_key(
        &app,
        &accepted.buyer,
        "/api/payments",
        "pay-1",
        body.clone(),
    )
    .await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert!(
        paid.header("idempotent-replayed").is_none(),
        "the 502 was not replayed"
    );
    let again = post_with_key(&app, &accepted.buyer, "/api/payments", "pay-1", body).await;
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.body["id"], paid.body["id"]);
    assert_eq!(count_events(&app, "payment:created").await, 1);
}

#[tokio::test]
async fn every_post_that_changes_something_documents_the_header() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        let Some(post) = item.get("post") else {
            continue;
        };
        let has = post["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
        });
        if path.starts_with("/api/webhooks/") {
            assert!(!has, "{path}: webhooks have their own dedupe");
        } else {
            assert!(has, "{path} does not document Idempotency-Key");
            assert!(post["responses"]["409"].is_object(), "{path} lacks 409");
            assert!(post["responses"]["422"].is_object(), "{path} lacks 422");
            documented += 1;
        }
    }
    assert!(documented > 10, "{documented}");
}

/// A frontend on another origin (listed in `CORS_ORIGINS`) may send the header and read the
/// replay marker; reactions' `PUT` passes the preflight too.
#[tokio::test]
async fn a_listed_origin_may_send_the_key_and_read_the_replay_marker() {
    let app = TestApp::spawn_with(|env| {
        env.insert("CORS_ORIGINS".into(), "https://app.example".into());
    })
    .await;
    let preflight = |method: &'static str, headers: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/requests"))
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", headers)
            .send()
    };
    let post = preflight("POST", "authorization,content-type,idempotency-key")
        .await
        .unwrap();
    assert!(post.status().is_success(), "{}", post.status());
    let allowed = post.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    let put = preflight("PUT", "authorization").await.unwrap();
    let methods = put.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("PUT"), "{methods}");

    let buyer = app.buyer().await;
    let r = app
        .send(
            app.http
                .post(app.url("/api/requests"))
                .bearer_auth(&buyer.token)
                .header("Origin", "https://app.example")
                .header("Idempotency-Key", "cors-1")
                .json(&bike()),
        )
        .await;
    assert_eq!(r.status, 201);
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("idempotent-replayed"), "{exposed}");
}
