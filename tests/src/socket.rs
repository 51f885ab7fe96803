//! A minimal Socket.IO v5 client over tokio-tungstenite, enough to test the gateway at the
//! wire level: engine.io open packet, `40{auth}` connect (or `44{message}` refusal), `42`
//! events, `42<id>`/`43<id>` acks, and ping/pong.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One event received: its name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub event: String,
    pub args: Vec<Value>,
}

/// How to open a socket.
#[derive(Debug, Clone, Default)]
pub struct SocketOptions {
    /// The handshake `auth` object (`{ token, lastEventId }`); `None` sends a bare `40`.
    pub auth: Option<Value>,
    /// Extra HTTP headers of the upgrade request (`Authorization`, `Cookie`, `Origin`).
    pub headers: Vec<(String, String)>,
}

type Acks = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>>;

/// A connected socket on namespace `/`.
pub struct SocketClient {
    out: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedReceiver<Received>,
    buffer: VecDeque<Received>,
    acks: Acks,
    next_ack: AtomicU64,
    pub sid: String,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

/// Why a socket did not connect.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectError {
    /// The server answered `44` with this message (`connect_error`).
    Refused(String),
    /// Anything else (HTTP refusal, closed transport, timeout).
    Transport(String),
}

impl ConnectError {
    pub fn message(&self) -> &str {
        match self {
            Self::Refused(m) | Self::Transport(m) => m,
        }
    }
}

