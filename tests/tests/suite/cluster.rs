//! Several nodes behind one PostgreSQL database and one Redis (`tests/src/cluster.rs`): what a
//! user sees must not depend on the node their socket or REST call lands on. PostgreSQL only:
//! on SQLite each test prints why it is skipped.

use std::time::Duration;

use marketplace_tests::cluster::{Cluster, RedisServer, postgres_or_skip, redis_url};
use marketplace_tests::socket::{Received, SocketClient, SocketOptions};
use marketplace_tests::{TestApp, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
/// How long a socket is watched to show that something does NOT arrive.
const QUIET: Duration = Duration::from_millis(1500);

fn ok(ack: &Value) -> bool {
    ack["ok"] == true
}

/// `request:created` events received until the one for `marker` arrives: (payload id, meta id).
async fn requests_until(s: &mut SocketClient, marker: &str) -> Vec<(String, i64)> {
    let mut seen = Vec::new();
    loop {
        let args = s.expect("request:created", WAIT).await;
        let id = args[0]["id"].as_str().unwrap_or_default().to_owned();
        let meta = args.get(1).and_then(|m| m["id"].as_i64()).unwrap_or(-1);
        let done = id == marker;
        seen.push((id, meta));
        if done {
            return seen;
        }
    }
}

/// How many `event`s with exactly this first argument arrive within `within` (returns at the
/// first one when `first_only`).
async fn count_payload(
    s: &mut SocketClient,
    event: &str,
    payload: &Value,
    within: Duration,
    first_only: bool,
) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    let mut n = 0;
    while let Some(args) = s
        .wait_for(
            event,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await
    {
        if &args[0] == payload {
            n += 1;
            if first_only {
                return n;
            }
        }
    }
    n
}

#[tokio::test]
async fn an_event_caused_on_one_node_reaches_sockets_on_every_node_once_with_one_id() {
    if !postgres_or_skip(
        "an_event_caused_on_one_node_reaches_sockets_on_every_node_once_with_one_id",
    ) {
        return;
    }
    let cluster = Cluster::start(3).await;
    let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2));
    let seller = a.seller().await;
    let buyer = b.buyer().await;
    let mut sockets = [
        a.socket(&seller).await,
        b.socket(&seller).await,
        c.socket(&seller).await,
    ];

    let first = b.create_request(&buyer).await;
    // A later event on the same path: once it arrived, any copy of the first would have too.
    let marker = b.create_request(&buyer).await;

    let mut ids = Vec::new();
    for (i, s) in sockets.iter_mut().enumerate() {
        let seen = requests_until(s, &marker).await;
        let copies: Vec<i64> = seen
            .iter()
            .filter(|(id, _)| *id == first)
            .map(|(_, meta)| *meta)
            .collect();
        assert_eq!(copies.len(), 1, "node {i} socket got {seen:?}");
        ids.push(copies[0]);
    }
    assert!(ids[0] > 0, "durable events carry their id: {ids:?}");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event, one id on every node: {ids:?}"
    );
    cluster.stop().await;
}

/// A node that has just started, whose live delivery may not have read the log yet, still
/// gives its sockets every event committed after they connected, though the running nodes
/// may already have moved the shared cursor past it. (It once started after that cursor and
/// skipped the event: seen in CI as a socket on the last node missing one.)
#[tokio::test]
async fn sockets_of_a_node_that_has_just_started_get_every_event_committed_after_they_connected() {
    if !postgres_or_skip(
        "sockets_of_a_node_that_has_just_started_get_every_event_committed_after_they_connected",
    ) {
        return;
    }
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    let seller = a.seller().await;
    let buyer = b.buyer().await;
    // Sockets on the running nodes: they deliver each event, and move the cursor, at once.
    let mut running = [a.socket(&seller).await, b.socket(&seller).await];
    for round in 0..4 {
        let mut fresh = TestApp::start(cluster.env()).await;
        let mut socket = fresh.socket(&seller).await;
        let request = b.create_request(&buyer).await;
        for s in running.iter_mut() {
            requests_until(s, &request).await;
        }
        let seen = requests_until(&mut socket, &request).await;
        assert_eq!(
            seen.iter().filter(|(id, _)| *id == request).count(),
            1,
            "round {round}: the new node's socket got {seen:?}"
        );
        // Its PostgreSQL connections go before the next node opens its own.
        socket.close().await;
        fresh.stop().await;
    }
    cluster.stop().await;
}

