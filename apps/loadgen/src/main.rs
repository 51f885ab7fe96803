//! `loadgen`: opens N authenticated Socket.IO websocket sockets (from several 127.0.0.x
//! source addresses), reports the server's RSS growth per socket, how long one emit to a room
//! of all N sockets takes to reach every one of them, and REST-action-to-socket latency.
//!
//! ```text
//! loadgen --url http://127.0.0.1:3000 --sockets 15000 --server-pid $(pgrep -n marketplace) \
//!         --admin-email admin@bench.local --admin-password bench-password-1
//! ```
//! One process holds at most ~19,900 sockets (open-files limit 20,000): run several for more.
//!
//! `--mode login-storm` instead fires a wave of logins at once (see [`storm`]):
//! ```text
//! loadgen --mode login-storm --url http://127.0.0.1:3000 --accounts 30 --logins 300 \
//!         --server-pid $(pgrep -n marketplace)
//! ```

mod storm;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// N websocket sockets, RSS per socket, emit latency.
    Sockets,
    /// Logins at once: logins/s, status counts, RSS, latency of a non-hashing call.
    LoginStorm,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Trigger {
    /// `POST /api/requests` as a buyer → `request:created` to the `sellers` room.
    Request,
    /// `POST /api/admin/announcements` as the admin → `system:announcement` to everyone.
    Announcement,
}

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Socket.IO load generator for the marketplace server"
)]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Sockets)]
    mode: Mode,
    /// login-storm: accounts registered before the storm.
    #[arg(long, default_value_t = 30)]
    accounts: usize,
    /// login-storm: logins fired at the same instant, spread over the accounts.
    #[arg(long, default_value_t = 300)]
    logins: usize,
    /// login-storm: percent of the logins with a wrong password.
    #[arg(long, default_value_t = 10)]
    wrong_percent: usize,
    /// login-storm: percent of the logins for an email nobody registered.
    #[arg(long, default_value_t = 10)]
    unknown_percent: usize,
    /// login-storm: seconds after the storm at which RSS is read again.
    #[arg(long, default_value_t = 15)]
    settle_secs: u64,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Sockets to open (at most ~19,900 per process).
    #[arg(long, default_value_t = 1000)]
    sockets: usize,
    /// Distinct seller accounts the sockets are spread over.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Source addresses: 127.0.0.2 .. 127.0.0.(1+N).
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// The server's pid, to read VmRSS from /proc/<pid>/status.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Emit rounds to time.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    #[arg(long, value_enum, default_value_t = Trigger::Request)]
    trigger: Trigger,
    #[arg(long)]
    admin_email: Option<String>,
    #[arg(long)]
    admin_password: Option<String>,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn register(http: &reqwest::Client, base: &str, role: &str, n: usize) -> Result<String> {
    let email = format!("loadgen-{role}-{n}-{}@bench.local", std::process::id());
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({ "email": email, "password": "loadgen-password-1", "name": format!("loadgen {role} {n}"), "role": role }))
        .send()
        .await?;
    if res.status().as_u16() != 201 {
        bail!("register {role}: {}", res.status());
    }
    let body: Value = res.json().await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no token"))
}

async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Result<String> {
    let res = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("admin login: {}", res.status());
    }
    let body: Value = res.json().await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no token"))
}

