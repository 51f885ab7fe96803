//! `loadgen --mode login-storm`: what a reconnect wave after a deploy (or a password spray
//! over many accounts) does to the server.
//!
//! Registers `--accounts` accounts, then fires `--logins` logins at the same instant (a share
//! of them with a wrong password or an unknown email) while one client keeps calling
//! `GET /api/users/me`, which hashes nothing. Prints logins/s, the status counts, the
//! server's peak RSS growth and its RSS 15 s later (with `--server-pid`), and the p50/p99
//! of `/api/users/me` during the storm.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{percentile, rss_kib};

/// What one storm is made of.
pub struct StormArgs {
    pub base: String,
    pub accounts: usize,
    pub logins: usize,
    pub wrong_percent: usize,
    pub unknown_percent: usize,
    pub server_pid: Option<u32>,
    pub settle_secs: u64,
}

const PASSWORD: &str = "storm-password-1";

#[derive(Clone, Copy)]
enum Kind {
    Right,
    Wrong,
    Unknown,
}

pub async fn run(a: StormArgs) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let tag = format!("{}-{}", std::process::id(), since_epoch.as_millis());
    let mut emails = Vec::with_capacity(a.accounts);
    let mut token = String::new();
    for i in 0..a.accounts.max(1) {
        let email = format!("storm-{tag}-{i}@bench.local");
        let res = http
            .post(format!("{}/api/auth/register", a.base))
            .json(&json!({ "email": email, "password": PASSWORD, "name": format!("storm {i}"), "role": "buyer" }))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("register {email}: {status} {body}");
        }
        token = body["token"]
            .as_str()
            .context("register answered no token")?
            .to_owned();
        emails.push(email);
    }
    // Let registration's own memory settle before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = a.server_pid.and_then(rss_kib);

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let sampler = a.server_pid.map(|pid| {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    // One client calling a route that hashes nothing, one call at a time, all storm long.
    let prober = {
        let (done, http, base) = (Arc::clone(&done), http.clone(), a.base.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                match http
                    .get(format!("{base}/api/users/me"))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (lat, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let start = Instant::now();
    let mut calls = Vec::with_capacity(a.logins);
    for i in 0..a.logins {
        let slot = i % 100;
        let kind = if slot < a.wrong_percent {
            Kind::Wrong
        } else if slot < a.wrong_percent + a.unknown_percent {
            Kind::Unknown
        } else {
            Kind::Right
        };
        let (email, password) = match kind {
            Kind::Right => (emails[i % emails.len()].clone(), PASSWORD.to_owned()),
            Kind::Wrong => (
                emails[i % emails.len()].clone(),
                "not-the-password".to_owned(),
            ),
            Kind::Unknown => (format!("nobody-{tag}-{i}@bench.local"), PASSWORD.to_owned()),
        };
        let (http, base) = (http.clone(), a.base.clone());
        calls.push(tokio::spawn(async move {
            let res = http
                .post(format!("{base}/api/auth/login"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await;
            match res {
                Ok(r) => {
                    let retry_after = r.headers().contains_key("retry-after");
                    let status = r.status().as_u16();
                    let code = r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|b| b["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (kind, Some((status, code, retry_after)))
                }
                Err(_) => (kind, None),
            }
        }));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = 0usize;
    for c in calls {
        let (kind, outcome) = c.await?;
        let key = match outcome {
            Some((status, code, retry_after)) => {
                if status == 200 {
                    ok += 1;
                }
                let what = match kind {
                    Kind::Right => "right password",
                    Kind::Wrong => "wrong password",
                    Kind::Unknown => "unknown email",
                };
                let code = if code.is_empty() {
                    String::new()
                } else {
                    format!(" {code}")
                };
                let ra = if retry_after { " +Retry-After" } else { "" };
                format!("{what}: {status}{code}{ra}")
            }
            None => "no answer (client error or time-out)".to_owned(),
        };
        *counts.entry(key).or_default() += 1;
    }
    let took = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (mut me, me_failed) = prober.await?;
    if let Some(s) = sampler {
        s.await?;
    }
    me.sort_by(f64::total_cmp);

    println!(
        "login storm: {} accounts, {} logins at once ({}% wrong password, {}% unknown email)",
        a.accounts, a.logins, a.wrong_percent, a.unknown_percent
    );
    println!(
        "  all answered in {took:.2} s: {:.1} answers/s, {:.1} successful logins/s",
        a.logins as f64 / took,
        ok as f64 / took
    );
    for (k, n) in &counts {
        println!("  {n:>5} × {k}");
    }
    println!(
        "  GET /api/users/me during the storm: {} calls, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} failed",
        me.len(),
        percentile(&me, 50.0),
        percentile(&me, 99.0),
        me.last().copied().unwrap_or(f64::NAN),
        me_failed
    );
    if let (Some(pid), Some(before)) = (a.server_pid, rss_before) {
        let peak = peak.load(Ordering::Relaxed);
        println!(
            "  server RSS: {:.1} MiB before, peak {:.1} MiB (+{:.1} MiB)",
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0
        );
        tokio::time::sleep(Duration::from_secs(a.settle_secs)).await;
        if let Some(after) = rss_kib(pid) {
            println!(
                "  server RSS {} s after the storm: {:.1} MiB (+{:.1} MiB over before)",
                a.settle_secs,
                after as f64 / 1024.0,
                after.saturating_sub(before) as f64 / 1024.0
            );
        }
    }
    Ok(())
}
