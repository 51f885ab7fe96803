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

/// A login from `from` (the `X-Forwarded-For` a proxy at 127.0.0.1 would add), with its
/// `Retry-After` when there is one.
async fn login_from(
    app: &TestApp,
    from: &str,
    email: &str,
    password: &str,
) -> (u16, String, Option<u64>) {
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("X-Forwarded-For", from)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let code = body["code"].as_str().unwrap_or("").to_owned();
    (status, code, retry_after)
}

/// The app behind a proxy at 127.0.0.1: `X-Forwarded-For` names the client.
async fn behind_a_proxy() -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await
}

const ATTACKER: &str = "203.0.113.7";
const OWNER: &str = "198.51.100.20";

#[tokio::test]
async fn the_owner_logs_in_from_another_address_while_the_guesser_is_locked_out() {
    let app = behind_a_proxy().await;
    let owner = app.buyer().await;
    for i in 0..10 {
        let (status, _, _) = login_from(&app, ATTACKER, &owner.email, "a-guess-guess").await;
        assert_eq!(status, 401, "guess {i}");
    }
    // The guesser is locked out of this account, even with the right password...
    let (status, code, retry_after) =
        login_from(&app, ATTACKER, &owner.email, &owner.password).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert!(
        retry_after.is_some_and(|s| (1..=900).contains(&s)),
        "{retry_after:?}"
    );
    // ...and a client-supplied hop on the left of the proxy's changes nothing.
    let spoofed = format!("{OWNER}, {ATTACKER}");
    let (status, _, _) = login_from(&app, &spoofed, &owner.email, &owner.password).await;
    assert_eq!(status, 429);
    // The owner, from their own address, is not.
    let (status, _, _) = login_from(&app, OWNER, &owner.email, &owner.password).await;
    assert_eq!(status, 200);
    let (status, _, _) = login_from(&app, ATTACKER, &owner.email, &owner.password).await;
    assert_eq!(status, 429, "the guesser stays locked out");
}

#[tokio::test]
async fn a_password_spray_from_one_address_is_stopped_at_30_failures() {
    let app = behind_a_proxy().await;
    let sprayer = app.buyer().await;
    let victim = app.buyer().await;
    // 29 failures over 29 accounts (none reaches its own limit of 10)...
    for i in 0..29 {
        let email = format!("target-{i}@test.local");
        let (status, _, _) = login_from(&app, ATTACKER, &email, "Summer2026!").await;
        assert_eq!(status, 401, "guess {i}");
    }
    // ...a success of the sprayer's own account clears nothing...
    let (status, _, _) = login_from(&app, ATTACKER, &sprayer.email, &sprayer.password).await;
    assert_eq!(status, 200);
    let (status, _, _) = login_from(&app, ATTACKER, &victim.email, "Summer2026!").await;
    assert_eq!(status, 401, "the 30th failure");
    // ...and from then on every account is refused from that address.
    for (email, password) in [
        (&victim.email, &victim.password),
        (&sprayer.email, &sprayer.password),
    ] {
        let (status, code, retry_after) = login_from(&app, ATTACKER, email, password).await;
        assert_eq!((status, code.as_str()), (429, "rate_limited"), "{email}");
        assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    }
    let (status, _, _) = login_from(&app, ATTACKER, "target-99@test.local", "x-y-z-w").await;
    assert_eq!(status, 429);
    // Everyone else logs in as usual.
    let (status, _, _) = login_from(&app, OWNER, &victim.email, &victim.password).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_without_trusted_proxies() {
    let app = TestApp::spawn().await;
    let victim = app.buyer().await;
    // Each guess claims another address; without TRUSTED_PROXIES they all count for the peer.
    for i in 0..30 {
        let from = format!("198.18.0.{i}");
        let email = if i < 10 {
            victim.email.clone()
        } else {
            format!("target-{i}@test.local")
        };
        let (status, _, _) = login_from(&app, &from, &email, "a-guess-guess").await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, code, _) =
        login_from(&app, "198.51.100.99", &victim.email, &victim.password).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let other = app.seller().await;
    let (status, _, _) = login_from(&app, "198.51.100.98", &other.email, &other.password).await;
    assert_eq!(status, 429, "the peer's address is over its 30 failures");
}

// ---------------------------------------------------------------- slow and greedy clients

/// Whether the server closes `stream` within `within`: its read ends (EOF or reset) without
/// an answer. Whatever the server sends first (an answer) is read past.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A TCP connection to `app` from the loopback address `from` (127.0.0.x: one client per
/// address, apart from the test's own HTTP client at 127.0.0.1).
async fn connect_from(app: &TestApp, from: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("address"))
        .expect("bind a loopback address");
    socket.connect(app.addr).await.expect("connect")
}

