//! Faults and hostile input, the per-user side (issue 10, items 4–6): token lifetime on REST
//! and sockets, who may see presence, the chat and typing limits, and the Redis-backed
//! limiter that makes the limits count across nodes.

use std::time::Duration;

use kernel::limits::redis::RedisLimiter;
use kernel::{Limits, Quota};
use marketplace_tests::cluster::RedisServer;
use marketplace_tests::socket::{ConnectError, SocketClient, SocketOptions};
use marketplace_tests::{JWT_SECRET, TestApp, TestUser, eventually, mint_token};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

async fn post_message(app: &TestApp, user: &TestUser, chat_id: &str, n: usize) -> u16 {
    app.post(
        &format!("/api/chats/{chat_id}/messages"),
        Some(&user.token),
        json!({ "content": format!("message {n}") }),
    )
    .await
    .status
}

fn ok(ack: &Value) -> bool {
    ack["ok"] == true
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_401_on_rest_and_refused_on_socket_connect() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let expired = mint_token(JWT_SECRET, &buyer.id, "buyer", -6);
    let res = app.get("/api/users/me", Some(&expired)).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.code(), "unauthorized");
    let fresh = mint_token(JWT_SECRET, &buyer.id, "buyer", 60);
    app.get("/api/users/me", Some(&fresh)).await.expect(200);

    let res = SocketClient::open(
        &app.base,
        SocketOptions {
            auth: Some(json!({ "token": expired })),
            headers: vec![],
        },
    )
    .await;
    match res {
        Err(ConnectError::Refused(message)) => assert!(message.contains("unauthorized")),
        Err(other) => panic!("expected a connect_error, got {other:?}"),
        Ok(_) => panic!("an expired token was accepted on a socket"),
    }
}

// ---------------------------------------------------------------- login limit

#[tokio::test]
async fn a_successful_login_clears_the_failures_before_it() {
    let app = TestApp::spawn().await;
    let user = app.buyer().await;
    let login = |password: &str| {
        let body = json!({ "email": user.email, "password": password });
        let app = &app;
        async move { app.post("/api/auth/login", None, body).await.status }
    };
    for _ in 0..9 {
        assert_eq!(login("wrong-password").await, 401);
    }
    assert_eq!(login(&user.password).await, 200);
    // The count starts again: ten more failures before the lock-out.
    for _ in 0..10 {
        assert_eq!(login("wrong-password").await, 401);
    }
    assert_eq!(login(&user.password).await, 429);
}

// ---------------------------------------------------------------- presence

#[tokio::test]
async fn presence_is_for_the_user_their_chat_partners_and_admins_and_404_for_anyone_else() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller) = (c.buyer, c.seller);
    let stranger = app.buyer().await;
    let other_seller = app.seller().await;
    let admin = app.admin().await;
    let presence = |id: &str, token: &str| {
        let path = format!("/api/users/{id}/presence");
        let token = token.to_owned();
        let app = &app;
        async move { app.get(&path, Some(&token)).await }
    };

    for viewer in [&buyer, &seller, &admin] {
        let p = presence(&seller.id, &viewer.token).await.expect(200);
        assert_eq!(
            p["userId"],
            seller.id.as_str(),
            "{} sees the seller",
            viewer.role
        );
    }
    presence(&buyer.id, &seller.token).await.expect(200);
    presence(&stranger.id, &stranger.token).await.expect(200);

    for (viewer, target) in [
        (&stranger, &seller),
        (&stranger, &buyer),
        (&other_seller, &buyer),
        (&buyer, &stranger),
    ] {
        let res = presence(&target.id, &viewer.token).await;
        assert_eq!(res.status, 404, "{} sees {}", viewer.email, target.email);
        assert_eq!(res.code(), "not_found");
    }
    // An unknown id answers exactly as a stranger does; for an admin too.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(presence(&unknown, &stranger.token).await.status, 404);
    assert_eq!(presence(&unknown, &admin.token).await.status, 404);
}

// ---------------------------------------------------------------- chat limit

