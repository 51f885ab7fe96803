//! Engine.IO behaviour the patched engineioxide (`patches/engineioxide`) must keep, on both
//! transports: the heartbeat (a client that stops answering pings is disconnected after
//! pingInterval + pingTimeout, one that answers stays), and a burst of events larger than a
//! socket's buffers reaching a slow reader complete and in order; and `SOCKET_MAX_PAYLOAD_BYTES`
//! on websockets (an oversized frame or fragmented message closes the connection as soon as
//! its size is known, before authentication, while a message of the largest payload passes).
//! The polling → websocket upgrade is covered by the official client (`js_client`).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use marketplace_tests::TestApp;
use marketplace_tests::socket::SocketClient;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A server whose sockets are pinged every second and must answer within a second.
async fn fast_heartbeat_app() -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("SOCKET_PING_INTERVAL_SECS".into(), "1".into());
        env.insert("SOCKET_PING_TIMEOUT_SECS".into(), "1".into());
    })
    .await
}

const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(1);
/// Scheduling slack on a busy test machine.
const SLACK: Duration = Duration::from_secs(3);

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A raw websocket session with the namespace connected (after `40{sid}`), its open packet
/// and the pings that came before `40` (engineioxide pings at once). `recv_buffer`: the
/// client socket's receive buffer (a slow reader's small window); `answer`: answer those pings.
async fn raw_ws(
    app: &TestApp,
    token: &str,
    recv_buffer: Option<u32>,
    answer: bool,
) -> (Ws, Value, usize) {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        tcp.set_recv_buffer_size(size).unwrap();
    }
    let stream = tcp.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let open = next_text(&mut ws).await.expect("open packet");
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    ws.send(Message::text(format!("40{}", json!({ "token": token }))))
        .await
        .unwrap();
    let mut pings = 0;
    loop {
        let text = next_text(&mut ws).await.expect("connect packet");
        if text == "2" {
            pings += 1;
            if answer {
                ws.send(Message::text("3")).await.unwrap();
            }
            continue;
        }
        assert!(text.starts_with("40"), "{text}");
        return (ws, open, pings);
    }
}

