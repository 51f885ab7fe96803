//! The official JS client (`socket.io-client` 4.x, tests/js) against the real server: both
//! transports, every handshake path, connect_error, acks, durable events with `{ id, at }`.

use marketplace_tests::TestApp;
use marketplace_tests::js::{ensure_packages, node_test};

#[tokio::test]
async fn the_official_socket_io_client_passes_its_wire_tests_on_both_transports() {
    wire_tests().await;
}

/// The same with the server on two worker threads: the patched engineioxide then writes
/// websocket frames through each socket's connection task instead of in the sender's task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_socket_io_client_passes_its_wire_tests_on_two_workers() {
    wire_tests().await;
}

async fn wire_tests() {
    ensure_packages(&["socket.io-client"]).await;
    let app = TestApp::spawn().await;
    let stdout = node_test(
        "test/",
        &[
            ("BASE_URL", &app.base),
            // The token-expiry tests mint short-lived tokens as another service would.
            ("JWT_SECRET", marketplace_tests::JWT_SECRET),
        ],
        7,
    )
    .await;
    assert!(
        stdout.contains("polling") && stdout.contains("websocket"),
        "{stdout}"
    );
}
