//! Chats: opened by offers, messages, read markers and unread counts, ordering and paging,
//! content limits, who may see and who may write.

use std::collections::HashSet;

use marketplace_tests::story::Chat;
use marketplace_tests::{TestApp, TestUser};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// All of the user's chats, following cursors.
async fn all_chats(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/chats?limit=100&cursor={c}"),
            None => "/api/chats?limit=100".to_owned(),
        };
        let page = app.get(&path, Some(&user.token)).await.expect(200);
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

async fn unread(app: &TestApp, user: &TestUser, chat_id: &str) -> u64 {
    app.get(&format!("/api/chats/{chat_id}"), Some(&user.token))
        .await
        .expect(200)["unreadCount"]
        .as_u64()
        .expect("unreadCount")
}

/// How many messages the chat holds, as `user` lists them (up to 100).
async fn message_count(app: &TestApp, user: &TestUser, chat_id: &str) -> usize {
    app.get(
        &format!("/api/chats/{chat_id}/messages?limit=100"),
        Some(&user.token),
    )
    .await
    .expect(200)["items"]
        .as_array()
        .expect("items")
        .len()
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("id")
}

#[tokio::test]
async fn an_offer_opens_one_chat_per_request_and_seller_visible_to_both() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let (s1, s2) = (app.seller().await, app.seller().await);
    let request_id = app.create_request(&buyer).await;
    let first = app.make_offer(&s1, &request_id, "120.00").await;
    app.make_offer(&s2, &request_id, "120.00").await;

    let chats = all_chats(&app, &buyer).await;
    assert_eq!(chats.len(), 2, "{chats:?}");
    let mine = all_chats(&app, &s1).await;
    assert_eq!(mine.len(), 1);
    let chat = &mine[0];
    assert_eq!(chat["requestId"], request_id.as_str());
    assert_eq!(chat["buyerId"], buyer.id.as_str());
    assert_eq!(chat["sellerId"], s1.id.as_str());
    assert_eq!(chat["unreadCount"], 0);
    assert_eq!(chat["lastMessageAt"], Value::Null);
    assert!(chat["createdAt"].is_string());

    // A withdrawn offer and a new one from the same seller reuse the chat.
    app.post(
        &format!("/api/offers/{first}/withdraw"),
        Some(&s1.token),
        json!({}),
    )
    .await
    .expect(200);
    app.make_offer(&s1, &request_id, "120.00").await;
    let again = all_chats(&app, &s1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["id"], chat["id"]);
    assert_eq!(all_chats(&app, &buyer).await.len(), 2);
}

/// The buyer sends three messages to the chat (the first with spaces around it); their 201
/// bodies, oldest first.
async fn buyer_writes_three(app: &TestApp, c: &Chat) -> [Value; 3] {
    let mut sent = Vec::new();
    for content in ["  hello  ", "is it still available?", "I can pick it up"] {
        sent.push(app.send_message(&c.buyer, &c.chat_id, content).await);
    }
    sent.try_into().expect("three messages")
}

#[tokio::test]
async fn messages_are_trimmed_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let [m1, m2, m3] = buyer_writes_three(&app, &c).await;
    assert_eq!(m1["content"], "hello");
    assert_eq!(m1["chatId"], chat_id);
    assert_eq!(m1["senderId"], buyer.id.as_str());

    let listed = app
        .get(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
        )
        .await
        .expect(200);
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(ids, vec![id(&m3), id(&m2), id(&m1)]);
    assert_eq!(listed["nextCursor"], Value::Null);
    let seen = app
        .get(&format!("/api/chats/{chat_id}"), Some(&seller.token))
        .await
        .expect(200);
    assert_eq!(seen["lastMessageAt"], m3["createdAt"]);
}

