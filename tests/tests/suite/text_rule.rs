//! The contract's one rule for text people type (issue 25, finding 5), the same on SQLite and
//! PostgreSQL: NUL and other control characters (but line feed, carriage return and tab), and
//! the bidirectional override and isolate characters, are a 422 naming the field, never a 500;
//! text that is empty once whitespace and zero-width characters are trimmed is empty. A refused
//! text changes nothing.

use marketplace_tests::{Resp, TestApp};
use serde_json::{Value, json};

/// A 422 problem that names `field`.
#[track_caller]
fn refused(r: Resp, field: &str) {
    assert_eq!(r.status, 422, "{field}: {}", r.body);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&field), "{field} not named: {}", r.body);
}

fn request(title: &str, description: &str, category: &str) -> Value {
    json!({ "title": title, "description": description, "category": category })
}

const BAD: [(&str, &str); 5] = [
    ("a NUL", "Bike\u{0}frame"),
    ("a bell", "Bike\u{7}frame"),
    ("an escape", "Bike\u{1b}[31m"),
    ("a right-to-left override", "Bike \u{202E}gnp.exe"),
    ("a first-strong isolate", "Bike \u{2068}x\u{2069}"),
];

#[tokio::test]
async fn nul_controls_and_bidi_overrides_are_422_with_the_field_named_and_store_nothing() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    for (what, bad) in BAD {
        for (field, body) in [
            ("title", request(bad, "56 cm", "bikes")),
            ("description", request("Bike", bad, "bikes")),
            ("category", request("Bike", "56 cm", bad)),
        ] {
            let r = app.post("/api/requests", Some(&buyer.token), body).await;
            assert_eq!(r.status, 422, "{what} in {field}: {}", r.body);
            refused(r, field);
        }
        refused(
            app.post(
                "/api/auth/register",
                None,
                json!({ "email": format!("{}@test.local", uuid::Uuid::now_v7().simple()), "password": "correct-horse-1", "name": bad, "role": "buyer" }),
            )
            .await,
            "name",
        );
        refused(
            app.patch("/api/users/me", Some(&buyer.token), json!({ "name": bad }))
                .await,
            "name",
        );
    }
    let mine = app
        .get("/api/requests?mine=true", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(mine["items"], json!([]), "nothing was stored");
    let me = app
        .get("/api/users/me", Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(me["name"], "A buyer");
}

#[tokio::test]
async fn a_nul_in_a_query_filter_is_422_not_a_database_error() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let admin = app.admin().await;
    refused(
        app.get("/api/requests?category=a%00b", Some(&seller.token))
            .await,
        "category",
    );
    refused(
        app.get("/api/requests?category=%E2%80%AEbikes", Some(&seller.token))
            .await,
        "category",
    );
    refused(
        app.get(
            "/api/admin/dead-letters?subscriber=a%00b",
            Some(&admin.token),
        )
        .await,
        "subscriber",
    );
    // An empty filter is no filter, and a plain one still works.
    app.get("/api/requests?category=%E2%80%8B%20", Some(&seller.token))
        .await
        .expect(200);
    app.get("/api/requests?category=bikes", Some(&seller.token))
        .await
        .expect(200);
}

#[tokio::test]
async fn text_of_only_zero_width_characters_is_empty_and_line_breaks_and_tabs_are_kept() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    refused(
        app.post(
            "/api/requests",
            Some(&buyer.token),
            request("\u{200B}\u{200B}\u{FEFF} \u{200D}", "56 cm", "bikes"),
        )
        .await,
        "title",
    );
    let kept = app
        .post_request(
            &buyer,
            request(
                "\u{200B}Road bike\u{200B}",
                "Line one\r\nline two\tand a tab",
                "bikes",
            ),
        )
        .await;
    assert_eq!(kept["title"], "Road bike");
    assert_eq!(kept["description"], "Line one\r\nline two\tand a tab");
}

#[tokio::test]
async fn chat_messages_offers_and_disputes_follow_the_same_rule() {
    let app = TestApp::spawn().await;
    let chat = app.chat().await;
    for (_, bad) in BAD {
        refused(
            app.post(
                &format!("/api/chats/{}/messages", chat.chat_id),
                Some(&chat.buyer.token),
                json!({ "content": bad }),
            )
            .await,
            "content",
        );
        refused(
            app.post(
                &format!("/api/offers/{}/counter", chat.offer_id),
                Some(&chat.buyer.token),
                json!({ "message": bad }),
            )
            .await,
            "message",
        );
    }
    refused(
        app.post(
            &format!("/api/chats/{}/messages", chat.chat_id),
            Some(&chat.buyer.token),
            json!({ "content": "\u{200B}\u{2060}" }),
        )
        .await,
        "content",
    );
    let messages = app
        .get(
            &format!("/api/chats/{}/messages", chat.chat_id),
            Some(&chat.buyer.token),
        )
        .await
        .expect(200);
    assert_eq!(messages["items"], json!([]), "nothing was stored");

    let paid = app.paid_request("40.00").await;
    refused(
        app.post(
            &format!("/api/requests/{}/disputes", paid.request_id),
            Some(&paid.buyer.token),
            json!({ "reason": "Broken\u{0}" }),
        )
        .await,
        "reason",
    );
}
