//! Delivery and automatic completion (issue 21): the accepted seller marks a paid request
//! `delivered`; its buyer completes or disputes it, or else it completes by itself
//! `AUTO_COMPLETE_AFTER_SECS` later, exactly as if the buyer had (the same
//! `request:status-updated`, the same single release payout), once: across a restart and on a
//! cluster whose node that scheduled it was killed. Every other move is a 409.

use std::collections::HashMap;
use std::time::Duration;

use marketplace_tests::cluster::{Cluster, ProcessNode, postgres_or_skip};
use marketplace_tests::story::{DeliveredRequest, Party};
use marketplace_tests::{TestApp, TestUser, eventually};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
/// How long a socket or the payouts are watched to show that nothing more arrives.
const QUIET: Duration = Duration::from_millis(2500);

/// An app whose delivered requests complete by themselves after `secs`.
async fn app_completing_after(secs: u64) -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("AUTO_COMPLETE_AFTER_SECS".into(), secs.to_string());
    })
    .await
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.to_utc())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

/// The payouts of this request that `token`'s holder sees.
async fn payouts_of(app: &TestApp, token: &str, request_id: &str) -> Vec<Value> {
    let page = app
        .get("/api/payouts?limit=100", Some(token))
        .await
        .expect(200);
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["requestId"] == request_id)
        .cloned()
        .collect()
}

/// Waits until the request has `status` as its buyer sees it.
async fn wait_status(app: &TestApp, buyer: &TestUser, request_id: &str, status: &str) {
    let reached = eventually(WAIT, || async {
        (app.request_status(&buyer.token, request_id).await == status).then_some(())
    })
    .await;
    assert!(
        reached.is_some(),
        "the request did not become {status}; it is {}",
        app.request_status(&buyer.token, request_id).await
    );
}

/// The automatic-completion jobs still in the timers table.
async fn auto_complete_jobs(app: &TestApp) -> u64 {
    use kernel::timers::entity;
    let db = app.db().await;
    let n = entity::Entity::find()
        .filter(entity::Column::Kind.eq("requests.auto-complete"))
        .count(&db)
        .await
        .expect("count timers");
    db.close().await.ok();
    n
}