/// One `GET /healthz` on an open connection: the status line's code, `None` when the
/// connection was closed instead.
async fn healthz_on(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    stream.write_all(req).await.ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    // The body of /healthz is small: read it so the next request starts clean.
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
    Some(code)
}

#[tokio::test]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_after_the_timeout_while_others_are_served()
 {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(|env| {
        env.insert("HTTP_HEADER_TIMEOUT_SECS".into(), "2".into());
    })
    .await;
    let started = tokio::time::Instant::now();
    // Ten clients trickle a request head: one header line every 300 ms, for ever.
    let slow: Vec<_> = (0..10)
        .map(|i| {
            let app_addr = app.addr;
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(app_addr)
                    .await
                    .expect("connect");
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
                    .await
                    .expect("request line");
                let opened = tokio::time::Instant::now();
                for n in 0.. {
                    let line = format!("X-Slow-{i}-{n}: a\r\n");
                    if stream.write_all(line.as_bytes()).await.is_err() {
                        return Some(opened.elapsed());
                    }
                    if closed_within(&mut stream, Duration::from_millis(300)).await {
                        return Some(opened.elapsed());
                    }
                    if opened.elapsed() > Duration::from_secs(8) {
                        return None;
                    }
                }
                None
            })
        })
        .collect();
    // A keep-alive connection that answered one request and then says nothing.
    let mut idle = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    assert_eq!(healthz_on(&mut idle).await, Some(200));
    // Meanwhile everyone else is served.
    while started.elapsed() < Duration::from_secs(2) {
        app.get("/healthz", None).await.expect(200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (i, client) in slow.into_iter().enumerate() {
        let lasted = client.await.expect("slow client task");
        let lasted = lasted.unwrap_or_else(|| panic!("slow client {i} still open after 8 s"));
        assert!(
            lasted >= Duration::from_millis(1500) && lasted < Duration::from_secs(6),
            "slow client {i} closed after {lasted:?} with a 2 s header timeout"
        );
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle keep-alive connection outlived the header timeout"
    );
    app.get("/healthz", None).await.expect(200);
}

#[tokio::test]
async fn a_client_over_its_connection_limit_is_refused_at_once_and_others_are_not() {
    let app = TestApp::spawn_with(|env| {
        env.insert("MAX_CONNECTIONS_PER_CLIENT".into(), "5".into());
        env.insert("TRUSTED_PROXIES".into(), "127.0.0.3".into());
    })
    .await;
    let mut held = Vec::new();
    for i in 0..5 {
        let mut c = connect_from(&app, "127.0.0.2").await;
        assert_eq!(healthz_on(&mut c).await, Some(200), "connection {i}");
        held.push(c);
    }
    // The sixth is closed as soon as it is accepted, before it says anything.
    let mut over = connect_from(&app, "127.0.0.2").await;
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await,
        "a sixth connection was kept open"
    );
    // The five still work; other clients are served; a trusted proxy is not counted.
    for c in &mut held {
        assert_eq!(healthz_on(c).await, Some(200));
    }
    app.get("/healthz", None).await.expect(200);
    let mut proxied = Vec::new();
    for i in 0..8 {
        let mut c = connect_from(&app, "127.0.0.3").await;
        assert_eq!(healthz_on(&mut c).await, Some(200), "proxy connection {i}");
        proxied.push(c);
    }
    // A closed connection gives its place back.
    drop(held.pop());
    let back = eventually(WAIT, || {
        let app = &app;
        async move {
            let mut c = connect_from(app, "127.0.0.2").await;
            (healthz_on(&mut c).await == Some(200)).then_some(c)
        }
    })
    .await;
    assert!(back.is_some(), "a freed place was not given back");
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
async fn a_refund_on_one_redis_limiter_gives_back_one_event_to_every_node() {
    let prefix = fresh_prefix();
    let a = Limits::redis(manager(REDIS).await, &prefix);
    let b = Limits::redis(manager(REDIS).await, &prefix);
    for _ in 0..3 {
        assert_eq!(a.check(&QUOTA, "user-1").await, Ok(()));
    }
    assert!(b.check(&QUOTA, "user-1").await.is_err());
    b.refund(&QUOTA, "user-1").await;
    assert_eq!(
        a.check(&QUOTA, "user-1").await,
        Ok(()),
        "one event given back"
    );
    assert!(b.check(&QUOTA, "user-1").await.is_err(), "and only one");
    // Refunds beyond what was counted leave a fresh key (deleted), never extra budget.
    for _ in 0..10 {
        a.refund(&QUOTA, "user-1").await;
    }
    let mut conn = manager(REDIS).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}:limits:test:user-1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    for _ in 0..3 {
        assert_eq!(b.check(&QUOTA, "user-1").await, Ok(()));
    }
    assert!(a.check(&QUOTA, "user-1").await.is_err());
    a.reset(&QUOTA, "user-1").await;
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
