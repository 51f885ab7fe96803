//! Dead letters, black-box: a real subscriber (notifications) hits a real storage fault that
//! outlasts its retries. The effect still happens once the fault ends, with no restart and no
//! admin action; meanwhile the dead letter is listed to admins (`GET /api/admin/dead-letters`)
//! and later events keep flowing. `POST /api/admin/dead-letters/{id}/retry` retries one now.
//!
//! The fault: a trigger that refuses to store a notification whose body quotes the price
//! 666.13 (so only that event fails; others pass).

use std::time::Duration;

use marketplace_tests::{TestApp, TestUser, eventually};
use sea_orm::ConnectionTrait;
use serde_json::Value;

const POISON: &str = "666.13";

async fn refuse_poisoned_notifications(app: &TestApp) {
    let db = app.db().await;
    let statements: &[&str] = if marketplace_tests::engine() == "postgres" {
        &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.body LIKE '%666.13%' THEN RAISE EXCEPTION 'storage refuses this row'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON notifications \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ]
    } else {
        &[
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON notifications \
           WHEN NEW.body LIKE '%666.13%' \
           BEGIN SELECT RAISE(ABORT, 'storage refuses this row'); END",
        ]
    };
    for s in statements {
        db.execute_unprepared(s).await.expect("install the fault");
    }
}

async fn end_the_fault(app: &TestApp) {
    let db = app.db().await;
    let s = if marketplace_tests::engine() == "postgres" {
        "DROP TRIGGER refuse_poison ON notifications"
    } else {
        "DROP TRIGGER refuse_poison"
    };
    db.execute_unprepared(s).await.expect("remove the fault");
}

/// Fast retries: 2 attempts, then a dead letter retried every `dead_letter_ms`.
async fn app_with_fast_retries(dead_letter_ms: &str) -> TestApp {
    let dead_letter_ms = dead_letter_ms.to_owned();
    TestApp::spawn_with(move |env| {
        env.insert("EVENT_RETRY_ATTEMPTS".into(), "2".into());
        env.insert("EVENT_RETRY_BACKOFF_MS".into(), "10".into());
        env.insert("DEAD_LETTER_RETRY_MS".into(), dead_letter_ms.clone());
        env.insert("DEAD_LETTER_RETRY_MAX_MS".into(), dead_letter_ms);
    })
    .await
}

