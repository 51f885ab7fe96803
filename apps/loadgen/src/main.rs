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
//! Several nodes: `--url` takes a comma-separated list; sockets are spread over the nodes in
//! turn, the triggering REST call goes to the first one, and deliveries are reported per node
//! (the first node is where the event was caused, the others measure cross-node delivery).
//! More sockets than one process may hold: start `--passive` processes first (they open
//! sockets and time the rounds another process triggers, from the wall-clock time carried in
//! the event), then one active process with `--start-after` long enough for them to connect.
//!
//! `--mode login-storm` instead fires a wave of logins at once (see [`storm`]):
//! ```text
//! loadgen --mode login-storm --url http://127.0.0.1:3000 --accounts 30 --logins 300 \
//!         --server-pid $(pgrep -n marketplace)
//! ```
//!
//! `--mode rest-latency` and `--mode write-throughput` time the REST side of the event path
//! (see [`rest`]):
//! ```text
//! loadgen --mode rest-latency --url http://127.0.0.1:3000 --rate 1000 --duration 20
//! loadgen --mode write-throughput --url http://127.0.0.1:3000 --clients 32 --duration 20
//! ```
//!
//! `--mode deliveries` makes `--requests` delivered requests through the REST API (see
//! [`deliveries`]; `bench/auto-complete.sh` then times their automatic completion):
//! ```text
//! loadgen --mode deliveries --url http://127.0.0.1:3000 --requests 10000 --clients 16
//! `--mode search` seeds purchase requests and times searches over them (see [`search`]):
//! ```text
//! loadgen --mode search --url http://127.0.0.1:3000 --requests 100000 --queries 200
//! ```

mod deliveries;
mod rest;
mod search;
mod storm;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Open-loop `POST /api/requests` at `--rate`: REST and action → socket latency.
    RestLatency,
    /// `--clients` clients posting `POST /api/requests` back to back: requests/s.
    WriteThroughput,
    /// `--requests` requests taken to `delivered` over REST, `--clients` at once.
    Deliveries,
    /// Seed `--requests` purchase requests, then time searches over them: p50/p99 per query.
    Search,
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
    /// Server base URL, or several (comma-separated) for the nodes of a cluster.
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
    /// The server's pid (comma-separated, one per node), to read VmRSS from /proc/<pid>/status.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Do not trigger: open the sockets and time the rounds another loadgen process triggers.
    #[arg(long)]
    passive: bool,
    /// Seconds to wait after connecting before the first round (lets passive processes
    /// connect), or, passive, the longest wait for the rounds.
    #[arg(long, default_value_t = 3)]
    start_after: u64,
    /// Emit rounds to time.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    #[arg(long, value_enum, default_value_t = Trigger::Request)]
    trigger: Trigger,
    #[arg(long)]
    admin_email: Option<String>,
    #[arg(long)]
    admin_password: Option<String>,
    /// Write every timed delivery as a line `round node ms` to this file (to pool the
    /// deliveries of several processes, as bench/cluster.sh does).
    #[arg(long)]
    marks_file: Option<std::path::PathBuf>,
    /// Seller tokens, one per line, used instead of registering `--users` accounts (so no
    /// password hashing happens on the servers while their memory is being measured).
    #[arg(long)]
    tokens_file: Option<std::path::PathBuf>,
    /// A token for the trigger (the admin for `announcement`, a buyer for `request`), used
    /// instead of logging in or registering.
    #[arg(long)]
    trigger_token: Option<String>,
    /// rest-latency: `POST /api/requests` per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// rest-latency, write-throughput: seconds of load.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// write-throughput, deliveries, search (seeding): clients working back to back.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// deliveries: delivered requests to make; search: purchase requests to seed first (0:
    /// search what is there). Default 1,000 for deliveries, 100,000 for search.
    #[arg(long)]
    requests: Option<usize>,
    /// search: timed calls of each query (0: only seed).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// rest-latency, write-throughput, deliveries: buyer accounts the requests are spread over.
    #[arg(long, default_value_t = 8)]
    buyers: usize,
    /// rest-latency: seller sockets (one account each) timing `request:created`.
    #[arg(long, default_value_t = 4)]
    sellers: usize,
    /// rest-latency, write-throughput, deliveries, search: print one JSON object with the
    /// figures instead of text.
    #[arg(long)]
    json: bool,
}

