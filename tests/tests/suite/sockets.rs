//! The Socket.IO gateway at the wire level, with the minimal Rust client of
//! `marketplace_tests::socket`: handshake auth, every join/leave rule, routing of durable
//! events, replay, presence and typing.

use std::time::Duration;

use marketplace_tests::socket::{ConnectError, SocketClient, SocketOptions};
use marketplace_tests::{JWT_SECRET, TestApp, TestUser, mint_token};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(600);

fn ok(ack: &Value) -> bool {
    ack["ok"] == true
}

fn error(ack: &Value) -> &str {
    assert_eq!(ack["ok"], false, "expected a refusal, got {ack}");
    ack["error"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------- handshake

#[tokio::test]
async fn a_token_is_accepted_from_auth_with_or_without_bearer_from_the_header_and_from_the_cookie()
{
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let ways = [
        SocketOptions {
            auth: Some(json!({ "token": buyer.token })),
            headers: vec![],
        },
        SocketOptions {
            auth: Some(json!({ "token": format!("Bearer {}", buyer.token) })),
            headers: vec![],
        },
        SocketOptions {
            auth: None,
            headers: vec![("Authorization".into(), format!("Bearer {}", buyer.token))],
        },
        SocketOptions {
            auth: Some(json!({})),
            headers: vec![(
                "Cookie".into(),
                format!("theme=dark; token={}", buyer.token),
            )],
        },
    ];
    for options in ways {
        let s = SocketClient::open(&app.base, options.clone()).await;
        let s = s.unwrap_or_else(|e| panic!("{options:?} refused: {e:?}"));
        // The socket is really the buyer's: its own user room is joinable, another's is not.
        assert!(ok(&s.ack("join-user-room", json!(buyer.id)).await));
        s.close().await;
    }
}

#[tokio::test]
async fn missing_forged_expired_and_unknown_user_tokens_are_refused_with_unauthorized() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let tokens = [
        None,
        Some("not-a-jwt".to_owned()),
        Some(mint_token(
            "another-secret-0123456789abcdef0123456789",
            &buyer.id,
            "buyer",
            3600,
        )),
        Some(mint_token(JWT_SECRET, &buyer.id, "buyer", -10)),
        Some(mint_token(JWT_SECRET, &unknown, "buyer", 3600)),
        Some(format!("{}x", buyer.token)),
    ];
    for token in tokens {
        let auth = token.as_ref().map(|t| json!({ "token": t }));
        let res = SocketClient::open(
            &app.base,
            SocketOptions {
                auth,
                headers: vec![],
            },
        )
        .await;
        match res {
            Err(ConnectError::Refused(message)) => {
                assert!(message.contains("unauthorized"), "{token:?}: {message}")
            }
            Err(other) => panic!("{token:?}: expected a connect_error, got {other:?}"),
            Ok(_) => panic!("{token:?} was accepted"),
        }
    }
    // A forged token in the header is refused the same way.
    let forged = mint_token(
        "another-secret-0123456789abcdef0123456789",
        &buyer.id,
        "admin",
        3600,
    );
    let res = SocketClient::open(
        &app.base,
        SocketOptions {
            auth: None,
            headers: vec![("Authorization".into(), format!("Bearer {forged}"))],
        },
    )
    .await;
    assert!(matches!(res, Err(ConnectError::Refused(m)) if m.contains("unauthorized")));
}

#[tokio::test]
async fn a_cookie_token_from_a_foreign_origin_is_refused() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let headers = vec![
        ("Cookie".into(), format!("token={}", buyer.token)),
        ("Origin".into(), "https://evil.example".into()),
    ];
    let res = SocketClient::open(
        &app.base,
        SocketOptions {
            auth: None,
            headers,
        },
    )
    .await;
    assert!(matches!(res, Err(ConnectError::Refused(m)) if m.contains("unauthorized")));
}