async fn notification_bodies(app: &TestApp, user: &TestUser) -> Vec<String> {
    let page = app
        .get("/api/notifications", Some(&user.token))
        .await
        .expect(200);
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|n| n["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn open_dead_letters(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    let page = app
        .get("/api/admin/dead-letters?status=open", Some(&admin.token))
        .await
        .expect(200);
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Makes a poisoned offer and waits for its dead letter; returns the buyer and the letter.
async fn poisoned_offer(app: &TestApp, admin: &TestUser, seller: &TestUser) -> (TestUser, Value) {
    let open = app.open_request().await;
    app.make_offer(seller, &open.request_id, POISON).await;
    let letter = eventually(Duration::from_secs(20), || async {
        open_dead_letters(app, admin).await.into_iter().next()
    })
    .await
    .expect("the failing event is listed as a dead letter");
    (open.buyer, letter)
}

#[tokio::test]
async fn a_fault_longer_than_the_retries_is_a_listed_dead_letter_and_its_effect_happens_once_the_fault_ends()
 {
    let app = app_with_fast_retries("300").await;
    let (admin, seller) = (app.admin().await, app.seller().await);
    refuse_poisoned_notifications(&app).await;

    let (buyer, letter) = poisoned_offer(&app, &admin, &seller).await;
    assert_eq!(letter["subscriber"], "notifications");
    assert_eq!(letter["eventName"], "request:offer-received");
    assert_eq!(letter["status"], "open");
    assert!(
        letter["eventId"].as_i64().is_some_and(|id| id > 0),
        "{letter}"
    );
    assert!(
        letter["attempts"].as_i64().is_some_and(|n| n >= 2),
        "{letter}"
    );
    assert!(
        letter["lastError"].as_str().is_some_and(|e| !e.is_empty()),
        "{letter}"
    );
    for field in ["firstFailedAt", "lastFailedAt", "nextRetryAt"] {
        assert!(letter[field].is_string(), "{field} in {letter}");
    }
    assert!(
        !notification_bodies(&app, &buyer)
            .await
            .iter()
            .any(|b| b.contains(POISON)),
        "no notification while the fault lasts"
    );

    // Later events of the same subscriber keep flowing meanwhile.
    let other = app.buyer().await;
    let request = app.create_request(&other).await;
    app.make_offer(&seller, &request, "100.00").await;
    eventually(Duration::from_secs(20), || async {
        notification_bodies(&app, &other)
            .await
            .iter()
            .any(|b| b.contains("100.00"))
            .then_some(())
    })
    .await
    .expect("a later event is handled while the dead letter waits");

    // Only admins see them.
    let r = app
        .get("/api/admin/dead-letters", Some(&seller.token))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app.get("/api/admin/dead-letters", Some(&buyer.token)).await;
    assert_eq!(r.status, 403);
    assert_eq!(app.get("/api/admin/dead-letters", None).await.status, 401);

    end_the_fault(&app).await;
    eventually(Duration::from_secs(30), || async {
        notification_bodies(&app, &buyer)
            .await
            .iter()
            .any(|b| b.contains(POISON))
            .then_some(())
    })
    .await
    .expect("the effect happens by itself once the fault ends");
    // The dead letter is marked resolved just after its handler returns.
    let resolved = eventually(Duration::from_secs(10), || async {
        let page = app
            .get(
                "/api/admin/dead-letters?status=resolved",
                Some(&admin.token),
            )
            .await
            .expect(200);
        (page["items"].as_array().is_some_and(|i| !i.is_empty())).then_some(page)
    })
    .await
    .expect("the dead letter is listed as resolved");
    let items = resolved["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{resolved}");
    assert_eq!(items[0]["id"], letter["id"]);
    assert!(items[0]["resolvedAt"].is_string());
    assert!(items[0]["nextRetryAt"].is_null());
    assert!(open_dead_letters(&app, &admin).await.is_empty());
    assert_eq!(
        notification_bodies(&app, &buyer)
            .await
            .iter()
            .filter(|b| b.contains(POISON))
            .count(),
        1,
        "exactly one notification"
    );
}

#[tokio::test]
async fn an_admin_retries_a_dead_letter_now_and_gets_its_outcome() {
    // No automatic retry within the test: only the admin's.
    let app = app_with_fast_retries("600000").await;
    let (admin, seller) = (app.admin().await, app.seller().await);
    refuse_poisoned_notifications(&app).await;
    let (buyer, letter) = poisoned_offer(&app, &admin, &seller).await;
    let id = letter["id"].as_str().expect("id").to_owned();
    let path = format!("/api/admin/dead-letters/{id}/retry");

    let r = app.post(&path, Some(&seller.token), Value::Null).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));

    let failed = app
        .post(&path, Some(&admin.token), Value::Null)
        .await
        .expect(200);
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert!(
        failed["deadLetter"]["attempts"].as_i64() > letter["attempts"].as_i64(),
        "{failed}"
    );
    assert_eq!(failed["deadLetter"]["status"], "open");

    end_the_fault(&app).await;
    let ok = app
        .post(&path, Some(&admin.token), Value::Null)
        .await
        .expect(200);
    assert_eq!(ok["outcome"], "succeeded", "{ok}");
    assert!(ok["error"].is_null());
    assert_eq!(ok["deadLetter"]["status"], "resolved");
    assert!(
        notification_bodies(&app, &buyer)
            .await
            .iter()
            .any(|b| b.contains(POISON)),
        "the retry made the notification"
    );

    let again = app.post(&path, Some(&admin.token), Value::Null).await;
    assert_eq!((again.status, again.code()), (409, "dead_letter_resolved"));
    let unknown = app
        .post(
            "/api/admin/dead-letters/0190a7a0-0000-7000-8000-000000000000/retry",
            Some(&admin.token),
            Value::Null,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad = app
        .get("/api/admin/dead-letters?status=bogus", Some(&admin.token))
        .await;
    assert_eq!(bad.status, 422);
}
