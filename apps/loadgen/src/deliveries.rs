//! `--mode deliveries`: makes `--requests` delivered requests through the REST API, the way
//! buyers and a seller would (issue 21's benchmark of automatic completion starts from them):
//! for each, a buyer posts a request, the seller offers, the buyer accepts and pays in the
//! sandbox (a signed `PAID` callback through the real webhook), and the seller delivers.
//! `--clients` requests are in flight at once, spread over `--buyers` buyers and one seller.
//! Prints how many were delivered and how fast; `--json` prints one JSON object instead.
//!
//! Needs a server with the sandbox payment provider (the default). What happens next (the
//! automatic completions falling due) is timed by `bench/auto-complete.sh`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::register;

/// What one run is made of.
pub struct DeliveriesArgs {
    pub base: String,
    pub requests: usize,
    pub clients: usize,
    pub buyers: usize,
    pub json: bool,
}

/// `method path` as `token` with `body`; the JSON answer when its status is `expected`.
async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
    expected: u16,
) -> Result<Value> {
    let res = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    if status != expected {
        bail!("POST {path}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn id(v: &Value) -> Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no id in {v}"))
}

/// One request from posting to delivered.
async fn one(
    http: &reqwest::Client,
    base: &str,
    buyer: &str,
    seller: &str,
    n: usize,
) -> Result<()> {
    let request = call(
        http,
        base,
        buyer,
        "/api/requests",
        json!({ "title": format!("bench request {n}"), "description": "auto-complete bench", "category": "bench" }),
        201,
    )
    .await?;
    let request_id = id(&request)?;
    let offer = call(
        http,
        base,
        seller,
        &format!("/api/requests/{request_id}/offers"),
        json!({ "price": { "amount": "25.00", "currency": "USD" }, "message": "In stock." }),
        201,
    )
    .await?;
    let offer_id = id(&offer)?;
    call(
        http,
        base,
        buyer,
        &format!("/api/offers/{offer_id}/accept"),
        json!({}),
        200,
    )
    .await?;
    let payment = call(
        http,
        base,
        buyer,
        "/api/payments",
        json!({ "requestId": request_id, "crypto": "BTC" }),
        201,
    )
    .await?;
    let payment_id = id(&payment)?;
    call(
        http,
        base,
        buyer,
        &format!("/api/sandbox/payments/{payment_id}/simulate"),
        json!({ "status": "PAID" }),
        200,
    )
    .await?;
    call(
        http,
        base,
        seller,
        &format!("/api/requests/{request_id}/deliver"),
        json!({}),
        200,
    )
    .await?;
    Ok(())
}

pub async fn run(args: DeliveriesArgs) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .build()?;
    let base = args.base.as_str();
    let seller = register(&http, base, "seller", 0).await?;
    let res = http
        .patch(format!("{base}/api/users/me"))
        .bearer_auth(&seller)
        .json(&json!({ "payoutAddress": "bc1q-bench-seller" }))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("seller payout address: {}", res.status());
    }
    let mut buyers = Vec::new();
    for i in 0..args.buyers.max(1) {
        buyers.push(register(&http, base, "buyer", i).await?);
    }
    let (buyers, seller) = (Arc::new(buyers), Arc::new(seller));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.clients.max(1) {
        let (http, base, buyers, seller) = (
            http.clone(),
            args.base.clone(),
            buyers.clone(),
            seller.clone(),
        );
        let (next, done, total, quiet) = (next.clone(), done.clone(), args.requests, args.json);
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let buyer = &buyers[n % buyers.len()];
                one(&http, &base, buyer, &seller, n).await?;
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if !quiet && d % 1000 == 0 {
                    eprintln!("{d} delivered");
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let delivered = done.load(Ordering::Relaxed);
    if args.json {
        println!(
            "{}",
            json!({ "delivered": delivered, "seconds": secs, "perSecond": delivered as f64 / secs })
        );
    } else {
        println!(
            "{delivered} requests delivered in {secs:.1} s ({:.0}/s, 6 REST calls each, {} clients)",
            delivered as f64 / secs,
            args.clients
        );
    }
    Ok(())
}