fn ws_url(base: &str) -> String {
    let base = base
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

impl SocketClient {
    /// Connects with `auth: { token }`.
    pub async fn connect(base: &str, token: &str) -> Result<SocketClient, ConnectError> {
        Self::open(
            base,
            SocketOptions {
                auth: Some(serde_json::json!({ "token": token })),
                headers: vec![],
            },
        )
        .await
    }

    /// Connects with these options and waits for the namespace answer.
    pub async fn open(base: &str, options: SocketOptions) -> Result<SocketClient, ConnectError> {
        tokio::time::timeout(Duration::from_secs(10), Self::open_inner(base, options))
            .await
            .unwrap_or_else(|_| Err(ConnectError::Transport("timed out".into())))
    }

    async fn open_inner(base: &str, options: SocketOptions) -> Result<SocketClient, ConnectError> {
        let t = |e: &dyn std::fmt::Display| ConnectError::Transport(e.to_string());
        let mut req = ws_url(base).into_client_request().map_err(|e| t(&e))?;
        for (k, v) in &options.headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName =
                k.parse().map_err(|e| t(&e))?;
            req.headers_mut()
                .insert(name, v.parse().map_err(|e| t(&e))?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| t(&e))?;
        let (mut sink, mut stream) = ws.split();

        // Engine.IO open packet.
        let open = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => break text.to_string(),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(t(&e)),
                None => return Err(ConnectError::Transport("closed before open".into())),
            }
        };
        if !open.starts_with('0') {
            return Err(ConnectError::Transport(format!(
                "unexpected open packet {open}"
            )));
        }
        let connect = match &options.auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        sink.send(Message::text(connect)).await.map_err(|e| t(&e))?;

        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel::<Received>();
        let acks: Acks = Arc::default();
        let (ns_tx, ns_rx) = oneshot::channel::<Result<String, ConnectError>>();

        let writer = tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_out = out_tx.clone();
        let reader_acks = acks.clone();
        let reader = tokio::spawn(async move {
            let mut ns_tx = Some(ns_tx);
            let mut pending_before_connect: Vec<Received> = Vec::new();
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let text = text.as_str();
                if text == "2" {
                    let _ = reader_out.send("3".into());
                    continue;
                }
                let Some(packet) = text.strip_prefix('4') else {
                    continue;
                };
                let (kind, rest) = packet.split_at(packet.len().min(1));
                match kind {
                    "0" => {
                        let sid = serde_json::from_str::<Value>(rest)
                            .ok()
                            .and_then(|v| v["sid"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        if let Some(tx) = ns_tx.take() {
                            let _ = tx.send(Ok(sid));
                        }
                        for r in pending_before_connect.drain(..) {
                            let _ = ev_tx.send(r);
                        }
                    }
                    "4" => {
                        let message = serde_json::from_str::<Value>(rest)
                            .ok()
                            .and_then(|v| v["message"].as_str().map(str::to_owned))
                            .unwrap_or_else(|| rest.to_owned());
                        if let Some(tx) = ns_tx.take() {
                            let _ = tx.send(Err(ConnectError::Refused(message)));
                        }
                    }
                    "1" => break,
                    "2" => {
                        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
                        let Ok(Value::Array(mut arr)) =
                            serde_json::from_str::<Value>(&rest[digits..])
                        else {
                            continue;
                        };
                        if arr.is_empty() {
                            continue;
                        }
                        let event = arr.remove(0).as_str().unwrap_or_default().to_owned();
                        let r = Received { event, args: arr };
                        if ns_tx.is_some() {
                            pending_before_connect.push(r);
                        } else {
                            let _ = ev_tx.send(r);
                        }
                    }
                    "3" => {
                        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
                        let Ok(id) = rest[..digits].parse::<u64>() else {
                            continue;
                        };
                        let args = match serde_json::from_str::<Value>(&rest[digits..]) {
                            Ok(Value::Array(a)) => a,
                            _ => vec![],
                        };
                        if let Some(tx) = reader_acks.lock().await.remove(&id) {
                            let _ = tx.send(args);
                        }
                    }
                    _ => {}
                }
            }
            if let Some(tx) = ns_tx.take() {
                let _ = tx.send(Err(ConnectError::Transport("closed before connect".into())));
            }
        });
        let sid = match ns_rx.await {
            Ok(Ok(sid)) => sid,
            Ok(Err(e)) => {
                reader.abort();
                writer.abort();
                return Err(e);
            }
            Err(_) => return Err(ConnectError::Transport("reader ended".into())),
        };
        Ok(SocketClient {
            out: out_tx,
            events: ev_rx,
            buffer: VecDeque::new(),
            acks,
            next_ack: AtomicU64::new(1),
            sid,
            reader,
            writer,
        })
    }

    /// Sends an event with one argument, without ack.
    pub fn emit(&self, event: &str, arg: Value) {
        let _ = self.out.send(format!(
            "42{}",
            Value::Array(vec![Value::String(event.into()), arg])
        ));
    }

    /// Sends raw arguments (any number, any shape) and waits for the ack's arguments.
    pub async fn emit_raw_with_ack(&self, event: &str, args: Vec<Value>) -> Vec<Value> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.acks.lock().await.insert(id, tx);
        let mut arr = vec![Value::String(event.into())];
        arr.extend(args);
        let _ = self.out.send(format!("42{id}{}", Value::Array(arr)));
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(args)) => args,
            _ => panic!("no ack for {event} within 10 s"),
        }
    }

    /// Sends an event with one argument and returns the ack's first argument.
    pub async fn ack(&self, event: &str, arg: Value) -> Value {
        self.emit_raw_with_ack(event, vec![arg])
            .await
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    async fn pull(&mut self, deadline: tokio::time::Instant) -> Option<Received> {
        tokio::time::timeout_at(deadline, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the next `event` (other events stay buffered for later calls).
    pub async fn expect(&mut self, event: &str, within: Duration) -> Vec<Value> {
        match self.wait_for(event, within).await {
            Some(args) => args,
            None => panic!("no {event} within {within:?}; buffered: {:?}", self.buffer),
        }
    }

    /// The next `event` within `within`, if any.
    pub async fn wait_for(&mut self, event: &str, within: Duration) -> Option<Vec<Value>> {
        if let Some(pos) = self.buffer.iter().position(|r| r.event == event) {
            return self.buffer.remove(pos).map(|r| r.args);
        }
        let deadline = tokio::time::Instant::now() + within;
        while let Some(r) = self.pull(deadline).await {
            if r.event == event {
                return Some(r.args);
            }
            self.buffer.push_back(r);
        }
        None
    }

    /// Everything received within `within` (buffered events first), in order.
    pub async fn drain(&mut self, within: Duration) -> Vec<Received> {
        let mut all: Vec<Received> = self.buffer.drain(..).collect();
        let deadline = tokio::time::Instant::now() + within;
        while let Some(r) = self.pull(deadline).await {
            all.push(r);
        }
        all
    }

    /// How many `event`s arrive within `within` (consumes them).
    pub async fn count(&mut self, event: &str, within: Duration) -> usize {
        let all = self.drain(within).await;
        let (hits, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.event == event);
        self.buffer.extend(rest);
        hits.len()
    }

    /// Closes the socket (a `41` then the websocket close).
    pub async fn close(self) {
        let _ = self.out.send("41".into());
        drop(self.out);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
        self.reader.abort();
    }
}

impl crate::TestApp {
    /// A socket of `user` on this app, authenticated with `auth: { token }`; panics when it
    /// is refused. Causes `user:online` when it is the user's first socket.
    pub async fn socket(&self, user: &crate::TestUser) -> SocketClient {
        SocketClient::connect(&self.base, &user.token)
            .await
            .expect("socket connects")
    }

    /// A socket of `user` that asks for the events after `last_event_id` to be replayed
    /// (`auth: { token, lastEventId }`); panics when it is refused.
    pub async fn socket_after(&self, user: &crate::TestUser, last_event_id: i64) -> SocketClient {
        SocketClient::open(
            &self.base,
            SocketOptions {
                auth: Some(
                    serde_json::json!({ "token": user.token, "lastEventId": last_event_id }),
                ),
                headers: vec![],
            },
        )
        .await
        .expect("socket connects")
    }
}