#[tokio::test]
async fn with_cors_star_a_cookie_socket_is_accepted_only_from_the_same_or_a_listed_origin() {
    let app = TestApp::spawn_with(|env| {
        env.insert("CORS_ORIGINS".into(), "*, https://shop.example".into());
    })
    .await;
    let buyer = app.buyer().await;
    let cookie = ("Cookie".to_owned(), format!("token={}", buyer.token));
    let from = |origin: &str| ("Origin".to_owned(), origin.to_owned());
    let open = |headers: Vec<(String, String)>, auth: Option<Value>| {
        SocketClient::open(&app.base, SocketOptions { auth, headers })
    };
    // `*` lets any site call REST without credentials; it never admits a cookie socket.
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let res = open(vec![cookie.clone(), from(origin)], None).await;
        assert!(
            matches!(&res, Err(ConnectError::Refused(m)) if m.contains("unauthorized")),
            "cookie socket from {origin}: {:?}",
            res.as_ref().err()
        );
    }
    // A listed origin, and the server's own (the Host the request came to), are accepted.
    for origin in ["https://shop.example".to_owned(), app.base.clone()] {
        let s = open(vec![cookie.clone(), from(&origin)], None)
            .await
            .unwrap_or_else(|e| panic!("cookie socket from {origin} refused: {e:?}"));
        assert!(ok(&s.ack("join-user-room", json!(buyer.id)).await));
        s.close().await;
    }
    // A token the page had to send itself is not at risk: any origin.
    let bearer = (
        "Authorization".to_owned(),
        format!("Bearer {}", buyer.token),
    );
    let ways = [
        (
            vec![from("https://evil.example")],
            Some(json!({ "token": buyer.token })),
        ),
        (vec![bearer, from("https://evil.example")], None),
    ];
    for (headers, auth) in ways {
        let s = open(headers, auth)
            .await
            .expect("a bearer socket from a foreign origin");
        assert!(ok(&s.ack("join-user-room", json!(buyer.id)).await));
        s.close().await;
    }
}

// ---------------------------------------------------------------- join / leave