#[tokio::test]
async fn messages_count_as_unread_for_the_other_participant_until_the_read_marker_passes_them() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let [m1, m2, m3] = buyer_writes_three(&app, &c).await;
    assert_eq!(unread(&app, seller, chat_id).await, 3);
    assert_eq!(unread(&app, buyer, chat_id).await, 0);

    let read = |m: &Value| json!({ "messageId": id(m) });
    let res = app
        .post(
            &format!("/api/chats/{chat_id}/read"),
            Some(&seller.token),
            read(&m2),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert_eq!(unread(&app, seller, chat_id).await, 1);
    // Marking an older message read does not move the marker back.
    app.post(
        &format!("/api/chats/{chat_id}/read"),
        Some(&seller.token),
        read(&m1),
    )
    .await
    .expect(204);
    assert_eq!(unread(&app, seller, chat_id).await, 1);

    // The seller's own reply is not unread for the seller, and is for the buyer.
    app.send_message(seller, chat_id, "yes it is").await;
    assert_eq!(unread(&app, seller, chat_id).await, 1);
    assert_eq!(unread(&app, buyer, chat_id).await, 1);
    app.post(
        &format!("/api/chats/{chat_id}/read"),
        Some(&seller.token),
        read(&m3),
    )
    .await
    .expect(204);
    assert_eq!(unread(&app, seller, chat_id).await, 0);
    let listed = all_chats(&app, seller).await;
    assert_eq!(listed[0]["unreadCount"], 0);
    assert_eq!(all_chats(&app, buyer).await[0]["unreadCount"], 1);
}

#[tokio::test]
async fn chats_are_listed_by_newest_activity_and_page_without_repeats() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let mut chat_ids = Vec::new();
    for _ in 0..3 {
        let seller = app.seller().await;
        let request_id = app.create_request(&buyer).await;
        app.make_offer(&seller, &request_id, "120.00").await;
        let chats = all_chats(&app, &seller).await;
        chat_ids.push(chats[0]["id"].as_str().unwrap().to_owned());
    }
    // Newest opened first while nobody has written.
    let order: Vec<String> = all_chats(&app, &buyer)
        .await
        .iter()
        .map(|c| id(c).to_owned())
        .collect();
    assert_eq!(
        order,
        vec![
            chat_ids[2].clone(),
            chat_ids[1].clone(),
            chat_ids[0].clone()
        ]
    );

    // A message moves the oldest chat to the top.
    app.send_message(&buyer, &chat_ids[0], "still selling?")
        .await;
    let order: Vec<String> = all_chats(&app, &buyer)
        .await
        .iter()
        .map(|c| id(c).to_owned())
        .collect();
    assert_eq!(
        order,
        vec![
            chat_ids[0].clone(),
            chat_ids[2].clone(),
            chat_ids[1].clone()
        ]
    );

    let p1 = app
        .get("/api/chats?limit=2", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["nextCursor"].as_str().expect("a next page");
    let p2 = app
        .get(
            &format!("/api/chats?limit=2&cursor={cursor}"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["nextCursor"], Value::Null);
    let paged: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(id)
        .collect();
    assert_eq!(paged, order.iter().map(String::as_str).collect::<Vec<_>>());

    let bad = app
        .get("/api/chats?cursor=not-a-cursor", Some(&buyer.token))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        app.get("/api/chats?limit=0", Some(&buyer.token))
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn message_pages_neither_skip_nor_repeat_while_messages_arrive() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let mut sent = Vec::new();
    for i in 0..25 {
        let who = if i % 2 == 0 { &buyer } else { &seller };
        sent.push(
            id(&app
                .send_message(who, chat_id, &format!("message {i}"))
                .await)
            .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/chats/{chat_id}/messages?limit=10&cursor={c}"),
            None => format!("/api/chats/{chat_id}/messages?limit=10"),
        };
        let page = app.get(&path, Some(&buyer.token)).await.expect(200);
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| id(m).to_owned()),
        );
        // New messages arrive between pages.
        app.send_message(seller, chat_id, &format!("late {pages}"))
            .await;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);
}

#[tokio::test]
async fn content_must_be_1_to_4000_characters_after_trimming() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, chat_id) = (&c.buyer, c.chat_id.as_str());
    let path = format!("/api/chats/{}/messages", chat_id);
    for content in [
        String::new(),
        "   \n\t ".to_owned(),
        "x".repeat(4001),
        "é".repeat(4001),
    ] {
        let res = app
            .post(&path, Some(&buyer.token), json!({ "content": content }))
            .await;
        assert_eq!(
            res.status,
            422,
            "{} chars: {}",
            content.chars().count(),
            res.body
        );
        assert_eq!(res.content_type, "application/problem+json");
        assert_eq!(res.body["errors"][0]["field"], "content");
    }
    for body in [json!({}), json!({ "content": 5 })] {
        assert_eq!(app.post(&path, Some(&buyer.token), body).await.status, 422);
    }
    let longest = app
        .send_message(buyer, chat_id, &format!("  {}  ", "é".repeat(4000)))
        .await;
    assert_eq!(longest["content"].as_str().unwrap().chars().count(), 4000);
    assert_eq!(message_count(&app, buyer, chat_id).await, 1);
}

