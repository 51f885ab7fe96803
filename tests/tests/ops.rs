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
    assert_eq!(res.code(), "not_found");
}

#[tokio::test]
async fn the_docs_page_is_served() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().to_lowercase().contains("swagger"));
}

/// Every route the router answers is in the OpenAPI document, and every documented path is
/// answered (not the 404 fallback).
#[tokio::test]
async fn the_openapi_document_lists_every_route_that_exists() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/users/me",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the OpenAPI document"
        );
    }
    for (path, item) in paths {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for method in item.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app.send(app.http.request(m, app.url(&concrete))).await;
            let fell_through = res.status == 404
                && res.body["code"] == "not_found"
                && res.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("does not exist"));
            // A documented route may answer 404 for an unknown id, but never 405.
            assert_ne!(
                res.status, 405,
                "{method} {path} is documented but not routed"
            );
            if !path.contains('{') {
                assert!(
                    !fell_through || res.status != 404,
                    "{method} {path} fell through to the 404 fallback"
                );
            }
        }
    }
}

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
