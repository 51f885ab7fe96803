//! The bus as clients see it, black-box: a shutdown under load still delivers every
//! acknowledged change's event to the sockets that stayed connected before closing them, and
//! (PostgreSQL) an event committed on one node reaches a socket on another without waiting
//! for the poll.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use marketplace_tests::TestApp;
use marketplace_tests::socket::SocketClient;
use serde_json::json;

#[tokio::test]
async fn a_shutdown_with_requests_in_flight_delivers_every_acknowledged_change_before_closing_the_sockets()
 {
    let mut app = TestApp::spawn().await;
    let (admin, buyer) = (app.admin().await, app.buyer().await);
    let mut socket = SocketClient::connect(&app.base, &buyer.token)
        .await
        .expect("socket connects");

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let producers: Vec<_> = (0..12)
        .map(|p| {
            let (base, token, acked) = (app.base.clone(), admin.token.clone(), acked.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0.. {
                    let message = format!("m-{p}-{i}");
                    let sent = http
                        .post(format!("{base}/api/admin/announcements"))
                        .bearer_auth(&token)
                        .json(&json!({ "message": message }))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(message),
                        // Refused or cut off by the shutdown: not acknowledged.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // Stop once the load is under way.
    while acked.lock().unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
    for p in producers {
        let _ = p.await;
    }

    let received: Vec<String> = socket
        .drain(Duration::from_secs(10))
        .await
        .into_iter()
        .filter(|r| r.event == "system:announcement")
        .filter_map(|r| r.args.first()?["message"].as_str().map(str::to_owned))
        .collect();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 4,
        "the load was real: {} acknowledged",
        acked.len()
    );
    let missing: Vec<&String> = acked.iter().filter(|m| !received.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged changes never reached the connected socket: {missing:?}",
        missing.len(),
        acked.len()
    );
}

#[tokio::test]
async fn an_event_committed_on_one_node_reaches_a_socket_on_another_without_waiting_for_the_poll() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: several nodes need PostgreSQL (LISTEN/NOTIFY)");
        return;
    }
    // A poll of 60 s: only NOTIFY can bring the event within the 10 s below.
    let slow_poll = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("EVENT_POLL_MS".into(), "60000".into());
    };
    let node_a = TestApp::spawn_with(slow_poll).await;
    let mut env = node_a.env.clone();
    slow_poll(&mut env);
    let node_b = TestApp::start(env).await;

    let buyer = node_a.buyer().await;
    let mut socket = SocketClient::connect(&node_a.base, &buyer.token)
        .await
        .expect("socket on node A");
    let admin = node_b.admin().await;
    let sent = std::time::Instant::now();
    node_b
        .post(
            "/api/admin/announcements",
            Some(&admin.token),
            json!({ "message": "from node B" }),
        )
        .await
        .expect(202);
    let args = socket
        .expect("system:announcement", Duration::from_secs(10))
        .await;
    let written: Option<chrono::DateTime<chrono::Utc>> =
        args[1]["at"].as_str().and_then(|a| a.parse().ok());
    eprintln!(
        "node B to a socket on node A: {:?} with the POST, {:?} from the event's time",
        sent.elapsed(),
        written.map(|w| chrono::Utc::now() - w)
    );
    assert_eq!(args[0]["message"], "from node B");
    assert!(args[1]["id"].as_i64().is_some(), "durable, with its id");
}