#[tokio::test]
async fn join_user_room_is_for_the_own_id_only_and_any_id_for_admins() {
    let app = TestApp::spawn().await;
    let (buyer, other, admin) = (app.buyer().await, app.seller().await, app.admin().await);
    let s = app.socket(&buyer).await;
    assert!(ok(&s.ack("join-user-room", json!(buyer.id)).await));
    assert_eq!(
        error(&s.ack("join-user-room", json!(other.id)).await),
        "forbidden"
    );
    let a = app.socket(&admin).await;
    assert!(ok(&a.ack("join-user-room", json!(other.id)).await));
    // The admin now receives what goes to that user's room.
    let request = app.create_request(&buyer).await;
    let offer_id = app.make_offer(&other, &request, "10.00").await;
    // offer:accepted goes to seller-{sellerId} and user-{buyerId}; the seller's notification
    // goes to user-{sellerId}, which the admin joined.
    let mut a = a;
    app.post(
        &format!("/api/offers/{offer_id}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    let args = a.expect("notification:received", WAIT).await;
    assert_eq!(args[0]["recipientId"], other.id.as_str());
    assert_eq!(
        a.count("offer:accepted", QUIET).await,
        0,
        "the admin is not in the buyer's or seller's rooms"
    );
}

#[tokio::test]
async fn seller_and_buyer_rooms_are_for_their_own_ids_and_roles() {
    let app = TestApp::spawn().await;
    let (buyer, seller, seller2) = (app.buyer().await, app.seller().await, app.seller().await);
    let s = app.socket(&seller).await;
    let ack = s.ack("join-seller-room", json!(seller.id)).await;
    assert!(ok(&ack));
    assert_eq!(
        ack["rooms"],
        json!([format!("seller-{}", seller.id), "sellers"])
    );
    assert_eq!(
        error(&s.ack("join-seller-room", json!(seller2.id)).await),
        "forbidden"
    );
    assert_eq!(
        error(&s.ack("join-buyer-room", json!(seller.id)).await),
        "forbidden"
    );
    assert!(ok(&s.ack("leave-seller-room", json!(seller.id)).await));
    let b = app.socket(&buyer).await;
    assert!(ok(&b.ack("join-buyer-room", json!(buyer.id)).await));
    assert!(ok(&b.ack("leave-buyer-room", json!(buyer.id)).await));
    assert_eq!(
        error(&b.ack("join-seller-room", json!(buyer.id)).await),
        "forbidden"
    );
    assert_eq!(
        error(&b.ack("join-buyer-room", json!(seller.id)).await),
        "forbidden"
    );

    // After leaving `sellers`, request:created no longer reaches the seller's socket.
    let mut s = s;
    let mut s2 = app.socket(&seller2).await;
    app.create_request(&buyer).await;
    s2.expect("request:created", WAIT).await;
    assert_eq!(s.count("request:created", QUIET).await, 0);
}

#[tokio::test]
async fn request_rooms_are_for_its_buyer_sellers_with_an_offer_and_admins() {
    let app = TestApp::spawn().await;
    let (buyer, buyer2, seller, seller2, admin) = (
        app.buyer().await,
        app.buyer().await,
        app.seller().await,
        app.seller().await,
        app.admin().await,
    );
    let request = app.create_request(&buyer).await;
    app.make_offer(&seller, &request, "10.00").await;
    for (user, expected) in [
        (&buyer, None),
        (&seller, None),
        (&admin, None),
        (&buyer2, Some("not_found")),
        (&seller2, Some("not_found")),
    ] {
        let s = app.socket(user).await;
        let ack = s.ack("join-request-room", json!(request)).await;
        match expected {
            None => assert!(ok(&ack), "{} should join: {ack}", user.role),
            Some(e) => assert_eq!(error(&ack), e, "{}", user.role),
        }
        let leave = s.ack("leave-request-room", json!(request)).await;
        assert_eq!(ok(&leave), expected.is_none(), "{leave}");
        // An unknown request looks exactly like someone else's.
        assert_eq!(
            error(
                &s.ack("join-request-room", json!(uuid::Uuid::now_v7().to_string()))
                    .await
            ),
            "not_found"
        );
        s.close().await;
    }
}

#[tokio::test]
async fn chat_rooms_are_for_the_two_participants_and_admins() {
    let app = TestApp::spawn().await;
    let (buyer, seller, outsider, outsider_buyer, admin) = (
        app.buyer().await,
        app.seller().await,
        app.seller().await,
        app.buyer().await,
        app.admin().await,
    );
    let request = app.create_request(&buyer).await;
    app.make_offer(&seller, &request, "10.00").await;
    let chat = app.chat_id(&seller, &request).await;
    for (user, allowed) in [
        (&buyer, true),
        (&seller, true),
        (&admin, true),
        (&outsider, false),
        (&outsider_buyer, false),
    ] {
        let s = app.socket(user).await;
        let ack = s.ack("join-chat-room", json!(chat)).await;
        if allowed {
            assert!(ok(&ack), "{}: {ack}", user.role);
            assert!(ok(&s.ack("leave-chat-room", json!(chat)).await));
        } else {
            assert_eq!(error(&ack), "not_found", "{}", user.role);
        }
        s.close().await;
    }
}

#[tokio::test]
async fn malformed_arguments_answer_bad_request_and_the_socket_stays_usable() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let s = app.socket(&buyer).await;
    for event in [
        "join-user-room",
        "join-seller-room",
        "join-buyer-room",
        "join-request-room",
        "leave-request-room",
        "join-chat-room",
    ] {
        for arg in [
            json!(42),
            json!("not-a-uuid"),
            json!({ "id": buyer.id }),
            Value::Null,
            json!([]),
            json!(""),
        ] {
            assert_eq!(
                error(&s.ack(event, arg.clone()).await),
                "bad_request",
                "{event} {arg}"
            );
        }
        assert_eq!(
            error(&s.emit_raw_with_ack(event, vec![]).await[0]),
            "bad_request",
            "{event} without argument"
        );
    }
    for event in [
        "chat:send",
        "chat:read",
        "chat:typing",
        "chat:stopped-typing",
    ] {
        for arg in [
            json!("x"),
            json!({ "chatId": "nope" }),
            json!({}),
            json!(null),
        ] {
            assert_eq!(
                error(&s.ack(event, arg.clone()).await),
                "bad_request",
                "{event} {arg}"
            );
        }
    }
    assert_eq!(
        error(&s.ack("no-such-event", json!(1)).await),
        "bad_request"
    );
    assert!(ok(&s.ack("join-user-room", json!(buyer.id)).await));
}

// ---------------------------------------------------------------- routing

#[tokio::test]
async fn a_durable_event_reaches_exactly_the_sockets_of_its_rooms_once_with_its_meta() {
    let app = TestApp::spawn().await;
    let (buyer, buyer2, seller, seller2, admin) = (
        app.buyer().await,
        app.buyer().await,
        app.seller().await,
        app.seller().await,
        app.admin().await,
    );
    let request = app.create_request(&buyer).await;

    let mut b = app.socket(&buyer).await;
    let mut b_tab2 = app.socket(&buyer).await;
    let mut b2 = app.socket(&buyer2).await;
    let mut s = app.socket(&seller).await;
    let mut s2 = app.socket(&seller2).await;
    let mut a = app.socket(&admin).await;
    let mut a_in_room = app.socket(&admin).await;
    assert!(ok(&a_in_room
        .ack("join-request-room", json!(request))
        .await));
    assert!(ok(&b.ack("join-request-room", json!(request)).await));

    // request:offer-received goes to the buyer's and the offering seller's user rooms.
    let offer = app.make_offer(&seller, &request, "10.00").await;

    let args = b.expect("request:offer-received", WAIT).await;
    assert_eq!(args.len(), 2, "payload and meta: {args:?}");
    assert_eq!(args[0]["requestId"], request.as_str());
    assert!(
        args[0].get("buyerId").is_none(),
        "routing fields are not in the payload"
    );
    assert!(args[1]["id"].as_i64().is_some_and(|id| id > 0));
    assert!(
        args[1]["at"]
            .as_str()
            .is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_ok())
    );
    b_tab2.expect("request:offer-received", WAIT).await;
    s.expect("request:offer-received", WAIT).await;
    assert_eq!(s.count("request:offer-received", QUIET).await, 0);
    for (who, sock) in [
        ("other buyer", &mut b2),
        ("other seller", &mut s2),
        ("admin", &mut a),
        ("admin in the request room", &mut a_in_room),
    ] {
        assert_eq!(
            sock.count("request:offer-received", Duration::from_millis(200))
                .await,
            0,
            "{who} received it"
        );
    }

    // The buyer's first tab is in both rooms of request:status-updated: one copy still.
    app.post(
        &format!("/api/offers/{offer}/accept"),
        Some(&buyer.token),
        json!({}),
    )
    .await
    .expect(200);
    b.expect("request:status-updated", WAIT).await;
    b_tab2.expect("request:status-updated", WAIT).await;
    a_in_room.expect("request:status-updated", WAIT).await;
    assert_eq!(
        b.count("request:status-updated", QUIET).await,
        0,
        "a second copy reached the buyer"
    );
    for (who, sock) in [
        ("other buyer", &mut b2),
        ("seller not in the room", &mut s),
        ("other seller", &mut s2),
        ("admin not in the room", &mut a),
    ] {
        assert_eq!(
            sock.count("request:status-updated", Duration::from_millis(200))
                .await,
            0,
            "{who} received it"
        );
    }
}

