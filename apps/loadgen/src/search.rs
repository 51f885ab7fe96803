//! `--mode search`: search latency over a large set of purchase requests (issue 21).
//!
//! 1. Seeds `--requests` purchase requests through `POST /api/requests` (`--clients`
//!    concurrent clients over `--buyers` buyer accounts), so every one goes through the real
//!    write path, search index included, and prints the write rate. `--requests 0` seeds
//!    nothing (time an existing database again).
//! 2. Registers a seller (sellers see every open request, the largest set to search) and
//!    runs each query of [`QUERIES`] `--queries` times in a row, one at a time (after 5
//!    untimed warm-up calls), and prints p50/p99/max per query and over all of them, with
//!    the size of the first page. `--queries 0` only seeds.
//!
//! The corpus is deterministic (a fixed pseudo-random sequence): a title is an adjective and
//! a product (`vintage camera`, 30 × 50), sometimes with a use (`for camping`); a description
//! is 12–30 words, most drawn from a Zipf-distributed vocabulary of 2,940 made-up words (so
//! word frequencies look like real text: the commonest is in ~90% of the requests, most are
//! rare), plus a condition word and sometimes the product again. 80% have a budget: 60% of
//! those in USD, 30% EUR, 10% JPY, 10 to 5,000 (JPY ×100).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::{percentile, register};

pub struct SearchArgs {
    pub base: String,
    pub requests: usize,
    pub clients: usize,
    pub buyers: usize,
    pub queries: usize,
    pub json: bool,
}

const ADJECTIVES: &[&str] = &[
    "used", "vintage", "new", "cheap", "electric", "wooden", "folding", "portable", "antique",
    "small", "large", "heavy", "light", "red", "blue", "black", "white", "green", "modern",
    "classic", "rare", "sturdy", "compact", "digital", "manual", "road", "mountain", "kids",
    "leather", "steel",
];

const PRODUCTS: &[&str] = &[
    "bike",
    "camera",
    "scooter",
    "guitar",
    "piano",
    "laptop",
    "phone",
    "tablet",
    "desk",
    "chair",
    "sofa",
    "lamp",
    "table",
    "bed",
    "wardrobe",
    "mirror",
    "clock",
    "watch",
    "ring",
    "necklace",
    "jacket",
    "coat",
    "boots",
    "shoes",
    "tent",
    "backpack",
    "kayak",
    "canoe",
    "skis",
    "snowboard",
    "helmet",
    "drill",
    "saw",
    "hammer",
    "ladder",
    "mower",
    "grill",
    "oven",
    "fridge",
    "kettle",
    "blender",
    "printer",
    "monitor",
    "keyboard",
    "speaker",
    "radio",
    "drone",
    "telescope",
    "microscope",
    "stroller",
];

const USES: &[&str] = &[
    "camping",
    "commuting",
    "school",
    "work",
    "travel",
    "kids",
    "parties",
    "gardening",
    "cooking",
    "music",
    "photography",
    "fishing",
    "hiking",
    "racing",
    "studying",
    "painting",
    "gaming",
    "skiing",
    "climbing",
    "sailing",
];

const CONDITIONS: &[&str] = &[
    "working",
    "broken",
    "mint",
    "scratched",
    "refurbished",
    "boxed",
    "unused",
    "repaired",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fe", "gu", "po", "ze",
];