/// Writes the deliveries to `--marks-file`, if given.
fn write_marks(args: &Args, marks: &[Mark]) -> Result<()> {
    let Some(path) = &args.marks_file else {
        return Ok(());
    };
    let mut text = String::with_capacity(marks.len() * 16);
    for (round, node, ms) in marks {
        text.push_str(&format!("{round} {node} {ms:.3}\n"));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
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

/// Microseconds since the Unix epoch (the clock every loadgen process on the machine shares).
fn wall_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// A delivery: the round, the node the socket is on, and milliseconds since the trigger.
type Mark = (usize, usize, f64);

/// One socket: handshake, then answer pings and report marked events
/// (`loadgen-round-{round}-t{micros}`) as [`Mark`]s.
async fn open_socket(
    server: SocketAddr,
    node: usize,
    source: IpAddr,
    token: String,
    marks: mpsc::UnboundedSender<Mark>,
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
                let now = wall_micros();
                let rest = &t[i + 14..];
                let round: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                let sent: String = rest[round.len()..]
                    .strip_prefix("-t")
                    .unwrap_or_default()
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let (Ok(round), Ok(sent)) = (round.parse(), sent.parse::<u128>()) {
                    let ms = now.saturating_sub(sent) as f64 / 1000.0;
                    let _ = marks.send((round, node, ms));
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
    let bases: Vec<String> = args
        .url
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    let base = bases.first().cloned().context("--url")?;
    if let Mode::LoginStorm = args.mode {
        return storm::run(storm::StormArgs {
            base,
            accounts: args.accounts,
            logins: args.logins,
            wrong_percent: args.wrong_percent,
            unknown_percent: args.unknown_percent,
            server_pid: args.server_pid.first().copied(),
            settle_secs: args.settle_secs,
        })
        .await;
    }
    if let Mode::Deliveries = args.mode {
        return deliveries::run(deliveries::DeliveriesArgs {
            base,
            requests: args.requests.unwrap_or(1000),
            clients: args.clients,
            buyers: args.buyers,
            json: args.json,
        })
        .await;
    }
    let mut servers = Vec::new();
    for b in &bases {
        let authority = b
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        servers.push(
            tokio::net::lookup_host(authority)
                .await?
                .next()
                .context("server address")?,
        );
    }
    let nodes = servers.len();
    if let Mode::Search = args.mode {
        return search::run(search::SearchArgs {
            base,
            requests: args.requests.unwrap_or(100_000),
            clients: args.clients,
            buyers: args.buyers,
            queries: args.queries,
            json: args.json,
        })
        .await;
    }
    if let Mode::RestLatency | Mode::WriteThroughput = args.mode {
        let rest_args = rest::RestArgs {
            base,
            server: servers[0],
            rate: args.rate,
            duration: Duration::from_secs(args.duration),
            clients: args.clients,
            buyers: args.buyers,
            sellers: args.sellers,
            json: args.json,
        };
        return match args.mode {
            Mode::RestLatency => rest::rest_latency(rest_args).await,
            _ => rest::write_throughput(rest_args).await,
        };
    }
    let http = reqwest::Client::new();

    let mut tokens = Vec::with_capacity(args.users);
    if let Some(path) = &args.tokens_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
        if tokens.is_empty() {
            bail!("no tokens in {}", path.display());
        }
    } else {
        for i in 0..args.users.max(1) {
            tokens.push(register(&http, &base, "seller", i).await?);
        }
    }
    let trigger_token = match (args.trigger, &args.trigger_token) {
        _ if args.passive => String::new(),
        (_, Some(token)) => token.clone(),
        (Trigger::Request, None) => register(&http, &base, "buyer", 0).await?,
        (Trigger::Announcement, None) => {
            let (Some(e), Some(p)) = (&args.admin_email, &args.admin_password) else {
                bail!("--trigger announcement needs --admin-email and --admin-password");
            };
            login(&http, &base, e, p).await?
        }
    };
    let rss_before: Vec<Option<u64>> = args.server_pid.iter().map(|p| rss_kib(*p)).collect();

    let (marks_tx, mut marks_rx) = mpsc::unbounded_channel::<Mark>();
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let permit = sem.clone().acquire_owned().await?;
        let source = IpAddr::from([127, 0, 0, 2 + (i % args.sources.max(1) as usize) as u8]);
        let token = tokens[i % tokens.len()].clone();
        let (marks, failed) = (marks_tx.clone(), failed.clone());
        let node = i % nodes;
        let server = servers[node];
        handles.push(tokio::spawn(async move {
            if let Err(e) = open_socket(server, node, source, token, marks).await
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
        "connected {connected}/{} sockets in {connect_secs:.1} s from {} source addresses over {nodes} node(s)",
        args.sockets, args.sources
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (n, (pid, before)) in args.server_pid.iter().zip(&rss_before).enumerate() {
        if let (Some(before), Some(after)) = (before, rss_kib(*pid)) {
            // This process's sockets on that node (other processes' sockets count too when
            // several connect at once: read the growth with care).
            let here = connected.div_ceil(nodes.max(1)).max(1);
            let per = (after.saturating_sub(*before) as f64) / here as f64;
            println!(
                "node {n} (pid {pid}) RSS: {before} KiB before, {after} KiB after; {per:.1} KiB per socket of this process"
            );
        }
    }
    if args.passive {
        return passive(&args, connected, nodes, marks_rx).await;
    }
    tokio::time::sleep(Duration::from_secs(args.start_after.saturating_sub(3))).await;

    let mut reach_all = Vec::new();
    let mut first_arrival = Vec::new();
    let mut per_socket = Vec::new();
    let mut per_node: Vec<Vec<f64>> = vec![Vec::new(); nodes];
    let mut first_per_node: Vec<Vec<f64>> = vec![Vec::new(); nodes];
    let mut delivered = 0usize;
    let mut all_marks: Vec<Mark> = Vec::new();
    for round in 0..args.rounds {
        while marks_rx.try_recv().is_ok() {}
        let marker = format!("loadgen-round-{round}-t{}", wall_micros());
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
        let mut firsts: Vec<Option<f64>> = vec![None; nodes];
        let mut last = 0f64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got < connected {
            match tokio::time::timeout_at(deadline, marks_rx.recv()).await {
                Ok(Some((r, node, ms))) if r == round => {
                    first = Some(first.map_or(ms, |f: f64| f.min(ms)));
                    firsts[node] = Some(firsts[node].map_or(ms, |f: f64| f.min(ms)));
                    last = last.max(ms);
                    per_socket.push(ms);
                    per_node[node].push(ms);
                    all_marks.push((r, node, ms));
                    got += 1;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        delivered += got;
        for (n, f) in firsts.into_iter().enumerate() {
            if let Some(f) = f {
                first_per_node[n].push(f);
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
        "delivered {delivered} of {} ({} rounds × {connected} sockets)",
        args.rounds * connected,
        args.rounds
    );
    report_nodes(&mut per_node, &mut first_per_node);
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
    write_marks(&args, &all_marks)
}

/// Per node: every delivery, and the first socket of each round (node 0 is where the event
/// was caused; the others are cross-node).
fn report_nodes(per_node: &mut [Vec<f64>], first_per_node: &mut [Vec<f64>]) {
    if per_node.len() < 2 {
        return;
    }
    for (n, (all, first)) in per_node
        .iter_mut()
        .zip(first_per_node.iter_mut())
        .enumerate()
    {
        all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        first.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!(
            "node {n}{}: {} deliveries p50 {:.1} / p99 {:.1} ms; first socket p50 {:.1} / p95 {:.1} ms",
            if n == 0 {
                " (caused here)"
            } else {
                " (cross-node)"
            },
            all.len(),
            percentile(all, 50.0),
            percentile(all, 99.0),
            percentile(first, 50.0),
            percentile(first, 95.0),
        );
    }
}

/// Passive: time the rounds another process triggers until `rounds` were seen or
/// `start_after` + 60 s passed.
async fn passive(
    args: &Args,
    connected: usize,
    nodes: usize,
    mut marks_rx: mpsc::UnboundedReceiver<Mark>,
) -> Result<()> {
    println!("passive: waiting for {} rounds", args.rounds);
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(args.start_after + 60 + 5 * args.rounds as u64);
    let mut per_round: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
    let mut per_node: Vec<Vec<f64>> = vec![Vec::new(); nodes];
    let mut first_per_node: Vec<Vec<f64>> = vec![Vec::new(); nodes];
    let mut seen_first: std::collections::HashSet<(usize, usize)> = Default::default();
    let mut all_marks: Vec<Mark> = Vec::new();
    let complete = |m: &std::collections::BTreeMap<usize, Vec<f64>>| {
        m.len() >= args.rounds && m.values().all(|v| v.len() >= connected)
    };
    while !complete(&per_round) {
        match tokio::time::timeout_at(deadline, marks_rx.recv()).await {
            Ok(Some((round, node, ms))) => {
                all_marks.push((round, node, ms));
                per_round.entry(round).or_default().push(ms);
                per_node[node].push(ms);
                if seen_first.insert((round, node)) {
                    first_per_node[node].push(ms);
                }
            }
            _ => break,
        }
    }
    let delivered: usize = per_round.values().map(Vec::len).sum();
    println!(
        "delivered {delivered} of {} ({} rounds × {connected} sockets)",
        args.rounds * connected,
        args.rounds
    );
    let mut all: Vec<f64> = per_round.values().flatten().copied().collect();
    let mut last: Vec<f64> = per_round
        .values()
        .map(|v| v.iter().copied().fold(0f64, f64::max))
        .collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    last.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!(
        "REST action → last socket of this process (ms): p50 {:.1}, p99 {:.1}; every delivery p50 {:.1}, p99 {:.1}",
        percentile(&last, 50.0),
        percentile(&last, 99.0),
        percentile(&all, 50.0),
        percentile(&all, 99.0)
    );
    report_nodes(&mut per_node, &mut first_per_node);
    write_marks(args, &all_marks)
}
