//! Health, readiness, documents, unknown routes, graceful restart.

use marketplace_tests::TestApp;

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.expect(200)["status"], "ok");
    assert_eq!(
        app.get("/readyz", None).await.expect(200)["status"],
        "ready"
    );
}

#[tokio::test]
async fn an_unknown_route_is_a_problem_404() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/nothing-here", None).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.content_type, "application/problem+json");
    assert_eq!(res.code(), "route_not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_problem_405() {
    let app = TestApp::spawn().await;
    let res = app.send(app.http.delete(app.url("/api/auth/login"))).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.content_type, "application/problem+json");
    assert_eq!(res.code(), "method_not_allowed");
}

#[tokio::test]
async fn the_docs_page_is_served() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().to_lowercase().contains("swagger"));
}

/// Every route of the contract is in the OpenAPI document, and every documented route is
/// really routed (a call never falls through to the unknown-route 404 or a 405).
#[tokio::test]
async fn the_openapi_document_lists_every_route_that_exists() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in CONTRACT_ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from the OpenAPI document"));
        assert!(
            item.get(*method).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let mut calls = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for method in item.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app.send(app.http.request(m, app.url(&concrete))).await;
            assert_ne!(
                res.status, 405,
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                res.code(),
                "route_not_found",
                "{method} {path} is documented but not routed"
            );
            calls += 1;
        }
    }
    assert!(calls >= CONTRACT_ROUTES.len());
}

/// Every operation of the document `marketplace openapi` prints has its own `operationId`
/// (the OpenAPI specification requires it, and client generators such as openapi-typescript
/// name functions after it), spelled as a camelCase verb and object (`markChatRead`), never a
/// handler's bare name (`list`, `mark_read`) left as utoipa's default.
#[tokio::test]
async fn every_operation_has_its_own_meaningful_operation_id() {
    let config = marketplace_api::Config::from_lookup(|_| None).expect("default config");
    let doc = marketplace_api::openapi_document(&config)
        .await
        .expect("the document");
    let doc = serde_json::to_value(&doc).expect("json");
    let mut seen = std::collections::BTreeMap::<String, String>::new();
    let mut bad = Vec::new();
    let camel = |id: &str| {
        let mut chars = id.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && id.chars().any(|c| c.is_ascii_uppercase())
    };
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let here = format!("{} {path}", method.to_uppercase());
            let Some(id) = op["operationId"].as_str() else {
                bad.push(format!("{here}: no operationId"));
                continue;
            };
            if !camel(id) {
                bad.push(format!("{here}: `{id}` is not a camelCase verb and object"));
            }
            if let Some(other) = seen.insert(id.to_owned(), here.clone()) {
                bad.push(format!("{here}: `{id}` also names {other}"));
            }
        }
    }
    assert!(seen.len() >= 70, "too few operations: {}", seen.len());
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(
        seen.get("markChatRead").map(String::as_str),
        Some("POST /api/chats/{id}/read")
    );
    assert_eq!(
        seen.get("markNotificationRead").map(String::as_str),
        Some("POST /api/notifications/{id}/read")
    );
}

/// The REST routes of CONTRACT.md (operational ones included).
const CONTRACT_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("get", "/api/users/me"),
    ("patch", "/api/users/me"),
    ("get", "/api/users/{id}/presence"),
    ("get", "/api/asyncapi.json"),
    ("get", "/api/events"),
    ("get", "/api/events/head"),
    ("post", "/api/requests"),
    ("get", "/api/requests"),
    ("get", "/api/requests/{id}"),
    ("post", "/api/requests/{id}/cancel"),
    ("post", "/api/requests/{id}/complete"),
    ("post", "/api/requests/{id}/offers"),
    ("get", "/api/requests/{id}/offers"),
    ("post", "/api/offers/{id}/counter"),
    ("get", "/api/offers/{id}/messages"),
    ("post", "/api/offers/{id}/accept"),
    ("post", "/api/offers/{id}/withdraw"),
    ("post", "/api/offers/{id}/reject"),
    ("get", "/api/chats"),
    ("get", "/api/chats/{id}"),
    ("get", "/api/chats/{id}/messages"),
    ("post", "/api/chats/{id}/messages"),
    ("post", "/api/chats/{id}/read"),
    ("get", "/api/notifications"),
    ("get", "/api/notifications/unread-count"),
    ("post", "/api/notifications/{id}/read"),
    ("post", "/api/notifications/read-all"),
    ("get", "/api/payments/cryptos"),
    ("post", "/api/payments"),
    ("get", "/api/payments"),
    ("get", "/api/payments/{id}"),
    ("post", "/api/webhooks/shkeeper"),
    ("post", "/api/webhooks/shkeeper/payout"),
    ("get", "/api/admin/webhooks"),
    ("get", "/api/admin/attention"),
    ("post", "/api/admin/payouts/{id}/retry"),
    ("post", "/api/admin/payments/{id}/refund"),
    ("get", "/api/payouts"),
    ("get", "/api/payouts/{id}"),
    ("post", "/api/sandbox/payments/{id}/simulate"),
    ("post", "/api/requests/{id}/disputes"),
    ("post", "/api/disputes/{id}/evidence"),
    ("get", "/api/disputes"),
    ("get", "/api/disputes/{id}"),
    ("post", "/api/disputes/{id}/resolve"),
    ("post", "/api/admin/announcements"),
    ("post", "/api/admin/maintenance"),
];

/// On PostgreSQL the database is taken away for real: connections refused and the app's
/// sessions terminated; then allowed back. (Embedded SQLite has no server to lose: an open
/// file stays readable, so this check runs in the PostgreSQL pass of the suite.)
#[tokio::test]
async fn readyz_is_503_while_the_database_is_gone_and_200_when_it_returns() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "readyz outage test needs TEST_DATABASE_URL (PostgreSQL); it runs in the PostgreSQL pass"
        );
        return;
    };
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let down = marketplace_tests::eventually(std::time::Duration::from_secs(20), || async {
        let res = app.get("/readyz", None).await;
        (res.status == 503).then_some(res)
    })
    .await
    .expect("readyz did not go 503 while the database was gone");
    assert_eq!(down.content_type, "application/problem+json");
    admin
        .execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    marketplace_tests::eventually(std::time::Duration::from_secs(20), || async {
        (app.get("/readyz", None).await.status == 200).then_some(())
    })
    .await
    .expect("readyz did not return to 200");
}
