//! The official JS client (`socket.io-client` 4.x, tests/js) against the real server: both
//! transports, every handshake path, connect_error, acks, durable events with `{ id, at }`.

use std::path::PathBuf;
use std::process::Stdio;

use marketplace_tests::TestApp;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

async fn run(cmd: &str, args: &[&str], base: Option<&str>) -> std::process::Output {
    let mut c = tokio::process::Command::new(cmd);
    c.args(args)
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(base) = base {
        c.env("BASE_URL", base);
        // The token-expiry tests mint short-lived tokens as another service would.
        c.env("JWT_SECRET", marketplace_tests::JWT_SECRET);
    }
    c.output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e} (node and npm are required)"))
}

#[tokio::test]
async fn the_official_socket_io_client_passes_its_wire_tests_on_both_transports() {
    if !js_dir()
        .join("node_modules")
        .join("socket.io-client")
        .exists()
    {
        let out = run("npm", &["ci", "--no-audit", "--no-fund"], None).await;
        assert!(
            out.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let app = TestApp::spawn().await;
    let out = run(
        "node",
        &["--test", "--test-reporter=spec", "test/"],
        Some(&app.base),
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
