//! A login storm meets a bounded hasher: never more hashes at once than the bound, an
//! overflow answers 503 `busy` with `Retry-After` at once, never a database error; the same
//! bound covers registration and logins for unknown emails. No timings: figures are in
//! docs/benchmarks.md, "Login storm" (`loadgen --mode login-storm`).

use futures::future::join_all;
use marketplace_tests::{Resp, TestApp, TestUser};
use serde_json::json;

/// A login, with its `Retry-After` header when there is one.
async fn login(app: &TestApp, email: &str, password: &str) -> (Resp, Option<String>) {
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request");
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (
        Resp {
            status,
            body,
            content_type,
            headers,
        },
        retry_after,
    )
}

/// A 503 `busy` problem with a positive `Retry-After`.
#[track_caller]
fn assert_busy(res: &Resp, retry_after: &Option<String>) {
    assert_eq!(res.status, 503, "body: {}", res.body);
    assert_eq!(res.code(), "busy");
    assert_eq!(res.content_type, "application/problem+json");
    let secs: u64 = retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!(secs >= 1);
}

#[tokio::test]
async fn forty_logins_at_once_never_run_more_hashes_than_the_bound() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HASH_CONCURRENCY".into(), "2".into());
        // Small enough that no waiting login outlasts the client's time-out on a busy machine.
        env.insert("HASH_QUEUE".into(), "6".into());
    })
    .await;
    let mut users: Vec<TestUser> = Vec::new();
    for _ in 0..4 {
        users.push(app.buyer().await);
    }
    // Right passwords, a few wrong ones (under the per-account limit) and unknown emails,
    // with calls that hash nothing in between.
    let logins = (0..40).map(|i| {
        let u = &users[i % users.len()];
        let (email, password, expected) = match i % 8 {
            0 => (u.email.clone(), "wrong-password".to_owned(), 401),
            1 => (
                format!("nobody-{i}@test.local"),
                "whatever-1".to_owned(),
                401,
            ),
            _ => (u.email.clone(), u.password.clone(), 200),
        };
        let app = &app;
        async move { (login(app, &email, &password).await, expected) }
    });
    let profiles = (0..10).map(|i| app.get("/api/users/me", Some(&users[i % 4].token)));
    let (logins, profiles) = tokio::join!(join_all(logins), join_all(profiles));

    for ((res, retry_after), expected) in &logins {
        if res.status == 503 {
            assert_busy(res, retry_after);
        } else {
            assert_eq!(res.status, *expected, "body: {}", res.body);
        }
    }
    for p in profiles {
        assert_eq!(
            p.status, 200,
            "a call that hashes nothing failed: {}",
            p.body
        );
    }
    let stats = app.hashing();
    assert_eq!(stats.concurrency, 2);
    assert!(
        (1..=2).contains(&stats.max_running),
        "{} hashes ran at once with a bound of 2",
        stats.max_running
    );
    assert_eq!(stats.running, 0);
    assert_eq!(stats.admitted, 0, "every admitted hash finished");
}

#[tokio::test]
async fn an_overflowing_queue_answers_503_busy_with_retry_after() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HASH_CONCURRENCY".into(), "1".into());
        env.insert("HASH_QUEUE".into(), "0".into());
    })
    .await;
    // Five logins per account: under the per-account login limit, so only the queue refuses.
    let mut users = Vec::new();
    for _ in 0..6 {
        users.push(app.buyer().await);
    }
    let answers =
        join_all((0..30).map(|i| login(&app, &users[i % 6].email, &users[i % 6].password))).await;

    let busy: Vec<_> = answers.iter().filter(|(r, _)| r.status == 503).collect();
    assert!(!busy.is_empty(), "30 logins at once fit a queue of 0");
    for (res, retry_after) in &busy {
        assert_busy(res, retry_after);
    }
    for (res, _) in &answers {
        assert!(
            res.status == 200 || res.status == 503,
            "unexpected {}: {}",
            res.status,
            res.body
        );
    }
    assert!(app.hashing().rejected >= busy.len() as u64);
    assert_eq!(app.hashing().max_running, 1);

    // Once the wave has passed, the same account logs in again.
    login(&app, &users[0].email, &users[0].password)
        .await
        .0
        .expect(200);
}

#[tokio::test]
async fn registrations_and_unknown_emails_go_through_the_same_bound() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HASH_CONCURRENCY".into(), "1".into());
        env.insert("HASH_QUEUE".into(), "0".into());
    })
    .await;
    // The first unknown email makes the dummy hash; count from after it.
    login(&app, "nobody@test.local", "whatever-1")
        .await
        .0
        .expect(401);
    let before = app.hashing();

    let registrations = (0..12).map(|i| {
        app.post(
            "/api/auth/register",
            None,
            json!({ "email": format!("wave-{i}@test.local"), "password": "long-enough-1", "name": "W", "role": "buyer" }),
        )
    });
    let unknown = (0..12).map(|i| {
        let app = &app;
        async move { login(app, &format!("ghost-{i}@test.local"), "whatever-1").await }
    });
    let (registrations, unknown) = tokio::join!(join_all(registrations), join_all(unknown));

    let mut hashed = 0u64;
    let mut busy = 0u64;
    for r in &registrations {
        match r.status {
            201 => hashed += 1,
            503 => {
                assert_eq!(r.code(), "busy");
                busy += 1;
            }
            other => panic!("registration answered {other}: {}", r.body),
        }
    }
    for (r, retry_after) in &unknown {
        match r.status {
            401 => hashed += 1,
            503 => {
                assert_busy(r, retry_after);
                busy += 1;
            }
            other => panic!("unknown-email login answered {other}: {}", r.body),
        }
    }
    let after = app.hashing();
    assert!(busy >= 1, "24 hashes at once fit a queue of 0");
    assert_eq!(after.max_running, 1);
    assert_eq!(after.rejected - before.rejected, busy);
    assert_eq!(
        after.completed - before.completed,
        hashed,
        "every 201 and 401 was one hash of this hasher"
    );
}