/// One socket: handshake, then answer pings and report marked events as `(round, instant)`.
async fn open_socket(
    server: SocketAddr,
    source: IpAddr,
    token: String,
    marks: mpsc::UnboundedSender<(usize, Instant)>,
) -> Result<()> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source, 0))?;
    let stream = sock.connect(server).await?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket");
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    let (mut sink, mut stream) = ws.split();
    match stream.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
        other => bail!("no open packet: {other:?}"),
    }
    sink.send(Message::text(format!("40{}", json!({ "token": token }))))
        .await?;
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("40") => break,
            Some(Ok(Message::Text(t))) if t.starts_with("44") => bail!("refused: {t}"),
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                sink.send(Message::text("3")).await?
            }
            Some(Ok(_)) => {}
            other => bail!("closed during connect: {other:?}"),
        }
    }
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(t) = msg else { continue };
            let t = t.as_str();
            if t == "2" {
                if sink.send(Message::text("3")).await.is_err() {
                    break;
                }
            } else if let Some(i) = t.find("loadgen-round-") {
                let now = Instant::now();
                let digits: String = t[i + 14..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let Ok(round) = digits.parse() {
                    let _ = marks.send((round, now));
                }
            }
        }
    });
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/').to_owned();
    if let Mode::LoginStorm = args.mode {
        return storm::run(storm::StormArgs {
            base,
            accounts: args.accounts,
            logins: args.logins,
            wrong_percent: args.wrong_percent,
            unknown_percent: args.unknown_percent,
            server_pid: args.server_pid,
            settle_secs: args.settle_secs,
        })
        .await;
    }
    let authority = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let server: SocketAddr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .context("server address")?;
    let http = reqwest::Client::new();

    let mut tokens = Vec::with_capacity(args.users);
    for i in 0..args.users.max(1) {
        tokens.push(register(&http, &base, "seller", i).await?);
    }
    let trigger_token = match args.trigger {
        Trigger::Request => register(&http, &base, "buyer", 0).await?,
        Trigger::Announcement => {
            let (Some(e), Some(p)) = (&args.admin_email, &args.admin_password) else {
                bail!("--trigger announcement needs --admin-email and --admin-password");
            };
            login(&http, &base, e, p).await?
        }
    };
    let rss_before = args.server_pid.and_then(rss_kib);

    let (marks_tx, mut marks_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let permit = sem.clone().acquire_owned().await?;
        let source = IpAddr::from([127, 0, 0, 2 + (i % args.sources.max(1) as usize) as u8]);
        let token = tokens[i % tokens.len()].clone();
        let (marks, failed) = (marks_tx.clone(), failed.clone());
        handles.push(tokio::spawn(async move {
            if let Err(e) = open_socket(server, source, token, marks).await
                && failed.fetch_add(1, Ordering::Relaxed) < 5
            {
                eprintln!("socket failed: {e:#}");
            }
            drop(permit);
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let connected = args.sockets - failed.load(Ordering::Relaxed);
    let connect_secs = started.elapsed().as_secs_f64();
    println!(
        "connected {connected}/{} sockets in {connect_secs:.1} s from {} source addresses",
        args.sockets, args.sources
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let (Some(pid), Some(before)) = (args.server_pid, rss_before)
        && let Some(after) = rss_kib(pid)
    {
        let per = (after.saturating_sub(before) as f64 * 1024.0) / connected.max(1) as f64;
        println!(
            "server RSS: {before} KiB before, {after} KiB after; {:.1} KiB per socket",
            per / 1024.0
        );
    }

    let mut reach_all = Vec::new();
    let mut first_arrival = Vec::new();
    let mut per_socket = Vec::new();
    for round in 0..args.rounds {
        while marks_rx.try_recv().is_ok() {}
        let marker = format!("loadgen-round-{round}");
        let t0 = Instant::now();
        let res = match args.trigger {
            Trigger::Request => http
                .post(format!("{base}/api/requests"))
                .bearer_auth(&trigger_token)
                .json(&json!({ "title": marker, "description": "loadgen", "category": "loadgen" }))
                .send()
                .await?,
            Trigger::Announcement => {
                http.post(format!("{base}/api/admin/announcements"))
                    .bearer_auth(&trigger_token)
                    .json(&json!({ "message": marker }))
                    .send()
                    .await?
            }
        };
        if !res.status().is_success() {
            bail!("trigger failed: {}", res.status());
        }
        let mut got = 0usize;
        let mut first: Option<f64> = None;
        let mut last = 0f64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got < connected {
            match tokio::time::timeout_at(deadline, marks_rx.recv()).await {
                Ok(Some((r, at))) if r == round => {
                    let ms = at.duration_since(t0).as_secs_f64() * 1000.0;
                    first = Some(first.map_or(ms, |f: f64| f.min(ms)));
                    last = last.max(ms);
                    per_socket.push(ms);
                    got += 1;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if got < connected {
            println!(
                "round {round}: only {got}/{connected} sockets received the event within 30 s"
            );
        }
        reach_all.push(last);
        first_arrival.push(first.unwrap_or(f64::NAN));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sort =
        |v: &mut Vec<f64>| v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sort(&mut reach_all);
    sort(&mut first_arrival);
    sort(&mut per_socket);
    println!(
        "emit to {connected} sockets, REST action → last socket (ms, {} rounds): p50 {:.1}, p99 {:.1}, max {:.1}",
        args.rounds,
        percentile(&reach_all, 50.0),
        percentile(&reach_all, 99.0),
        reach_all.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "REST action → first socket (ms): p50 {:.1}, p99 {:.1}",
        percentile(&first_arrival, 50.0),
        percentile(&first_arrival, 99.0)
    );
    println!(
        "REST action → each socket, all deliveries (ms): p50 {:.1}, p99 {:.1}",
        percentile(&per_socket, 50.0),
        percentile(&per_socket, 99.0)
    );
    Ok(())
}