#[tokio::test]
async fn a_chat_flood_over_rest_and_the_socket_is_limited_while_the_partner_still_sends() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (c.buyer, c.seller, c.chat_id);
    let mut accepted = 0;

    // 19 over REST fit the burst of 20.
    for n in 0..19 {
        assert_eq!(post_message(&app, &buyer, &chat_id, n).await, 201);
        accepted += 1;
    }
    // The socket shares that count: it is refused long before 20 of its own.
    let socket = app.socket(&buyer).await;
    let mut socket_ok = 0;
    let mut refused = None;
    for n in 0..40 {
        let ack = socket
            .ack(
                "chat:send",
                json!({ "chatId": chat_id, "content": format!("socket {n}") }),
            )
            .await;
        if ok(&ack) {
            socket_ok += 1;
        } else {
            refused = Some(ack);
            break;
        }
    }
    let refused = refused.expect("the socket flood was never refused");
    assert_eq!(
        refused,
        json!({ "ok": false, "error": "rate_limited", "code": "rate_limited" })
    );
    assert!(
        socket_ok < 20,
        "the socket sent {socket_ok} after 19 REST messages: not counted together"
    );
    accepted += socket_ok;

    // REST is refused too: 429 problem with Retry-After.
    let mut limited = None;
    for n in 0..40 {
        let res = app
            .http
            .post(app.url(&format!("/api/chats/{chat_id}/messages")))
            .bearer_auth(&buyer.token)
            .json(&json!({ "content": format!("rest {n}") }))
            .send()
            .await
            .expect("request");
        if res.status() == 201 {
            accepted += 1;
            continue;
        }
        limited = Some(res);
        break;
    }
    let res = limited.expect("the REST flood was never refused");
    assert_eq!(res.status(), 429);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["status"], 429);

    // The partner is not slowed by it, on REST nor on the socket.
    assert_eq!(post_message(&app, &seller, &chat_id, 0).await, 201);
    let seller_socket = app.socket(&seller).await;
    assert!(ok(&seller_socket
        .ack(
            "chat:send",
            json!({ "chatId": chat_id, "content": "still here" })
        )
        .await));

    // Exactly the accepted messages were stored; the refused ones never were.
    let listed = app
        .get(
            &format!("/api/chats/{chat_id}/messages?limit=100"),
            Some(&seller.token),
        )
        .await
        .expect(200);
    let items = listed["items"].as_array().unwrap();
    let from_buyer = items
        .iter()
        .filter(|m| m["senderId"] == buyer.id.as_str())
        .count();
    assert_eq!(from_buyer, accepted);
    assert_eq!(items.len(), accepted + 2);
}

// ---------------------------------------------------------------- typing limit

#[tokio::test]
async fn typing_beyond_5_per_second_per_user_is_dropped_across_all_of_that_users_sockets() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (c.buyer, c.seller, c.chat_id);
    let mut watcher = app.socket(&buyer).await;
    assert!(ok(&watcher.ack("join-chat-room", json!(chat_id)).await));
    let (tab1, tab2) = (app.socket(&seller).await, app.socket(&seller).await);
    // Each tab relays once (its chat access is checked and remembered), then the user's
    // budget refills.
    for tab in [&tab1, &tab2] {
        assert!(ok(&tab
            .ack("chat:typing", json!({ "chatId": chat_id }))
            .await));
    }
    assert_eq!(
        watcher.count("chat:typing", Duration::from_secs(1)).await,
        2
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // 20 at once, 10 from each tab.
    let burst = (0..20).map(|i| {
        let tab = if i % 2 == 0 { &tab1 } else { &tab2 };
        let chat_id = chat_id.clone();
        async move { tab.ack("chat:typing", json!({ "chatId": chat_id })).await }
    });
    let acks = futures::future::join_all(burst).await;
    let relayed_ok = acks.iter().filter(|a| ok(a)).count();
    assert!(
        acks.iter().all(|a| ok(a) || a["error"] == "rate_limited"),
        "{acks:?}"
    );
    assert!(relayed_ok >= 5, "only {relayed_ok} of 20 relayed");
    assert!(
        relayed_ok < 10,
        "{relayed_ok} of 20 relayed: the limit is not shared by the user's sockets"
    );
    let relayed = watcher.count("chat:typing", Duration::from_secs(1)).await;
    assert_eq!(relayed, relayed_ok, "every dropped relay reached nobody");

    // The partner's own typing is not limited by the seller's flood.
    let mut tab1 = tab1;
    assert!(ok(&tab1.ack("join-chat-room", json!(chat_id)).await));
    assert!(ok(&watcher
        .ack("chat:stopped-typing", json!({ "chatId": chat_id }))
        .await));
    assert_eq!(
        tab1.expect("chat:stopped-typing", WAIT).await,
        vec![json!({ "chatId": chat_id, "userId": buyer.id })]
    );
}