#[tokio::test]
async fn request_created_goes_to_sellers_only() {
    let app = TestApp::spawn().await;
    let (buyer, seller, admin) = (app.buyer().await, app.seller().await, app.admin().await);
    let mut s = app.socket(&seller).await;
    let mut b = app.socket(&buyer).await;
    let mut a = app.socket(&admin).await;
    let id = app.create_request(&buyer).await;
    assert_eq!(
        s.expect("request:created", WAIT).await[0]["id"],
        id.as_str()
    );
    assert_eq!(b.count("request:created", QUIET).await, 0);
    assert_eq!(
        a.count("request:created", Duration::from_millis(100)).await,
        0
    );
}

// ---------------------------------------------------------------- replay

#[tokio::test]
async fn reconnecting_with_last_event_id_replays_the_missed_visible_events_in_order_then_live_ones()
{
    let app = TestApp::spawn().await;
    let (buyer, seller, other_buyer) = (app.buyer().await, app.seller().await, app.buyer().await);
    let seller2 = app.seller().await;
    let mut watcher = app.socket(&seller2).await;
    let mut s = app.socket(&seller).await;
    app.create_request(&buyer).await;
    let first = s.expect("request:created", WAIT).await;
    let last = first[1]["id"].as_i64().unwrap();
    s.close().await;

    // Missed while away: two requests for sellers, and an offer on another buyer's request
    // made by somebody else (not visible to this seller).
    let r2 = app.create_request(&buyer).await;
    let r3 = app.create_request(&other_buyer).await;
    app.make_offer(&seller2, &r3, "10.00").await;
    for _ in 0..3 {
        watcher.expect("request:created", WAIT).await;
    }

    let mut s = app.socket_after(&seller, last).await;
    let replayed = s.drain(Duration::from_millis(1500)).await;
    let names: Vec<&str> = replayed.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        names,
        ["request:created", "request:created"],
        "{replayed:?}"
    );
    assert_eq!(replayed[0].args[0]["id"], r2.as_str());
    assert_eq!(replayed[1].args[0]["id"], r3.as_str());
    assert!(replayed[0].args[1]["id"].as_i64().unwrap() > last);

    // Then live.
    let r4 = app.create_request(&buyer).await;
    assert_eq!(
        s.expect("request:created", WAIT).await[0]["id"],
        r4.as_str()
    );
    assert_eq!(s.count("request:created", QUIET).await, 0);
}