/// The queries timed, by name: what a seller would type, from common to rare.
const QUERIES: &[(&str, &[(&str, &str)])] = &[
    ("list, no search (newest first)", &[]),
    ("q=bike (a product, ~2% of requests)", &[("q", "bike")]),
    ("q=bike sort=newest", &[("q", "bike"), ("sort", "newest")]),
    (
        "q=\"vintage camera\" (a phrase)",
        &[("q", "\"vintage camera\"")],
    ),
    ("q=camera -broken", &[("q", "camera -broken")]),
    ("q=bike or scooter", &[("q", "bike or scooter")]),
    (
        "q=cameras working (stemming, two words)",
        &[("q", "cameras working")],
    ),
    ("q=kaka (a word in ~93% of requests)", &[("q", "kaka")]),
    ("q=kaka sort=newest", &[("q", "kaka"), ("sort", "newest")]),
    ("q=zezepo (a rare word, ~0.1%)", &[("q", "zezepo")]),
    ("q=xylophonist (no match)", &[("q", "xylophonist")]),
    (
        "minBudget=100 maxBudget=500 currency=USD sort=budget",
        &[
            ("minBudget", "100"),
            ("maxBudget", "500"),
            ("currency", "USD"),
            ("sort", "budget"),
        ],
    ),
    ("sort=budget", &[("sort", "budget")]),
    (
        "q=bike minBudget=100 sort=budget",
        &[("q", "bike"), ("minBudget", "100"), ("sort", "budget")],
    ),
];

/// A small fixed pseudo-random sequence (xorshift64*), so every run seeds the same corpus.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

/// The made-up vocabulary (every word of two and three syllables) and the cumulative Zipf
/// weights of its ranks.
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Vocabulary {
        let mut words = Vec::new();
        for a in SYLLABLES {
            for b in SYLLABLES {
                words.push(format!("{a}{b}"));
            }
        }
        for a in SYLLABLES {
            for b in SYLLABLES {
                for c in SYLLABLES {
                    words.push(format!("{a}{b}{c}"));
                }
            }
        }
        let mut cumulative = Vec::with_capacity(words.len());
        let mut total = 0.0;
        for rank in 1..=words.len() {
            total += 1.0 / rank as f64;
            cumulative.push(total);
        }
        Vocabulary { words, cumulative }
    }
    fn word(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = rng.unit() * total;
        let i = self.cumulative.partition_point(|&c| c < u);
        &self.words[i.min(self.words.len() - 1)]
    }
}

/// The body of request number `i` of the corpus.
fn request_body(i: usize, vocabulary: &Vocabulary) -> Value {
    let mut rng = Rng::new(i as u64 + 1);
    let adjective = rng.pick(ADJECTIVES);
    let product = rng.pick(PRODUCTS);
    let title = if rng.below(3) == 0 {
        format!("{adjective} {product} for {}", rng.pick(USES))
    } else {
        format!("{adjective} {product}")
    };
    let n = 12 + rng.below(19);
    let mut words: Vec<String> = (0..n)
        .map(|_| vocabulary.word(&mut rng).to_owned())
        .collect();
    words.insert(rng.below(words.len()), rng.pick(CONDITIONS).to_owned());
    if rng.below(2) == 0 {
        words.insert(rng.below(words.len()), product.to_owned());
    }
    let mut body = json!({
        "title": title,
        "description": format!("{}.", words.join(" ")),
        "category": product,
    });
    if rng.below(5) != 0 {
        let (currency, scale) = match rng.below(10) {
            0..=5 => ("USD", 1),
            6..=8 => ("EUR", 1),
            _ => ("JPY", 100),
        };
        let cents = 1_000 + rng.below(499_000) as u64;
        let amount = if scale == 1 {
            format!("{}.{:02}", cents / 100, cents % 100)
        } else {
            format!("{}", cents)
        };
        body["budget"] = json!({ "amount": amount, "currency": currency });
    }
    body
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?)
}