#[tokio::test]
async fn an_offer_made_on_one_node_notifies_the_buyer_on_another_once() {
    if !postgres_or_skip("an_offer_made_on_one_node_notifies_the_buyer_on_another_once") {
        return;
    }
    let cluster = Cluster::start(3).await;
    let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2));
    let buyer = a.buyer().await;
    let seller = c.seller().await;
    let request = b.create_request(&buyer).await;
    let mut live = a.socket(&buyer).await;

    let offer = c.make_offer(&seller, &request, "99.00").await;

    let received = live.expect("request:offer-received", WAIT).await;
    assert_eq!(received[0]["offer"]["id"], offer.as_str());
    let note = live.expect("notification:received", WAIT).await;
    assert_eq!(note[0]["recipientId"], buyer.id.as_str(), "{note:?}");
    assert_eq!(
        live.count("notification:received", QUIET).await,
        0,
        "one notification, not one per node"
    );
    assert_eq!(live.count("request:offer-received", QUIET).await, 0);
    for node in [a, b, c] {
        let stored = node
            .get("/api/notifications", Some(&buyer.token))
            .await
            .expect(200);
        let items = stored["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "stored once: {stored}");
        assert_eq!(items[0]["id"], note[0]["id"]);
    }
    cluster.stop().await;
}

#[tokio::test]
async fn typing_on_one_node_reaches_the_partner_on_another_and_never_the_senders_sockets() {
    if !postgres_or_skip(
        "typing_on_one_node_reaches_the_partner_on_another_and_never_the_senders_sockets",
    ) {
        return;
    }
    let cluster = Cluster::start(3).await;
    let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2));
    // The request is made on a, the offer on b.
    let pair = a
        .chat_of(b.offer_on(a.open_request().await, "120.00").await)
        .await;
    let (buyer, seller, chat) = (pair.buyer, pair.seller, pair.chat_id);

    let typing_tab = a.socket(&buyer).await;
    let mut other_tab = c.socket(&buyer).await;
    let mut partner = b.socket(&seller).await;
    for s in [&typing_tab, &other_tab, &partner] {
        assert!(ok(&s.ack("join-chat-room", json!(chat)).await));
    }

    assert!(ok(&typing_tab
        .ack("chat:typing", json!({ "chatId": chat }))
        .await));
    assert_eq!(
        partner.expect("chat:typing", WAIT).await,
        vec![json!({ "chatId": chat, "userId": buyer.id })]
    );
    assert!(ok(&typing_tab
        .ack("chat:stopped-typing", json!({ "chatId": chat }))
        .await));
    assert_eq!(
        partner.expect("chat:stopped-typing", WAIT).await[0]["userId"],
        buyer.id.as_str()
    );
    assert_eq!(partner.count("chat:typing", QUIET).await, 0, "relayed once");
    assert_eq!(
        other_tab.count("chat:typing", QUIET).await,
        0,
        "the sender's tab on another node got its own typing"
    );
    let mut typing_tab = typing_tab;
    assert_eq!(typing_tab.count("chat:typing", Duration::ZERO).await, 0);
    cluster.stop().await;
}

#[tokio::test]
async fn presence_counts_tabs_on_every_node_and_goes_offline_with_the_last() {
    if !postgres_or_skip("presence_counts_tabs_on_every_node_and_goes_offline_with_the_last") {
        return;
    }
    let cluster = Cluster::start(3).await;
    let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2));
    // The request is made on c, the offer on a.
    let pair = c
        .chat_of(a.offer_on(c.open_request().await, "120.00").await)
        .await;
    let (buyer, seller, chat) = (pair.buyer, pair.seller, pair.chat_id);
    let url = format!("/api/users/{}/presence", seller.id);
    let presence = async |node: &TestApp| node.get(&url, Some(&buyer.token)).await;

    let mut watcher = c.socket(&buyer).await;
    assert!(ok(&watcher.ack("join-chat-room", json!(chat)).await));
    let seller_presence = json!({ "userId": seller.id });

    let tab_a = a.socket(&seller).await;
    assert_eq!(
        count_payload(&mut watcher, "user:online", &seller_presence, WAIT, true).await,
        1
    );
    let tab_b = b.socket(&seller).await;
    assert_eq!(
        count_payload(&mut watcher, "user:online", &seller_presence, QUIET, false).await,
        0,
        "a second tab on another node is not a new presence"
    );
    assert_eq!(presence(c).await.expect(200)["online"], true);

    tab_a.close().await;
    assert_eq!(
        count_payload(&mut watcher, "user:offline", &seller_presence, QUIET, false).await,
        0,
        "a tab is still open on node B"
    );
    // Node A has no socket of the seller left and still knows the seller is online.
    assert_eq!(presence(a).await.expect(200)["online"], true);

    tab_b.close().await;
    assert_eq!(
        count_payload(&mut watcher, "user:offline", &seller_presence, WAIT, true).await,
        1
    );
    assert_eq!(
        count_payload(&mut watcher, "user:offline", &seller_presence, QUIET, false).await,
        0,
        "offline is announced once"
    );
    for node in [a, b, c] {
        let p = presence(node).await.expect(200);
        assert_eq!(p["online"], false, "{p}");
        assert!(p["lastSeenAt"].is_string(), "{p}");
    }
    cluster.stop().await;
}