/// The `request:status-updated` payloads of this request among what `socket` receives within
/// `within`.
async fn statuses(
    socket: &mut marketplace_tests::socket::SocketClient,
    request_id: &str,
    within: Duration,
) -> Vec<String> {
    socket
        .drain(within)
        .await
        .into_iter()
        .filter(|r| r.event == "request:status-updated" && r.args[0]["requestId"] == request_id)
        .map(|r| r.args[0]["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_accepted_seller_delivers_and_the_buyer_completes_it_once_with_one_payout() {
    let app = TestApp::spawn().await;
    let paid = app.paid_request("120.00").await;
    assert_eq!(
        app.get(
            &format!("/api/requests/{}", paid.request_id),
            Some(&paid.buyer.token)
        )
        .await
        .expect(200)["deliveredAt"],
        Value::Null,
        "null until delivered"
    );
    app.settled().await;
    let mut buyer_socket = app.socket(&paid.buyer).await;

    let delivered = app.deliver(paid).await;
    let r = &delivered.request;
    assert_eq!(r["status"], "delivered");
    let (at, due) = (time(&r["deliveredAt"]), time(&r["autoCompleteAt"]));
    assert_eq!(
        (due - at).num_seconds(),
        1_209_600,
        "14 days by default: {r}"
    );
    assert!((chrono::Utc::now() - at).num_seconds().abs() < 60, "{r}");
    let seen = app
        .get(
            &format!("/api/requests/{}", delivered.request_id),
            Some(&delivered.seller.token),
        )
        .await
        .expect(200);
    assert_eq!(seen["autoCompleteAt"], r["autoCompleteAt"]);
    let update = buyer_socket.expect("request:status-updated", WAIT).await;
    assert_eq!(
        update[0],
        json!({ "requestId": delivered.request_id, "status": "delivered" })
    );
    assert!(update[1]["id"].is_i64(), "durable: {update:?}");
    assert_eq!(auto_complete_jobs(&app).await, 1);

    let completed = app.complete(delivered.as_paid()).await;
    assert_eq!(
        statuses(&mut buyer_socket, &completed.request_id, QUIET).await,
        vec!["completed"]
    );
    let payout = app
        .wait_payout(&completed.seller.token, "completed", WAIT)
        .await;
    assert_eq!(payout["kind"], "release");
    assert_eq!(
        payouts_of(&app, &completed.seller.token, &completed.request_id)
            .await
            .len(),
        1
    );
    assert_eq!(
        auto_complete_jobs(&app).await,
        0,
        "completing ends the timer"
    );
    let done = app
        .get(
            &format!("/api/requests/{}", completed.request_id),
            Some(&completed.buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(done["deliveredAt"], r["deliveredAt"], "kept as the record");
}

#[tokio::test]
async fn only_the_accepted_seller_delivers_only_a_paid_request_and_other_moves_are_409() {
    let app = TestApp::spawn().await;
    let offers = app.request_with_offers(&["100.00", "90.00"]).await;
    let (buyer, winner, loser) = (&offers.buyer, &offers.sellers[0], &offers.sellers[1]);
    let deliver = |id: &str, token: &str| {
        let (path, token) = (format!("/api/requests/{id}/deliver"), token.to_owned());
        let app = &app;
        async move { app.post(&path, Some(&token), json!({})).await }
    };
    let offer_id = offers.offers[0]["id"]
        .as_str()
        .expect("offer id")
        .to_owned();
    app.post(
        &format!("/api/offers/{offer_id}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    let id = offers.request_id.clone();

    // Accepted, not paid yet: the seller cannot deliver.
    let early = deliver(&id, &winner.token).await;
    assert_eq!(
        (early.status, early.code()),
        (409, "invalid_transition"),
        "{}",
        early.body
    );
    // The buyer's complete needs paid or delivered.
    let complete = app
        .post(
            &format!("/api/requests/{id}/complete"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(complete.status, 409, "{}", complete.body);

    let payment = app.create_payment(buyer, &id).await;
    let payment_id = payment["id"].as_str().expect("payment id");
    app.post(
        &format!("/api/sandbox/payments/{payment_id}/simulate"),
        Some(&buyer.token),
        json!({ "status": "PAID" }),
    )
    .await
    .expect(200);
    assert_eq!(app.request_status(&buyer.token, &id).await, "paid");

    // Roles that never deliver: 403 whatever the id; a seller whose offer lost: 404, like an
    // unknown id.
    let admin = app.admin().await;
    for who in [&buyer.token, &admin.token] {
        let r = deliver(&id, who).await;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
    }
    let r = deliver(&id, &loser.token).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    let r = deliver(&uuid::Uuid::now_v7().to_string(), &winner.token).await;
    assert_eq!(r.status, 404);
    let r = app
        .post(&format!("/api/requests/{id}/deliver"), None, json!({}))
        .await;
    assert_eq!(r.status, 401);

    deliver(&id, &winner.token).await.expect(200);
    let twice = deliver(&id, &winner.token).await;
    assert_eq!((twice.status, twice.code()), (409, "invalid_transition"));
    let cancel = app
        .post(
            &format!("/api/requests/{id}/cancel"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!((cancel.status, cancel.code()), (409, "invalid_transition"));

    // A delivered request can be disputed by either party; then it is no longer delivered.
    let dispute = app
        .post(
            &format!("/api/requests/{id}/disputes"),
            Some(&winner.token),
            json!({ "reason": "The buyer says nothing came, the carrier says it did." }),
        )
        .await
        .expect(201);
    assert_eq!(dispute["requestId"], id.as_str());
    assert_eq!(app.request_status(&buyer.token, &id).await, "disputed");
    let after = deliver(&id, &winner.token).await;
    assert_eq!((after.status, after.code()), (409, "invalid_transition"));
    let complete = app
        .post(
            &format!("/api/requests/{id}/complete"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (complete.status, complete.code()),
        (409, "invalid_transition")
    );

    // The list filter knows the new status.
    let listed = app
        .get("/api/requests?status=delivered", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_delivered_request_completes_by_itself_once_with_exactly_one_payout() {
    let app = app_completing_after(2).await;
    let paid = app.paid_request("75.00").await;
    // Its `paid` has reached every subscriber (sockets included): the sockets below see only
    // what comes after.
    app.settled().await;
    let mut buyer_socket = app.socket(&paid.buyer).await;
    let mut seller_socket = app.socket(&paid.seller).await;
    let delivered = app.deliver(paid).await;
    let DeliveredRequest {
        buyer,
        seller,
        request_id,
        request,
        ..
    } = &delivered;
    let due = time(&request["autoCompleteAt"]);
    assert_eq!((due - time(&request["deliveredAt"])).num_seconds(), 2);
    assert_eq!(
        statuses(&mut buyer_socket, request_id, Duration::from_millis(500)).await,
        vec!["delivered"]
    );

    // Nobody acts: it completes by itself, with the same event the buyer's complete sends.
    let args = buyer_socket.expect("request:status-updated", WAIT).await;
    assert_eq!(
        args[0],
        json!({ "requestId": request_id, "status": "completed" })
    );
    assert!(
        chrono::Utc::now() >= due,
        "completed before its time ({due})"
    );
    // And the same payout: one release to the seller, completed by the sandbox.
    let created = seller_socket.expect("payout:created", WAIT).await;
    assert_eq!(created[0]["kind"], "release");
    assert_eq!(created[0]["requestId"], request_id.as_str());
    app.wait_payout(&seller.token, "completed", WAIT).await;

    // Once: nothing more comes, and the buyer can no longer complete it.
    assert_eq!(
        statuses(&mut buyer_socket, request_id, QUIET).await,
        Vec::<String>::new()
    );
    assert_eq!(seller_socket.count("payout:created", QUIET).await, 0);
    assert_eq!(payouts_of(&app, &seller.token, request_id).await.len(), 1);
    let late = app
        .post(
            &format!("/api/requests/{request_id}/complete"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "invalid_transition"));
    assert_eq!(auto_complete_jobs(&app).await, 0);
    // Completed by itself is completed: the parties may review each other.
    app.post(
        &format!("/api/requests/{request_id}/reviews"),
        Some(&buyer.token),
        json!({ "rating": 5 }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn a_dispute_opened_before_the_deadline_stops_the_automatic_completion() {
    let app = app_completing_after(2).await;
    let delivered = app.delivered_request("80.00").await;
    assert_eq!(auto_complete_jobs(&app).await, 1);
    let open = app
        .dispute(delivered.as_paid(), Party::Buyer, "The parcel was empty.")
        .await;
    assert_eq!(
        auto_complete_jobs(&app).await,
        0,
        "the dispute cancels the timer"
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        app.request_status(&open.buyer.token, &open.request_id)
            .await,
        "disputed"
    );
    assert!(
        payouts_of(&app, &open.seller.token, &open.request_id)
            .await
            .is_empty()
    );
    // An admin still decides: releasing completes it and pays the seller once.
    let resolved = app
        .resolve(open, "release_to_seller", "Carrier proof of delivery.")
        .await;
    app.wait_payout(&resolved.seller.token, "completed", WAIT)
        .await;
    assert_eq!(
        payouts_of(&app, &resolved.seller.token, &resolved.request_id)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn the_automatic_completion_happens_once_after_a_kill_and_a_restart_on_the_same_database() {
    let mut app = app_completing_after(3).await;
    let delivered = app.delivered_request("90.00").await;
    let due = time(&delivered.request["autoCompleteAt"]);
    // Killed at once: no graceful stop, and the due time passes while nothing runs.
    app.kill().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(chrono::Utc::now() > due);

    let app = TestApp::start(app.env.clone()).await;
    wait_status(&app, &delivered.buyer, &delivered.request_id, "completed").await;
    app.wait_payout(&delivered.seller.token, "completed", WAIT)
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        payouts_of(&app, &delivered.seller.token, &delivered.request_id)
            .await
            .len(),
        1
    );
    // The log holds one completion of it.
    let events = app
        .get("/api/events?limit=100", Some(&delivered.buyer.token))
        .await
        .expect(200);
    let completions = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| {
            e["event"] == "request:status-updated"
                && e["payload"]["requestId"] == delivered.request_id.as_str()
                && e["payload"]["status"] == "completed"
        })
        .count();
    assert_eq!(completions, 1);
    assert_eq!(auto_complete_jobs(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buyer_completing_as_the_timer_fires_still_completes_once_with_one_payout() {
    let app = app_completing_after(1).await;
    let mut rounds = Vec::new();
    for _ in 0..4 {
        rounds.push(app.paid_request("30.00").await);
    }
    let mut delivered = Vec::new();
    for paid in rounds {
        delivered.push(app.deliver(paid).await);
    }
    // Each buyer completes right about when its timer is due.
    let due = delivered
        .iter()
        .map(|d| time(&d.request["autoCompleteAt"]))
        .max()
        .expect("some");
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    let answers = futures::future::join_all(delivered.iter().map(|d| {
        let path = format!("/api/requests/{}/complete", d.request_id);
        let app = &app;
        async move { app.post(&path, Some(&d.buyer.token), json!({})).await }
    }))
    .await;
    for (d, answer) in delivered.iter().zip(&answers) {
        assert!(
            answer.status == 200 || (answer.status == 409 && answer.code() == "invalid_transition"),
            "{}",
            answer.body
        );
        wait_status(&app, &d.buyer, &d.request_id, "completed").await;
    }
    app.settled().await;
    tokio::time::sleep(QUIET).await;
    for d in &delivered {
        assert_eq!(
            payouts_of(&app, &d.seller.token, &d.request_id).await.len(),
            1
        );
    }
}

#[tokio::test]
async fn on_a_three_node_cluster_a_timer_whose_node_was_killed_completes_once_on_another() {
    if !postgres_or_skip(
        "on_a_three_node_cluster_a_timer_whose_node_was_killed_completes_once_on_another",
    ) {
        return;
    }
    let adjust = |env: &mut HashMap<String, String>| {
        env.insert("AUTO_COMPLETE_AFTER_SECS".into(), "4".into());
        env.insert("TIMER_LEASE_SECS".into(), "2".into());
    };
    // The process node starts first (so it also holds the side-effect subscribers' leases),
    // then two in-process nodes.
    let mut cluster =
        Cluster::start_with(0, &marketplace_tests::cluster::redis_url(), adjust).await;
    let mut env = cluster.env();
    adjust(&mut env);
    let mut doomed = ProcessNode::spawn(env.clone()).await;
    cluster.nodes.push(TestApp::start(env.clone()).await);
    cluster.nodes.push(TestApp::start(env).await);
    let (p, a, b) = (&doomed.app, cluster.node(0), cluster.node(1));

    // The whole story on the doomed node, which schedules the timer with the delivery.
    let delivered = p.delivered_request("150.00").await;
    let (buyer, seller, request_id) = (&delivered.buyer, &delivered.seller, &delivered.request_id);
    let mut buyer_on_a = a.socket(buyer).await;
    let mut seller_on_b = b.socket(seller).await;
    doomed.kill9();

    let args = buyer_on_a
        .expect("request:status-updated", Duration::from_secs(30))
        .await;
    assert_eq!(
        args[0],
        json!({ "requestId": request_id, "status": "completed" })
    );
    let created = seller_on_b
        .expect("payout:created", Duration::from_secs(30))
        .await;
    assert_eq!(created[0]["requestId"], request_id.as_str());
    b.wait_payout(&seller.token, "completed", Duration::from_secs(30))
        .await;
    assert_eq!(
        statuses(&mut buyer_on_a, request_id, QUIET).await,
        Vec::<String>::new()
    );
    assert_eq!(seller_on_b.count("payout:created", QUIET).await, 0);
    assert_eq!(payouts_of(a, &seller.token, request_id).await.len(), 1);
    assert_eq!(auto_complete_jobs(a).await, 0);
    cluster.stop().await;
}