async fn seed(http: &reqwest::Client, a: &SearchArgs) -> Result<Value> {
    let mut tokens = Vec::new();
    for i in 0..a.buyers.max(1) {
        tokens.push(register(http, &a.base, "buyer", i).await?);
    }
    let vocabulary = Arc::new(Vocabulary::new());
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for c in 0..a.clients.max(1) {
        let (http, base, token) = (
            http.clone(),
            a.base.clone(),
            tokens[c % tokens.len()].clone(),
        );
        let (vocabulary, next, failed, total) =
            (vocabulary.clone(), next.clone(), failed.clone(), a.requests);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = request_body(i, &vocabulary);
                let ok = match http
                    .post(format!("{base}/api/requests"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(res) => {
                        let ok = res.status().as_u16() == 201;
                        let _ = res.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                if !a_quiet() && (i + 1) % 10_000 == 0 {
                    eprintln!("  seeded {} requests", i + 1);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} of {} requests were not created", a.requests);
    }
    Ok(json!({
        "requests": a.requests,
        "seconds": (secs * 10.0).round() / 10.0,
        "per_second": (a.requests as f64 / secs).round(),
    }))
}

/// Progress lines go to stderr unless `LOADGEN_QUIET` is set.
fn a_quiet() -> bool {
    std::env::var_os("LOADGEN_QUIET").is_some()
}

async fn one(http: &reqwest::Client, url: &reqwest::Url, token: &str) -> Result<(f64, usize)> {
    let sent = Instant::now();
    let res = http.get(url.clone()).bearer_auth(token).send().await?;
    let status = res.status().as_u16();
    let body: Value = res.json().await?;
    let ms = sent.elapsed().as_secs_f64() * 1000.0;
    if status != 200 {
        bail!("{url}: {status} {body}");
    }
    let items = body["items"].as_array().map_or(0, Vec::len);
    Ok((ms, items))
}

pub async fn run(a: SearchArgs) -> Result<()> {
    let http = client()?;
    let seeded = if a.requests > 0 {
        if !a.json {
            println!(
                "seeding {} requests through POST /api/requests ({} clients, {} buyers)",
                a.requests, a.clients, a.buyers
            );
        }
        Some(seed(&http, &a).await?)
    } else {
        None
    };
    if let (Some(s), false) = (&seeded, a.json) {
        println!(
            "  {} requests in {} s: {}/s",
            s["requests"], s["seconds"], s["per_second"]
        );
    }
    if a.queries == 0 {
        if a.json {
            println!("{}", json!({ "mode": "search", "seeded": seeded }));
        }
        return Ok(());
    }
    let seller = register(&http, &a.base, "seller", 0).await?;
    let mut rows = Vec::new();
    let mut pooled = Vec::new();
    if !a.json {
        println!(
            "search as a seller (every open request), {} times each, one at a time:",
            a.queries
        );
        println!(
            "  {:<56} {:>8} {:>8} {:>8}  first page",
            "query", "p50 ms", "p99 ms", "max ms"
        );
    }
    for (name, params) in QUERIES {
        let mut all = params.to_vec();
        all.push(("limit", "20"));
        let url = reqwest::Url::parse_with_params(&format!("{}/api/requests", a.base), &all)?;
        for _ in 0..5 {
            one(&http, &url, &seller).await?;
        }
        let mut times = Vec::with_capacity(a.queries);
        let mut items = 0;
        for _ in 0..a.queries {
            let (ms, n) = one(&http, &url, &seller).await?;
            times.push(ms);
            items = n;
        }
        times.sort_by(f64::total_cmp);
        pooled.extend_from_slice(&times);
        let (p50, p99, max) = (
            percentile(&times, 50.0),
            percentile(&times, 99.0),
            times.last().copied().unwrap_or(f64::NAN),
        );
        if !a.json {
            println!("  {name:<56} {p50:>8.1} {p99:>8.1} {max:>8.1}  {items}");
        }
        rows.push(json!({
            "query": name,
            "p50_ms": (p50 * 100.0).round() / 100.0,
            "p99_ms": (p99 * 100.0).round() / 100.0,
            "max_ms": (max * 100.0).round() / 100.0,
            "first_page": items,
        }));
    }
    pooled.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&pooled, 50.0), percentile(&pooled, 99.0));
    if a.json {
        println!(
            "{}",
            json!({
                "mode": "search",
                "seeded": seeded,
                "queries_each": a.queries,
                "queries": rows,
                "all": { "p50_ms": (p50 * 100.0).round() / 100.0, "p99_ms": (p99 * 100.0).round() / 100.0, "count": pooled.len() },
            })
        );
    } else {
        println!("  {:<56} {p50:>8.1} {p99:>8.1}", "all of the above, pooled");
    }
    Ok(())
}
