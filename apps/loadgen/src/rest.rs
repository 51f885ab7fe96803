//! The REST side of the event path (issue 14): `POST /api/requests` writes a purchase request
//! and its `request:created` event in one transaction, and the event reaches the `sellers`
//! room through the event log.
//!
//! `--mode rest-latency`: an open-loop schedule of `--rate` requests per second for
//! `--duration` seconds, spread over `--buyers` buyer accounts, while `--sellers` seller
//! sockets time every `request:created`. Every latency counts from the request's *scheduled*
//! send time, not from when it actually left, so a server (or a load generator) that falls
//! behind shows up in the figures instead of slowing the schedule down (no coordinated
//! omission). Prints the achieved rate, REST response time and action → socket p50/p99/max,
//! and the answers by status.
//!
//! `--mode write-throughput`: `--clients` clients each posting `POST /api/requests` back to
//! back (closed loop) for `--duration` seconds: requests/s, p50/p99/max, answers by status.
//!
//! `--json` prints one JSON object with the figures instead of the text.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Mark, open_socket, percentile, register, wall_micros};

/// What one REST run is made of.
pub struct RestArgs {
    pub base: String,
    pub server: SocketAddr,
    /// rest-latency: requests per second.
    pub rate: u32,
    pub duration: Duration,
    /// write-throughput: concurrent clients.
    pub clients: usize,
    pub buyers: usize,
    /// rest-latency: seller sockets timing the events.
    pub sellers: usize,
    pub json: bool,
}

/// One answer: the status (`None`: no answer, a transport error or time-out), milliseconds
/// from the scheduled send time, and milliseconds from the actual send time.
type Answer = (Option<u16>, f64, f64);

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()?)
}

async fn buyers(http: &reqwest::Client, base: &str, n: usize) -> Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(n.max(1));
    for i in 0..n.max(1) {
        tokens.push(register(http, base, "buyer", i).await?);
    }
    Ok(tokens)
}

/// `POST /api/requests` with `title` as the request's title.
async fn post_request(http: &reqwest::Client, base: &str, token: &str, title: &str) -> Option<u16> {
    let res = http
        .post(format!("{base}/api/requests"))
        .bearer_auth(token)
        .json(&json!({ "title": title, "description": "loadgen", "category": "loadgen" }))
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    // Read the body so the connection goes back to the pool.
    res.bytes().await.ok()?;
    Some(status)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// p50/p99/max of sorted milliseconds, as JSON.
fn summary(v: &[f64]) -> Value {
    json!({
        "count": v.len(),
        "p50_ms": round(percentile(v, 50.0)),
        "p99_ms": round(percentile(v, 99.0)),
        "max_ms": round(v.last().copied().unwrap_or(f64::NAN)),
    })
}

fn round(x: f64) -> Option<f64> {
    x.is_finite().then(|| (x * 100.0).round() / 100.0)
}

fn line(v: &[f64]) -> String {
    format!(
        "p50 {:.1}, p99 {:.1}, max {:.1} ms ({} samples)",
        percentile(v, 50.0),
        percentile(v, 99.0),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    )
}

/// Answers by status: `"201"`, `"503"`, ... and `"no answer"`.
fn by_status(answers: &[Answer]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (s, _, _) in answers {
        let k = s.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        *m.entry(k).or_default() += 1;
    }
    m
}

fn is_ok(a: &Answer) -> bool {
    a.0.is_some_and(|s| (200..300).contains(&s))
}

pub async fn rest_latency(a: RestArgs) -> Result<()> {
    let http = client()?;
    let tokens = buyers(&http, &a.base, a.buyers).await?;
    let (marks_tx, mut marks_rx) = mpsc::unbounded_channel::<Mark>();
    for i in 0..a.sellers.max(1) {
        let token = register(&http, &a.base, "seller", i).await?;
        open_socket(
            a.server,
            0,
            IpAddr::from([127, 0, 0, 1]),
            token,
            marks_tx.clone(),
        )
        .await?;
    }
    drop(marks_tx);
    let sockets = a.sellers.max(1);
    let total = (u128::from(a.rate) * a.duration.as_millis() / 1000) as usize;
    let period = Duration::from_secs(1) / a.rate.max(1);
    // Let the sockets settle (the server's join of the rooms) before the first request.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    let wall0 = wall_micros();
    let mut calls = Vec::with_capacity(total);
    let mut max_lag = Duration::ZERO;
    for i in 0..total {
        let offset = period * i as u32;
        let due = start + offset;
        tokio::time::sleep_until(due.into()).await;
        max_lag = max_lag.max(due.elapsed());
        // The marker carries the scheduled wall-clock time: sockets measure from it.
        let title = format!("loadgen-round-{i}-t{}", wall0 + offset.as_micros());
        let (http, base, token) = (
            http.clone(),
            a.base.clone(),
            tokens[i % tokens.len()].clone(),
        );
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            let status = post_request(&http, &base, &token, &title).await;
            let done = Instant::now();
            let ms = |from: Instant| done.duration_since(from).as_secs_f64() * 1000.0;
            (status, ms(due), ms(sent), done)
        }));
    }
    let mut answers: Vec<Answer> = Vec::with_capacity(total);
    let mut last_done = start;
    for c in calls {
        let (status, from_due, from_sent, done) = c.await?;
        last_done = last_done.max(done);
        answers.push((status, from_due, from_sent));
    }
    let ok = answers.iter().filter(|a| is_ok(a)).count();
    // Wait for the deliveries of every accepted request (at most 10 s more).
    let expected = ok * sockets;
    let mut deliveries = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while deliveries.len() < expected {
        match tokio::time::timeout_at(deadline, marks_rx.recv()).await {
            Ok(Some((_, _, ms))) => deliveries.push(ms),
            _ => break,
        }
    }
    let span = last_done.duration_since(start).as_secs_f64();
    let achieved = ok as f64 / span;
    let response = sorted(answers.iter().filter(|a| is_ok(a)).map(|a| a.1).collect());
    let service = sorted(answers.iter().filter(|a| is_ok(a)).map(|a| a.2).collect());
    let deliveries = sorted(deliveries);
    let statuses = by_status(&answers);
    if a.json {
        println!(
            "{}",
            json!({
                "mode": "rest-latency",
                "offered_rate": a.rate,
                "duration_s": a.duration.as_secs_f64(),
                "buyers": tokens.len(),
                "seller_sockets": sockets,
                "requests": total,
                "succeeded": ok,
                "achieved_rate": round(achieved),
                "max_schedule_lag_ms": round(max_lag.as_secs_f64() * 1000.0),
                "response_from_scheduled": summary(&response),
                "response_from_sent": summary(&service),
                "action_to_socket": summary(&deliveries),
                "deliveries": deliveries.len(),
                "deliveries_expected": expected,
                "statuses": statuses,
            })
        );
        return Ok(());
    }
    println!(
        "rest-latency: {total} × POST /api/requests scheduled at {} /s for {:.0} s over {} buyers, {sockets} seller sockets",
        a.rate,
        a.duration.as_secs_f64(),
        tokens.len()
    );
    println!(
        "  achieved {achieved:.1} successful requests/s ({ok} in {span:.2} s); load generator's largest lag behind the schedule {:.1} ms",
        max_lag.as_secs_f64() * 1000.0
    );
    println!(
        "  REST response, from the scheduled send time: {}",
        line(&response)
    );
    println!(
        "  REST response, from the actual send time:    {}",
        line(&service)
    );
    println!(
        "  action → socket (request:created at each seller socket, from the scheduled send time): {}; {} of {expected} delivered",
        line(&deliveries),
        deliveries.len()
    );
    for (k, n) in &statuses {
        println!("  {n:>7} × {k}");
    }
    Ok(())
}