// ---------------------------------------------------------------- the Redis limiter

const REDIS: &str = "redis://127.0.0.1:6379/";

/// A key prefix no other test (or run) uses.
fn fresh_prefix() -> String {
    format!("mk-test-{}", uuid::Uuid::now_v7().simple())
}

async fn manager(url: &str) -> redis::aio::ConnectionManager {
    let client = redis::Client::open(url).expect("a Redis URL");
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(300)))
        .set_number_of_retries(1);
    redis::aio::ConnectionManager::new_lazy_with_config(client, config).expect("a lazy manager")
}

const QUOTA: Quota = Quota::new("test", 3, Duration::from_secs(60));

#[tokio::test]
async fn two_redis_limiters_with_one_prefix_count_together_and_reset_together() {
    let prefix = fresh_prefix();
    let a = Limits::redis(manager(REDIS).await, &prefix);
    let b = Limits::redis(manager(REDIS).await, &prefix);
    let elsewhere = Limits::redis(manager(REDIS).await, &fresh_prefix());

    assert_eq!(a.check(&QUOTA, "user-1").await, Ok(()));
    assert_eq!(b.check(&QUOTA, "user-1").await, Ok(()));
    assert_eq!(a.check(&QUOTA, "user-1").await, Ok(()));
    let wait = b.check(&QUOTA, "user-1").await.expect_err("over the quota");
    assert!(
        wait.0 > Duration::from_secs(15) && wait.0 <= Duration::from_secs(20),
        "{wait:?}"
    );
    assert!(a.check(&QUOTA, "user-1").await.is_err());
    // Other keys, and another prefix (deployment), are counted apart.
    assert_eq!(a.check(&QUOTA, "user-2").await, Ok(()));
    assert_eq!(elsewhere.check(&QUOTA, "user-1").await, Ok(()));

    b.reset(&QUOTA, "user-1").await;
    assert_eq!(a.check(&QUOTA, "user-1").await, Ok(()));

    // Every key lives under the prefix, and expires by itself.
    let mut conn = manager(REDIS).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut keys = keys;
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("{prefix}:limits:test:user-1"),
            format!("{prefix}:limits:test:user-2")
        ]
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn with_redis_unreachable_the_limiter_counts_in_memory_and_never_fails() {
    // Nothing listens on port 1.
    let limiter = RedisLimiter::new(manager("redis://127.0.0.1:1/").await, &fresh_prefix());
    let limits = Limits::new(limiter);
    for _ in 0..3 {
        assert_eq!(limits.check(&QUOTA, "user-1").await, Ok(()));
    }
    assert!(limits.check(&QUOTA, "user-1").await.is_err());
    limits.reset(&QUOTA, "user-1").await;
    assert_eq!(limits.check(&QUOTA, "user-1").await, Ok(()));
}

#[tokio::test]
async fn when_redis_goes_away_the_limiter_falls_back_and_uses_redis_again_when_it_returns() {
    let mut redis = RedisServer::start().await;
    let limiter = std::sync::Arc::new(RedisLimiter::new(
        manager(&format!("{}/", redis.url())).await,
        "p",
    ));
    let limits = Limits::new(limiter.clone());
    assert_eq!(limits.check(&QUOTA, "before").await, Ok(()));
    assert_eq!(redis.keys().await, vec!["p:limits:test:before".to_owned()]);

    redis.kill();
    // Requests keep being answered, counted in memory.
    for _ in 0..3 {
        assert_eq!(limits.check(&QUOTA, "during").await, Ok(()));
    }
    assert!(limits.check(&QUOTA, "during").await.is_err());
    assert!(!limiter.using_redis());

    redis.restart().await;
    let back = eventually(Duration::from_secs(15), || {
        let limiter = limiter.clone();
        async move { limiter.using_redis().then_some(()) }
    })
    .await;
    assert!(back.is_some(), "the limiter never went back to Redis");
    assert_eq!(limits.check(&QUOTA, "after").await, Ok(()));
    assert_eq!(redis.keys().await, vec!["p:limits:test:after".to_owned()]);
}