#[tokio::test]
async fn outsiders_and_unknown_chats_get_404() {
    let app = TestApp::spawn().await;
    let c = app.chat_with_messages(1).await;
    let (buyer, chat_id) = (&c.buyer, c.chat_id.as_str());
    let read = json!({ "messageId": id(&c.messages[0]) });
    let other_buyer = app.buyer().await;
    let other_seller = app.seller().await;
    for outsider in [&other_buyer, &other_seller] {
        let t = Some(outsider.token.as_str());
        assert_eq!(
            app.get(&format!("/api/chats/{chat_id}"), t).await.status,
            404
        );
        assert_eq!(
            app.get(&format!("/api/chats/{chat_id}/messages"), t)
                .await
                .status,
            404
        );
        let res = app
            .post(
                &format!("/api/chats/{chat_id}/messages"),
                t,
                json!({ "content": "hi" }),
            )
            .await;
        assert_eq!(res.status, 404);
        assert_eq!(res.code(), "not_found");
        assert_eq!(
            app.post(&format!("/api/chats/{chat_id}/read"), t, read.clone())
                .await
                .status,
            404
        );
        assert!(all_chats(&app, outsider).await.is_empty());
    }
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        app.get(&format!("/api/chats/{unknown}"), Some(&buyer.token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/api/chats/not-a-uuid", Some(&buyer.token))
            .await
            .status,
        404
    );
    // Nothing the refused writers tried was stored.
    assert_eq!(message_count(&app, buyer, chat_id).await, 1);
}

#[tokio::test]
async fn admins_may_read_a_chat_but_not_write_to_it() {
    let app = TestApp::spawn().await;
    let c = app.chat_with_messages(1).await;
    let (buyer, chat_id, m) = (&c.buyer, c.chat_id.as_str(), &c.messages[0]);
    let read = json!({ "messageId": id(m) });

    let admin = app.admin().await;
    let t = Some(admin.token.as_str());
    let seen = app
        .get(&format!("/api/chats/{chat_id}"), t)
        .await
        .expect(200);
    assert_eq!(seen["id"], chat_id);
    assert_eq!(seen["unreadCount"], 0);
    let listed = app
        .get(&format!("/api/chats/{chat_id}/messages"), t)
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["id"], m["id"]);
    let res = app
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            t,
            json!({ "content": "admin here" }),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert_eq!(res.code(), "forbidden");
    assert_eq!(
        app.post(&format!("/api/chats/{chat_id}/read"), t, read.clone())
            .await
            .status,
        403
    );
    assert!(
        all_chats(&app, &admin).await.is_empty(),
        "admins list only their own chats"
    );
    // Nothing the refused writers tried was stored.
    assert_eq!(message_count(&app, buyer, chat_id).await, 1);
}