#[tokio::test]
async fn a_reconnect_racing_with_new_events_sees_each_event_exactly_once() {
    let app = TestApp::spawn().await;
    let (buyer, seller) = (app.buyer().await, app.seller().await);
    let mut s = app.socket(&seller).await;
    app.create_request(&buyer).await;
    let last = s.expect("request:created", WAIT).await[1]["id"]
        .as_i64()
        .unwrap();
    s.close().await;

    let stop = tokio_util::sync::CancellationToken::new();
    let producer = {
        let (base, token, stop) = (app.base.clone(), buyer.token.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.is_cancelled() {
                let res = http
                    .post(format!("{base}/api/requests"))
                    .bearer_auth(&token)
                    .json(&json!({ "title": format!("r{n}"), "description": "d", "category": "c" }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = app.socket_after(&seller, last).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let made = producer.await.unwrap();
    assert!(made > 3, "the producer made only {made} requests");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<i64> = s
        .drain(Duration::from_millis(800))
        .await
        .into_iter()
        .filter(|r| r.event == "request:created")
        .map(|r| r.args[1]["id"].as_i64().unwrap())
        .collect();
    let mut expected: Vec<i64> = Vec::new();
    let mut cursor = last.to_string();
    loop {
        let page = app
            .get(
                &format!("/api/events?after={cursor}&limit=100"),
                Some(&seller.token),
            )
            .await
            .expect(200);
        expected.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["event"] == "request:created")
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(got.len(), made, "one event per request made");
    assert_eq!(got, expected, "every event exactly once, in order");
}

#[tokio::test]
async fn more_than_500_missed_events_replay_500_then_replay_truncated() {
    let app = TestApp::spawn().await;
    let (buyer, seller, watcher_seller) =
        (app.buyer().await, app.seller().await, app.seller().await);
    let mut watcher = app.socket(&watcher_seller).await;
    for _ in 0..503 {
        app.create_request(&buyer).await;
    }
    // Everything has been emitted live before the reconnect (else the rest would come live).
    for _ in 0..503 {
        watcher
            .expect("request:created", Duration::from_secs(30))
            .await;
    }
    let mut s = app.socket_after(&seller, 0).await;
    let got = s.drain(Duration::from_secs(3)).await;
    let created: Vec<i64> = got
        .iter()
        .filter(|r| r.event == "request:created")
        .map(|r| r.args[1]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(created.len(), 500);
    assert!(created.windows(2).all(|w| w[0] < w[1]));
    let notice = got
        .iter()
        .find(|r| r.event == "events:replay-truncated")
        .expect("truncation notice");
    assert_eq!(notice.args[0]["lastEventId"], created[499]);
    assert_eq!(got.last().unwrap().event, "events:replay-truncated");
    // The rest is in REST.
    let rest = app
        .get(
            &format!("/api/events?after={}&limit=100", created[499]),
            Some(&seller.token),
        )
        .await
        .expect(200);
    assert_eq!(
        rest["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["event"] == "request:created")
            .count(),
        3
    );
}

/// A buyer's request with a seller's offer, once the buyer's `notification:received` is in
/// the log (a subscriber writes it after the offer), so the log is settled: the buyer and the
/// first page of the buyer's `GET /api/events`.
async fn settled_offer_events(app: &TestApp) -> (TestUser, Value) {
    let o = app.offered_request("10.00").await;
    let buyer = o.buyer;
    let mine = marketplace_tests::eventually(WAIT, || async {
        let page = app
            .get("/api/events?after=0&limit=100", Some(&buyer.token))
            .await
            .expect(200);
        let settled = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["event"] == "notification:received");
        settled.then_some(page)
    })
    .await
    .expect("the buyer's notification:received is in the log");
    (buyer, mine)
}

#[tokio::test]
async fn the_events_endpoint_lists_only_what_the_caller_may_see() {
    let app = TestApp::spawn().await;
    let (_buyer, mine) = settled_offer_events(&app).await;
    let buyer2 = app.buyer().await;
    let names: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"request:offer-received"), "{names:?}");
    assert!(
        !names.contains(&"request:created"),
        "a buyer is not in `sellers`: {names:?}"
    );
    let theirs = app
        .get("/api/events?after=0&limit=100", Some(&buyer2.token))
        .await
        .expect(200);
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["event"] != "request:offer-received")
    );
}

#[tokio::test]
async fn the_events_endpoint_pages_one_by_one_through_the_same_items() {
    let app = TestApp::spawn().await;
    let (buyer, mine) = settled_offer_events(&app).await;
    let mut cursor = "0".to_owned();
    let mut walked = Vec::new();
    for _ in 0..50 {
        let page = app
            .get(
                &format!("/api/events?after={cursor}&limit=1"),
                Some(&buyer.token),
            )
            .await
            .expect(200);
        walked.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let all: Vec<i64> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(walked, all);
}

#[tokio::test]
async fn the_events_endpoint_needs_a_token_and_a_valid_cursor_and_limit() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    assert_eq!(app.get("/api/events", None).await.status, 401);
    assert_eq!(
        app.get("/api/events?after=-1", Some(&buyer.token))
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/events?limit=0", Some(&buyer.token))
            .await
            .status,
        422
    );
}

/// `GET /api/events/head` is the newest id in the log, visible to the caller or not: a client
/// that starts there gets every later event (here the request a seller sees next).
#[tokio::test]
async fn the_events_head_is_the_newest_id_in_the_log() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let seller = app.seller().await;
    assert_eq!(app.get("/api/events/head", None).await.status, 401);
    let before = app
        .get("/api/events/head", Some(&buyer.token))
        .await
        .expect(200)["id"]
        .as_i64()
        .expect("an integer id");
    assert!(before >= 0);
    app.create_request(&buyer).await;
    let after = app
        .get("/api/events/head", Some(&buyer.token))
        .await
        .expect(200)["id"]
        .as_i64()
        .expect("an integer id");
    assert!(after > before, "{after} > {before}");
    let page = app
        .get(
            &format!("/api/events?after={before}&limit=100"),
            Some(&seller.token),
        )
        .await
        .expect(200);
    let created: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["event"] == "request:created")
        .map(|i| i["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(created.len(), 1, "{page}");
    assert!(created[0] <= after);
}

// ---------------------------------------------------------------- presence and typing

/// How many `event`s with this payload arrive within `within` (stops early at the first one
/// when `within` is long).
async fn presence_of(
    s: &mut SocketClient,
    event: &str,
    payload: &Value,
    within: Duration,
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
            if within >= WAIT {
                return n;
            }
        }
    }
    n
}