/// A login on `node` from `from` (behind a proxy at 127.0.0.1): the status.
async fn login_from(node: &TestApp, from: &str, email: &str, password: &str) -> u16 {
    node.send(
        node.http
            .post(node.url("/api/auth/login"))
            .header("X-Forwarded-For", from)
            .json(&json!({ "email": email, "password": password })),
    )
    .await
    .status
}

#[tokio::test]
async fn login_failures_spread_over_nodes_lock_the_guesser_out_on_every_node_but_not_the_owner() {
    if !postgres_or_skip(
        "login_failures_spread_over_nodes_lock_the_guesser_out_on_every_node_but_not_the_owner",
    ) {
        return;
    }
    let cluster = Cluster::start_with(3, &redis_url(), |env| {
        env.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let (attacker, owner_at) = ("203.0.113.7", "198.51.100.20");
    let user = cluster.node(0).buyer().await;
    for i in 0..10 {
        let status = login_from(
            cluster.node(i % 3),
            attacker,
            &user.email,
            "not the password",
        )
        .await;
        assert_eq!(status, 401, "attempt {i}");
    }
    for node in &cluster.nodes {
        let status = login_from(node, attacker, &user.email, &user.password).await;
        assert_eq!(
            status, 429,
            "the account is locked for the guesser on every node"
        );
        let status = login_from(node, owner_at, &user.email, &user.password).await;
        assert_eq!(
            status, 200,
            "the owner logs in from their own address on every node"
        );
    }
    // A spray over other accounts reaches the address's 30 failures across the nodes.
    for i in 0..20 {
        let email = format!("target-{i}@test.local");
        let status = login_from(cluster.node(i % 3), attacker, &email, "Summer2026!").await;
        assert_eq!(status, 401, "spray {i}");
    }
    let other = cluster.node(1).seller().await;
    for node in &cluster.nodes {
        let status = login_from(node, attacker, &other.email, &other.password).await;
        assert_eq!(status, 429, "the address is locked on every node");
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_redis_outage_keeps_rest_and_durable_events_and_typing_and_presence_come_back() {
    if !postgres_or_skip(
        "a_redis_outage_keeps_rest_and_durable_events_and_typing_and_presence_come_back",
    ) {
        return;
    }
    let mut redis = RedisServer::start().await;
    let cluster = Cluster::start_with(2, &redis.url(), |_| {}).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    // The request is made on a, the offer on b.
    let pair = a
        .chat_of(b.offer_on(a.open_request().await, "120.00").await)
        .await;
    let (buyer, seller, chat) = (pair.buyer, pair.seller, pair.chat_id);
    let mut seller_on_b = b.socket(&seller).await;
    assert!(ok(&seller_on_b.ack("join-chat-room", json!(chat)).await));

    redis.kill();
    let down = eventually(WAIT, || async {
        let r = a.get("/readyz", None).await;
        (r.status == 503).then_some(r)
    })
    .await
    .expect("/readyz notices that redis is down");
    assert_eq!(down.code(), "redis_unavailable", "{:?}", down.body);

    // REST works, and a durable event made on A reaches the seller's socket on B.
    let request = a.create_request(&buyer).await;
    let created = seller_on_b.expect("request:created", WAIT).await;
    assert_eq!(created[0]["id"], request.as_str());
    assert!(created[1]["id"].as_i64().is_some());

    redis.restart().await;
    for node in [a, b] {
        eventually(Duration::from_secs(30), || async {
            (node.get("/readyz", None).await.status == 200).then_some(())
        })
        .await
        .expect("each node is ready again once redis is back");
    }

    // Typing crosses nodes again.
    let buyer_on_a = a.socket(&buyer).await;
    assert!(ok(&buyer_on_a.ack("join-chat-room", json!(chat)).await));
    assert!(ok(&buyer_on_a
        .ack("chat:typing", json!({ "chatId": chat }))
        .await));
    assert_eq!(
        seller_on_b.expect("chat:typing", WAIT).await[0]["userId"],
        buyer.id.as_str()
    );
    // Presence too: the restarted Redis was empty, the nodes wrote their counts back.
    let seller_presence = json!({ "userId": seller.id });
    let mut watcher = buyer_on_a;
    let seller_presence_url = format!("/api/users/{}/presence", seller.id);
    let online = eventually(WAIT, || async {
        let p = a
            .get(&seller_presence_url, Some(&buyer.token))
            .await
            .expect(200);
        (p["online"] == true).then_some(())
    })
    .await;
    assert!(online.is_some(), "the seller's socket on B counts again");
    seller_on_b.close().await;
    assert_eq!(
        count_payload(&mut watcher, "user:offline", &seller_presence, WAIT, true).await,
        1,
        "the seller's last socket left: offline reaches node A"
    );
    cluster.stop().await;
}

/// The durable events (those with `{ id, at }`) among `received`, as (id, event).
fn durable(received: &[Received]) -> Vec<(i64, String)> {
    received
        .iter()
        .filter_map(|r| Some((r.args.get(1)?["id"].as_i64()?, r.event.clone())))
        .collect()
}

#[tokio::test]
async fn a_killed_node_loses_nothing_its_subscriber_is_taken_over_and_its_client_resumes_elsewhere()
{
    if !postgres_or_skip(
        "a_killed_node_loses_nothing_its_subscriber_is_taken_over_and_its_client_resumes_elsewhere",
    ) {
        return;
    }
    // The process starts alone, so it holds every side-effect subscriber's lease.
    let mut cluster = Cluster::start(0).await;
    let mut doomed = cluster.spawn_process().await;
    cluster.nodes.push(TestApp::start(cluster.env()).await);
    let p = &doomed.app;
    let a = cluster.node(0);

    let buyer = p.buyer().await;
    let seller = p.seller().await;
    let request = p.create_request(&buyer).await;
    let _seller_on_p = p.socket(&seller).await;
    let mut on_p = p.socket(&buyer).await;
    let first = p.make_offer(&seller, &request, "100.00").await;
    on_p.expect("request:offer-received", WAIT).await;
    on_p.expect("notification:received", WAIT).await;
    let last_seen = durable(&on_p.drain(QUIET).await)
        .into_iter()
        .map(|(id, _)| id)
        .max()
        .unwrap_or(0)
        .max(
            a.get("/api/events?limit=100", Some(&buyer.token))
                .await
                .expect(200)["items"]
                .as_array()
                .and_then(|i| i.last())
                .and_then(|e| e["id"].as_i64())
                .unwrap_or(0),
        );
    let chat = a.chat_id(&seller, &request).await;

    doomed.kill9();

    // While the dead node's lease is being taken over, more happens on the survivor.
    let others = [a.seller().await, a.seller().await];
    let mut offers = vec![first];
    for s in &others {
        offers.push(a.make_offer(s, &request, "90.00").await);
    }

    // The client reconnects to the survivor with the last id it saw.
    let mut resumed = SocketClient::open(
        &a.base,
        SocketOptions {
            auth: Some(json!({ "token": buyer.token, "lastEventId": last_seen })),
            headers: vec![],
        },
    )
    .await
    .expect("reconnects to another node");
    assert!(ok(&resumed.ack("join-chat-room", json!(chat)).await));
    let mut got: Vec<Received> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while durable(&got)
        .iter()
        .filter(|(_, e)| e == "notification:received")
        .count()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notifications of the offers made after the kill never came: {got:?}"
        );
        got.extend(resumed.drain(Duration::from_millis(500)).await);
    }
    got.extend(resumed.drain(QUIET).await);
    let ids: Vec<i64> = durable(&got).iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate: {ids:?}"
    );
    assert!(
        ids.iter().all(|id| *id > last_seen),
        "{ids:?} after {last_seen}"
    );
    let offer_events = got
        .iter()
        .filter(|r| r.event == "request:offer-received")
        .count();
    assert_eq!(offer_events, 2, "{got:?}");
    // No gap: exactly what the log holds for this buyer after that id.
    let page = a
        .get(
            &format!("/api/events?after={last_seen}&limit=100"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    let logged: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert_eq!(ids, logged);

    // The side effect ran once per event: one notification per offer.
    let stored = a
        .get("/api/notifications?limit=100", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(
        stored["items"].as_array().map(Vec::len),
        Some(offers.len()),
        "{stored}"
    );

    // The seller's only socket was on the dead node: the seller goes offline within ping
    // interval + ping timeout + 10 s (defaults 25 + 20 + 10), once the node stops beating.
    let seller_presence = json!({ "userId": seller.id });
    let already = got
        .iter()
        .filter(|r| r.event == "user:offline" && r.args.first() == Some(&seller_presence))
        .count();
    let offline = already
        + count_payload(
            &mut resumed,
            "user:offline",
            &seller_presence,
            if already > 0 {
                QUIET
            } else {
                Duration::from_secs(55)
            },
            already == 0,
        )
        .await;
    assert_eq!(offline, 1, "the seller went offline once");
    cluster.stop().await;
}