#[tokio::test]
async fn chats_without_a_token_are_401() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    assert_eq!(app.get("/api/chats", None).await.status, 401);
    assert_eq!(
        app.post(
            &format!("/api/chats/{}/messages", c.chat_id),
            None,
            json!({ "content": "x" })
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn marking_read_needs_a_message_of_that_chat() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let other_request = app.create_request(buyer).await;
    app.make_offer(seller, &other_request, "120.00").await;
    let chats = all_chats(&app, seller).await;
    let other_chat = chats
        .iter()
        .find(|c| c["id"] != chat_id)
        .expect("second chat");
    let elsewhere = app
        .send_message(buyer, id(other_chat), "about the other one")
        .await;
    app.send_message(buyer, chat_id, "about this one").await;

    let path = format!("/api/chats/{}/read", chat_id);
    let res = app
        .post(
            &path,
            Some(&seller.token),
            json!({ "messageId": id(&elsewhere) }),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.body["errors"][0]["field"], "messageId");
    let res = app
        .post(
            &path,
            Some(&seller.token),
            json!({ "messageId": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(
        app.post(&path, Some(&seller.token), json!({ "messageId": "nope" }))
            .await
            .status,
        422
    );
    assert_eq!(
        app.post(&path, Some(&seller.token), json!({})).await.status,
        422
    );
    assert_eq!(unread(&app, seller, chat_id).await, 1);
    assert_eq!(unread(&app, seller, id(other_chat)).await, 1);
}

#[tokio::test]
async fn sending_and_reading_write_their_events_to_the_log() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let m = app.send_message(buyer, chat_id, "hello").await;
    app.post(
        &format!("/api/chats/{}/read", chat_id),
        Some(&seller.token),
        json!({ "messageId": id(&m) }),
    )
    .await
    .expect(204);

    let db = app.db().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT name, payload, audience FROM events WHERE name LIKE 'chat:%' ORDER BY id",
        ))
        .await
        .unwrap();
    let events: Vec<(String, Value, Value)> = rows
        .iter()
        .map(|r| {
            let json = |col: &str| -> Value {
                r.try_get::<Value>("", col)
                    .or_else(|_| {
                        r.try_get::<String>("", col)
                            .map(|s| serde_json::from_str(&s).unwrap())
                    })
                    .unwrap()
            };
            (
                r.try_get::<String>("", "name").unwrap(),
                json("payload"),
                json("audience"),
            )
        })
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "chat:new-message");
    assert_eq!(events[0].1, m);
    assert_eq!(events[0].2["otherParticipantId"], seller.id.as_str());
    assert_eq!(events[0].2["chatId"], chat_id);
    assert_eq!(events[0].2["requestId"], c.request_id.as_str());
    assert_eq!(events[1].0, "chat:message-read");
    assert_eq!(events[1].1["chatId"], chat_id);
    assert_eq!(events[1].1["messageId"], m["id"]);
    assert_eq!(events[1].1["userId"], seller.id.as_str());
    assert!(events[1].1["readAt"].is_string());
}

#[tokio::test]
async fn concurrent_messages_from_both_sides_are_all_kept_in_one_order() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let sends = (0..20).map(|i| {
        let (app, chat_id) = (&app, chat_id);
        let who = if i % 2 == 0 { &buyer } else { &seller };
        async move {
            app.post(
                &format!("/api/chats/{chat_id}/messages"),
                Some(&who.token),
                json!({ "content": format!("concurrent {i}") }),
            )
            .await
        }
    });
    let results = futures::future::join_all(sends).await;
    assert!(results.iter().all(|r| r.status == 201), "{results:?}");

    let listed = app
        .get(
            &format!("/api/chats/{chat_id}/messages?limit=100"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    let ids: Vec<&str> = items.iter().map(id).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first by id");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20);
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let newest_time = items.iter().map(|m| time(&m["createdAt"])).max().unwrap();
    let seen = app
        .get(&format!("/api/chats/{chat_id}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(time(&seen["lastMessageAt"]), newest_time);
    assert_eq!(seen["unreadCount"], 10);
    assert_eq!(unread(&app, seller, chat_id).await, 10);
}

#[tokio::test]
async fn socket_send_and_read_follow_the_same_rules_as_rest() {
    let app = TestApp::spawn().await;
    let c = app.chat().await;
    let (buyer, seller, chat_id) = (&c.buyer, &c.seller, c.chat_id.as_str());
    let b = app.socket(buyer).await;
    let s = app.socket(seller).await;

    let ack = b
        .ack(
            "chat:send",
            json!({ "chatId": chat_id, "content": "  over the socket  " }),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["message"]["content"], "over the socket");
    assert_eq!(unread(&app, seller, chat_id).await, 1);
    let listed = app
        .get(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
        )
        .await
        .expect(200);
    assert_eq!(listed["items"][0], ack["message"]);

    let read = s
        .ack(
            "chat:read",
            json!({ "chatId": chat_id, "messageId": ack["message"]["id"] }),
        )
        .await;
    assert_eq!(read["ok"], true, "{read}");
    assert_eq!(unread(&app, seller, chat_id).await, 0);

    let too_long = b
        .ack(
            "chat:send",
            json!({ "chatId": chat_id, "content": "x".repeat(4001) }),
        )
        .await;
    assert_eq!(too_long["ok"], false, "{too_long}");
    let admin = app.admin().await;
    let a = app.socket(&admin).await;
    let refused = a
        .ack("chat:send", json!({ "chatId": chat_id, "content": "hi" }))
        .await;
    assert_eq!(refused["error"], "forbidden", "{refused}");
    assert_eq!(message_count(&app, buyer, chat_id).await, 1);
}