/// The next text frame, `None` once the server closed the websocket.
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no frame for 10 s")
        {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

// On a one-worker runtime (the tests' default) engineioxide writes websocket frames in the
// sender's task; with several workers, through the connection task. Both are tested.

#[tokio::test]
async fn a_websocket_that_stops_answering_pings_is_closed_after_the_ping_timeout() {
    websocket_heartbeat().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_stops_answering_pings_is_closed_after_the_ping_timeout_on_two_workers() {
    websocket_heartbeat().await;
}

async fn websocket_heartbeat() {
    let app = fast_heartbeat_app().await;
    let user = app.seller().await;
    let (mut silent, open, mut pings) = raw_ws(&app, &user.token, None, false).await;
    let connected = Instant::now();
    assert_eq!(open["pingInterval"], 1000, "{open}");
    assert_eq!(open["pingTimeout"], 1000, "{open}");
    // The answering client (it answers every `2` with `3`) on the same server.
    let answering = SocketClient::connect(&app.base, &user.token).await.unwrap();

    let mut first_ping = (pings > 0).then(Instant::now);
    let mut frames = Vec::new();
    while let Some(text) = next_text(&mut silent).await {
        if text == "2" {
            pings += 1;
            first_ping.get_or_insert_with(Instant::now);
        }
        frames.push(text);
    }
    let closed = Instant::now();
    assert_eq!(pings, 1, "one unanswered ping, then the end: {frames:?}");
    assert_eq!(frames.last().map(String::as_str), Some("1"), "{frames:?}");
    let after_ping = closed - first_ping.unwrap();
    assert!(
        after_ping >= TIMEOUT - Duration::from_millis(100),
        "closed {after_ping:?} after the ping"
    );
    let lifetime = closed - connected;
    assert!(
        lifetime <= INTERVAL + TIMEOUT + SLACK,
        "closed only after {lifetime:?}"
    );

    // Two more intervals later the answering socket is still served.
    tokio::time::sleep(2 * INTERVAL).await;
    let ack = answering.ack("join-user-room", json!(user.id)).await;
    assert_eq!(ack["ok"], true, "{ack}");
}

/// One polling GET: the payload's packets (records separated by `\x1e`), or `None` once the
/// session is gone (HTTP 400 unknown sid).
async fn poll(app: &TestApp, sid: &str) -> Option<Vec<String>> {
    let res = app
        .http
        .get(app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    if !res.status().is_success() {
        return None;
    }
    let body = res.text().await.unwrap();
    Some(body.split('\x1e').map(str::to_owned).collect())
}

async fn post(app: &TestApp, sid: &str, body: String) -> bool {
    app.http
        .post(app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
}

/// A polling session with the namespace connected: its sid and the pings that came before
/// `40` (not answered).
async fn polling_session(app: &TestApp, token: &str) -> (String, usize) {
    let open = app
        .http
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert!(post(app, &sid, format!("40{}", json!({ "token": token }))).await);
    let mut pings = 0;
    loop {
        let packets = poll(app, &sid).await.expect("session open");
        pings += packets.iter().filter(|p| *p == "2").count();
        if packets.iter().any(|p| p.starts_with("40")) {
            return (sid, pings);
        }
    }
}

#[tokio::test]
async fn a_polling_client_that_stops_answering_pings_is_closed_after_the_ping_timeout() {
    let app = fast_heartbeat_app().await;
    let user = app.seller().await;
    let connected = Instant::now();
    let (silent, mut pings) = polling_session(&app, &user.token).await;
    let (answering, answering_pings) = polling_session(&app, &user.token).await;
    if answering_pings > 0 {
        assert!(post(&app, &answering, "3".into()).await);
    }

    // The answering session polls and answers for 3 intervals.
    let keep_alive = {
        let (app_base, sid) = (app.base.clone(), answering.clone());
        let http = app.http.clone();
        tokio::spawn(async move {
            let url = format!("{app_base}/socket.io/?EIO=4&transport=polling&sid={sid}");
            let until = Instant::now() + 3 * INTERVAL;
            let mut pongs = 0;
            while Instant::now() < until {
                let res = http.get(&url).send().await.unwrap();
                assert!(res.status().is_success(), "answering session closed");
                if res.text().await.unwrap().split('\x1e').any(|p| p == "2") {
                    let res = http.post(&url).body("3").send().await.unwrap();
                    assert!(res.status().is_success());
                    pongs += 1;
                }
            }
            pongs
        })
    };

    // The silent one gets one ping, then the close packet (or its sid is gone).
    let mut seen = Vec::new();
    let end = loop {
        match poll(&app, &silent).await {
            Some(packets) => {
                pings += packets.iter().filter(|p| *p == "2").count();
                let closed = packets.iter().any(|p| p == "1");
                seen.extend(packets);
                if closed {
                    break Instant::now();
                }
            }
            None => break Instant::now(),
        }
    };
    assert_eq!(pings, 1, "{seen:?}");
    let lifetime = end - connected;
    assert!(
        lifetime <= INTERVAL + TIMEOUT + SLACK,
        "closed only after {lifetime:?}"
    );
    assert!(
        lifetime >= TIMEOUT,
        "closed after {lifetime:?}, before the ping timeout"
    );

    assert!(
        keep_alive.await.unwrap() >= 2,
        "the answering session was pinged and kept"
    );
    assert!(
        post(&app, &answering, "3".into()).await,
        "answering session still open"
    );
}

const BURST: usize = 300;

/// More events at once than the socket buffers hold, to a client that reads slowly: each
/// arrives once, in order (the packets that could not be written at once wait in the queue).
#[tokio::test]
async fn a_burst_larger_than_the_socket_buffers_reaches_a_slow_reader_in_order() {
    burst().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_socket_buffers_reaches_a_slow_reader_in_order_on_two_workers() {
    burst().await;
}

async fn burst() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.seller().await;
    let (mut ws, _, _) = raw_ws(&app, &user.token, Some(4096), true).await;

    // 300 announcements of ~1.9 KB (~570 KB) to a client with a 4 KiB receive window.
    let message = "x".repeat(1900);
    for i in 0..BURST {
        app.post(
            "/api/admin/announcements",
            Some(&admin.token),
            json!({ "message": format!("{i} {message}") }),
        )
        .await
        .expect(202);
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let the server hit the full buffer
    let mut got = Vec::new();
    while got.len() < BURST {
        let text = next_text(&mut ws).await.expect("socket open");
        if text == "2" {
            ws.send(Message::text("3")).await.unwrap();
            continue;
        }
        let Some(event) = text.strip_prefix("42") else {
            continue;
        };
        let v: Value = serde_json::from_str(event).unwrap();
        if v[0] == "system:announcement" {
            let m = v[1]["message"].as_str().unwrap();
            got.push(m.split(' ').next().unwrap().parse::<usize>().unwrap());
        }
    }
    assert_eq!(got, (0..BURST).collect::<Vec<_>>());
}

// ---------------------------------------------------------------- message size

/// `SOCKET_MAX_PAYLOAD_BYTES` in the size tests: small, so the oversized frames are cheap.
const MAX_PAYLOAD: usize = 100_000;

async fn small_payload_app() -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("SOCKET_MAX_PAYLOAD_BYTES".into(), MAX_PAYLOAD.to_string());
    })
    .await
}

/// A raw websocket after the engine.io open packet, nothing sent yet (not authenticated).
async fn unauthenticated_ws(app: &TestApp) -> Ws {
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let open = next_text(&mut ws).await.expect("open packet");
    assert!(open.starts_with('0'), "{open}");
    ws
}

/// The bytes of one client frame (masked, as a client must) whose header announces `len`
/// payload bytes, followed by `payload` (which may be shorter: the rest is never sent).
fn client_frame(fin: bool, opcode: u8, len: u64, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => frame.push(0x80 | len as u8),
        126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&len.to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Writes raw bytes under the websocket; `false` once the server has closed the connection.
async fn write_raw(ws: &mut Ws, bytes: &[u8]) -> bool {
    use tokio::io::AsyncWriteExt;
    ws.get_mut().write_all(bytes).await.is_ok()
}

/// Whether the server closes the websocket within `within` without having answered the
/// packet (a `4x` Socket.IO packet would mean it read and parsed it).
async fn closed_unanswered(ws: &mut Ws, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(Message::Text(t)))) => {
                assert!(
                    !t.starts_with('4'),
                    "the server parsed the oversized packet: {t}"
                );
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The start of a CONNECT packet with an endless token, as the hostile review sent it.
fn connect_packet_start(len: usize) -> Vec<u8> {
    let mut p = b"40{\"token\":\"".to_vec();
    p.resize(len, b'a');
    p
}

#[tokio::test]
async fn oversized_websocket_frames_and_messages_close_the_connection_before_they_are_read_whole() {
    let app = small_payload_app().await;
    let buyer = app.buyer().await;

    // One frame announcing 20 × the limit: refused from its header, the payload never waited
    // for (only its first kilobyte is ever sent).
    let mut ws = unauthenticated_ws(&app).await;
    let announced = (MAX_PAYLOAD * 20) as u64;
    let frame = client_frame(true, 0x1, announced, &connect_packet_start(1000));
    assert!(write_raw(&mut ws, &frame).await);
    assert!(
        closed_unanswered(&mut ws, Duration::from_secs(5)).await,
        "a frame announcing {announced} bytes did not close the connection"
    );

    // A fragmented message, each fragment under the limit: closed once the fragments add up
    // to more, without waiting for the final one (which never comes).
    let mut ws = unauthenticated_ws(&app).await;
    let fragment = MAX_PAYLOAD * 6 / 10;
    let first = client_frame(false, 0x1, fragment as u64, &connect_packet_start(fragment));
    let more = client_frame(false, 0x0, fragment as u64, &vec![b'a'; fragment]);
    assert!(write_raw(&mut ws, &first).await);
    write_raw(&mut ws, &more).await;
    assert!(
        closed_unanswered(&mut ws, Duration::from_secs(5)).await,
        "{} bytes in fragments did not close the connection",
        2 * fragment
    );

    // The server is up and a normal client is served.
    app.get("/healthz", None).await.expect(200);
    let s = SocketClient::connect(&app.base, &buyer.token)
        .await
        .expect("a normal socket after the oversized ones");
    assert_eq!(s.ack("join-user-room", json!(buyer.id)).await["ok"], true);
    s.close().await;
}

#[tokio::test]
async fn a_websocket_message_with_a_payload_of_the_largest_size_still_passes() {
    let app = small_payload_app().await;
    let buyer = app.buyer().await;
    let s = SocketClient::connect(&app.base, &buyer.token)
        .await
        .unwrap();
    // The event's JSON array (`["join-user-room","xx…"]`) is exactly SOCKET_MAX_PAYLOAD_BYTES;
    // the packet around it adds its framing (`42` and the ack id).
    let overhead = json!(["join-user-room", ""]).to_string().len();
    let big = "x".repeat(MAX_PAYLOAD - overhead);
    assert_eq!(
        json!(["join-user-room", big]).to_string().len(),
        MAX_PAYLOAD
    );
    let ack = s.ack("join-user-room", json!(big)).await;
    assert_eq!(
        ack["ok"], false,
        "answered, as for any id that is not one: {ack}"
    );
    // The socket is still fine.
    assert_eq!(s.ack("join-user-room", json!(buyer.id)).await["ok"], true);
    s.close().await;
}
