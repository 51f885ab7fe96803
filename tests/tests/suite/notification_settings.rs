//! Notification settings: `GET`/`PATCH /api/users/me/notification-settings` (defaults for a
//! user who never changed them, partial changes, muted kinds checked and collapsed, per user),
//! and the calls the email module makes (`set_email_off`, `mark_email_undeliverable`).

use marketplace_tests::TestApp;
use serde_json::{Value, json};

const PATH: &str = "/api/users/me/notification-settings";

fn defaults() -> Value {
    json!({ "email": true, "push": true, "mutedKinds": [], "emailUndeliverable": false })
}

#[tokio::test]
async fn a_user_who_never_changed_them_has_the_defaults() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    assert_eq!(
        app.get(PATH, Some(&buyer.token)).await.expect(200),
        defaults()
    );
    let anonymous = app.get(PATH, None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.content_type, "application/problem+json");
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent_and_collapses_duplicate_kinds() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let seller = app.seller().await;

    let after = app
        .patch(
            PATH,
            Some(&buyer.token),
            json!({ "push": false, "mutedKinds": ["dispute:opened", "chat:new-message", "dispute:opened"] }),
        )
        .await
        .expect(200);
    assert_eq!(
        after,
        json!({ "email": true, "push": false, "mutedKinds": ["chat:new-message", "dispute:opened"], "emailUndeliverable": false })
    );

    let after = app
        .patch(PATH, Some(&buyer.token), json!({ "email": false }))
        .await
        .expect(200);
    assert_eq!(after["email"], false);
    assert_eq!(after["push"], false, "a field not sent stays as it was");
    assert_eq!(
        after["mutedKinds"],
        json!(["chat:new-message", "dispute:opened"])
    );
    assert_eq!(app.get(PATH, Some(&buyer.token)).await.expect(200), after);

    let cleared = app
        .patch(
            PATH,
            Some(&buyer.token),
            json!({ "mutedKinds": [], "push": true }),
        )
        .await
        .expect(200);
    assert_eq!(
        cleared,
        json!({ "email": false, "push": true, "mutedKinds": [], "emailUndeliverable": false })
    );
    assert_eq!(
        app.patch(PATH, Some(&buyer.token), json!({}))
            .await
            .expect(200),
        cleared,
        "an empty change answers the settings as they are"
    );

    assert_eq!(
        app.get(PATH, Some(&seller.token)).await.expect(200),
        defaults(),
        "settings are per user"
    );
}

#[tokio::test]
async fn an_unknown_kind_or_a_null_is_a_422_naming_the_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    app.patch(
        PATH,
        Some(&buyer.token),
        json!({ "mutedKinds": ["offer:accepted"] }),
    )
    .await
    .expect(200);
    let before = app.get(PATH, Some(&buyer.token)).await.expect(200);

    for (body, field) in [
        (
            json!({ "email": false, "mutedKinds": ["chat:new-message", "request:created"] }),
            "mutedKinds",
        ),
        (json!({ "mutedKinds": ["nope"] }), "mutedKinds"),
        (json!({ "mutedKinds": [1] }), "mutedKinds"),
        (json!({ "mutedKinds": "chat:new-message" }), "mutedKinds"),
        (json!({ "mutedKinds": null }), "mutedKinds"),
        (json!({ "push": null }), "push"),
        (json!({ "email": "no" }), "email"),
    ] {
        let res = app.patch(PATH, Some(&buyer.token), body.clone()).await;
        assert_eq!(res.status, 422, "{body}: {:?}", res.body);
        assert_eq!(res.content_type, "application/problem+json");
        let named = res.body["errors"][0]["field"].as_str().unwrap_or_default();
        assert!(named.starts_with(field), "{body}: {}", res.body);
    }
    assert_eq!(app.get(PATH, Some(&buyer.token)).await.expect(200), before);
}

#[tokio::test]
async fn unsubscribe_and_a_permanent_bounce_show_in_the_settings() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let id: uuid::Uuid = buyer.id.parse().unwrap();
    app.patch(
        PATH,
        Some(&buyer.token),
        json!({ "mutedKinds": ["offer:accepted"] }),
    )
    .await
    .expect(200);
    let db = app.db().await;

    notifications::mark_email_undeliverable(&db, id)
        .await
        .unwrap();
    notifications::mark_email_undeliverable(&db, id)
        .await
        .unwrap();
    let settings = notifications::settings_of(&db, id).await.unwrap();
    assert!(settings.email_undeliverable && settings.email && !settings.mails("dispute:opened"));
    notifications::set_email_off(&db, id).await.unwrap();
    assert_eq!(
        app.get(PATH, Some(&buyer.token)).await.expect(200),
        json!({ "email": false, "push": true, "mutedKinds": ["offer:accepted"], "emailUndeliverable": true })
    );

    let other: uuid::Uuid = app.buyer().await.id.parse().unwrap();
    notifications::set_email_off(&db, other).await.unwrap();
    let s = notifications::settings_of(&db, other).await.unwrap();
    assert!(!s.email && s.push && !s.email_undeliverable && s.muted_kinds.is_empty());
    let _ = db.close().await;
}

#[tokio::test]
async fn the_settings_routes_are_documented_with_their_problems() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    let item = &doc["paths"][PATH];
    for (method, statuses) in [
        ("get", &["200", "401"][..]),
        ("patch", &["200", "400", "401", "422"][..]),
    ] {
        for status in statuses {
            let answer = &item[method]["responses"][*status];
            assert!(answer.is_object(), "{method} {status} undocumented");
            if *status != "200" {
                assert!(
                    answer["content"]["application/problem+json"].is_object(),
                    "{method} {status}: {answer}"
                );
            }
        }
    }
    let kinds = &doc["components"]["schemas"]["NotificationKind"]["enum"];
    assert!(
        kinds.as_array().is_some_and(|k| k.len() == 9
            && k.contains(&json!("chat:new-message"))
            && k.contains(&json!("review:published"))),
        "{kinds}"
    );
}
