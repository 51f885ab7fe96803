//! The official JS client (`socket.io-client` 4.x, tests/js) against the real server: both
//! transports, every handshake path, connect_error, acks, durable events with `{ id, at }`.

use marketplace_tests::TestApp;
use marketplace_tests::js::{ensure_packages, run};

#[tokio::test]
async fn the_official_socket_io_client_passes_its_wire_tests_on_both_transports() {
    ensure_packages(&["socket.io-client"]).await;
    let app = TestApp::spawn().await;
    let out = run(
        "node",
        &["--test", "--test-reporter=spec", "test/"],
        &[
            ("BASE_URL", &app.base),
            // The token-expiry tests mint short-lived tokens as another service would.
            ("JWT_SECRET", marketplace_tests::JWT_SECRET),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("polling") && stdout.contains("websocket"),
        "{stdout}"
    );
    let count = |label: &str| {
        stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("ℹ {label} "))
                .and_then(|n| n.trim().parse::<u32>().ok())
        })
    };
    assert_eq!(count("fail"), Some(0), "{stdout}");
    assert!(
        count("pass").is_some_and(|n| n >= 7),
        "fewer wire tests ran than written:\n{stdout}"
    );
}