#[tokio::test]
async fn presence_goes_online_with_the_first_tab_and_offline_with_the_last() {
    let app = TestApp::spawn().await;
    let (buyer, seller) = (app.buyer().await, app.seller().await);
    let request = app.create_request(&buyer).await;
    app.make_offer(&seller, &request, "10.00").await;
    let chat = app.chat_id(&seller, &request).await;
    let presence = |id: String| {
        let app = &app;
        let token = buyer.token.clone();
        async move {
            app.get(&format!("/api/users/{id}/presence"), Some(&token))
                .await
                .expect(200)
        }
    };
    let p = presence(seller.id.clone()).await;
    assert_eq!(
        p,
        json!({ "userId": seller.id, "online": false, "lastSeenAt": null })
    );

    let mut watcher = app.socket(&buyer).await;
    assert!(ok(&watcher.ack("join-chat-room", json!(chat)).await));

    // The watcher's own presence goes to the same chat room: look at the seller's only.
    let seller_presence = json!({ "userId": seller.id });
    let tab1 = app.socket(&seller).await;
    assert_eq!(
        presence_of(&mut watcher, "user:online", &seller_presence, WAIT).await,
        1
    );
    let tab2 = app.socket(&seller).await;
    assert_eq!(
        presence_of(&mut watcher, "user:online", &seller_presence, QUIET).await,
        0,
        "the second tab is not a new presence"
    );
    assert_eq!(presence(seller.id.clone()).await["online"], true);

    tab1.close().await;
    assert_eq!(
        presence_of(&mut watcher, "user:offline", &seller_presence, QUIET).await,
        0,
        "one tab is still open"
    );
    assert_eq!(presence(seller.id.clone()).await["online"], true);
    tab2.close().await;
    assert_eq!(
        presence_of(&mut watcher, "user:offline", &seller_presence, WAIT).await,
        1
    );
    let p = presence(seller.id.clone()).await;
    assert_eq!(p["online"], false);
    assert!(p["lastSeenAt"].as_str().is_some());

    assert_eq!(
        app.get(
            &format!("/api/users/{}/presence", uuid::Uuid::now_v7()),
            Some(&buyer.token)
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.get(&format!("/api/users/{}/presence", seller.id), None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn typing_reaches_the_chat_room_except_the_senders_own_sockets() {
    let app = TestApp::spawn().await;
    let (buyer, seller, outsider) = (app.buyer().await, app.seller().await, app.seller().await);
    let request = app.create_request(&buyer).await;
    app.make_offer(&seller, &request, "10.00").await;
    let chat = app.chat_id(&seller, &request).await;

    let mut b = app.socket(&buyer).await;
    let s1 = app.socket(&seller).await;
    let mut s2 = app.socket(&seller).await;
    for sock in [&b, &s1, &s2] {
        assert!(ok(&sock.ack("join-chat-room", json!(chat)).await));
    }
    assert!(ok(&s1.ack("chat:typing", json!({ "chatId": chat })).await));
    assert_eq!(
        b.expect("chat:typing", WAIT).await,
        vec![json!({ "chatId": chat, "userId": seller.id })]
    );
    assert!(ok(&s1
        .ack("chat:stopped-typing", json!({ "chatId": chat }))
        .await));
    assert_eq!(
        b.expect("chat:stopped-typing", WAIT).await[0]["userId"],
        seller.id.as_str()
    );
    assert_eq!(
        s2.count("chat:typing", QUIET).await,
        0,
        "the sender's other tab got its own typing"
    );

    let o = app.socket(&outsider).await;
    assert_eq!(
        error(&o.ack("chat:typing", json!({ "chatId": chat })).await),
        "not_found"
    );

    // Rate limit: a burst beyond ~5/s is refused, never relayed.
    let mut refused = 0;
    for _ in 0..12 {
        if s1.ack("chat:typing", json!({ "chatId": chat })).await["error"] == "rate_limited" {
            refused += 1;
        }
    }
    assert!(refused >= 5, "only {refused} of 12 refused");
    let relayed = b.count("chat:typing", QUIET).await;
    assert_eq!(relayed, 12 - refused);
    // Typing is never stored: nothing in the event log.
    let log = app
        .get("/api/events?after=0&limit=100", Some(&buyer.token))
        .await
        .expect(200);
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| !i["event"].as_str().unwrap().contains("typing"))
    );
}

#[tokio::test]
async fn chat_send_over_the_socket_acks_the_message_and_emits_chat_new_message() {
    let app = TestApp::spawn().await;
    let (buyer, seller, outsider) = (app.buyer().await, app.seller().await, app.buyer().await);
    let request = app.create_request(&buyer).await;
    app.make_offer(&seller, &request, "10.00").await;
    let chat = app.chat_id(&seller, &request).await;
    let b = app.socket(&buyer).await;
    let mut s = app.socket(&seller).await;

    let ack = b
        .ack("chat:send", json!({ "chatId": chat, "content": "hello" }))
        .await;
    assert!(ok(&ack), "{ack}");
    assert_eq!(ack["message"]["content"], "hello");
    assert_eq!(ack["message"]["senderId"], buyer.id.as_str());
    // chat-{chatId} and user-{otherParticipantId}: the seller gets it (via its user room).
    let args = s.expect("chat:new-message", WAIT).await;
    assert_eq!(args[0]["id"], ack["message"]["id"]);

    let read = s
        .ack(
            "chat:read",
            json!({ "chatId": chat, "messageId": ack["message"]["id"] }),
        )
        .await;
    assert!(ok(&read), "{read}");

    let o = app.socket(&outsider).await;
    assert_eq!(
        error(
            &o.ack("chat:send", json!({ "chatId": chat, "content": "hi" }))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        error(
            &b.ack("chat:send", json!({ "chatId": chat, "content": "" }))
                .await
        ),
        "bad_request"
    );
}

#[tokio::test]
async fn stopping_the_server_closes_open_sockets_instead_of_hanging() {
    let mut app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let _s = app.socket(&buyer).await;
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_asyncapi_document_lists_every_catalog_event_with_its_rooms() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/asyncapi.json", None).await.expect(200);
    assert_eq!(doc["asyncapi"], "3.0.0");
    let messages = doc["components"]["messages"].as_object().unwrap();
    for (event, room) in [
        ("notification:received", "user-{recipientId}"),
        ("request:created", "sellers"),
        ("offer:accepted", "seller-{sellerId}"),
        ("chat:new-message", "user-{otherParticipantId}"),
        ("dispute:resolved", "admin"),
        ("system:announcement", "everyone"),
    ] {
        let m = messages
            .values()
            .find(|m| m["name"] == event)
            .unwrap_or_else(|| panic!("{event} missing"));
        assert!(
            m["x-rooms"].as_array().unwrap().iter().any(|r| r == room),
            "{event}: {m}"
        );
        assert_eq!(m["x-durable"], true);
    }
    for event in ["join-request-room", "chat:send", "chat:typing"] {
        assert!(
            messages
                .values()
                .any(|m| m["name"] == event && m["x-ack"].is_object()),
            "{event}"
        );
    }
    // Every reference anywhere in the document resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 40);
    for r in all {
        let pointer = r.trim_start_matches('#');
        assert!(
            doc.pointer(pointer).is_some_and(Value::is_object),
            "dangling {r}"
        );
    }
}