pub async fn write_throughput(a: RestArgs) -> Result<()> {
    if a.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let http = client()?;
    let tokens = buyers(&http, &a.base, a.buyers).await?;
    let start = Instant::now();
    let end = start + a.duration;
    let mut workers = Vec::with_capacity(a.clients);
    for c in 0..a.clients {
        let (http, base, token) = (
            http.clone(),
            a.base.clone(),
            tokens[c % tokens.len()].clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut answers: Vec<Answer> = Vec::new();
            let mut n = 0usize;
            while Instant::now() < end {
                let title = format!("loadgen-throughput-{c}-{n}");
                let sent = Instant::now();
                let status = post_request(&http, &base, &token, &title).await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                answers.push((status, ms, ms));
                n += 1;
            }
            answers
        }));
    }
    let mut answers: Vec<Answer> = Vec::new();
    for w in workers {
        answers.extend(w.await?);
    }
    let span = start.elapsed().as_secs_f64();
    let ok = answers.iter().filter(|a| is_ok(a)).count();
    let rate = ok as f64 / span;
    let latency = sorted(answers.iter().filter(|a| is_ok(a)).map(|a| a.1).collect());
    let statuses = by_status(&answers);
    if a.json {
        println!(
            "{}",
            json!({
                "mode": "write-throughput",
                "clients": a.clients,
                "buyers": tokens.len(),
                "duration_s": round(span),
                "requests": answers.len(),
                "succeeded": ok,
                "requests_per_s": round(rate),
                "latency": summary(&latency),
                "statuses": statuses,
            })
        );
        return Ok(());
    }
    println!(
        "write-throughput: {} clients posting POST /api/requests back to back for {span:.1} s over {} buyers",
        a.clients,
        tokens.len()
    );
    println!(
        "  {rate:.1} successful requests/s ({ok} of {})",
        answers.len()
    );
    println!("  latency: {}", line(&latency));
    for (k, n) in &statuses {
        println!("  {n:>7} × {k}");
    }
    Ok(())
}
