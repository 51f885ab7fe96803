//! What a hashing storm does to a process's memory, without a server around it:
//!
//! ```text
//! cargo run --release -p auth --example hash_memory -- unbounded 300   # the old way
//! cargo run --release -p auth --example hash_memory -- bounded 300 3   # auth::Hasher, 3 storms
//! MALLOC_ARENA_MAX=2 target/release/examples/hash_memory unbounded 300
//! ```
//! `unbounded` hashes on one thread per request, as `spawn_blocking` did; `bounded` sends
//! the same hashes to [`auth::Hasher`] (2 threads, a queue for all of them). Prints the
//! peak RSS growth (VmHWM) and the RSS growth right after and 15 s after the last storm.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use auth::{Hasher, HashingConfig};

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("bounded")
        .to_owned();
    let hashes: usize = args.get(2).map(|v| v.parse()).transpose()?.unwrap_or(300);
    let storms: usize = args.get(3).map(|v| v.parse()).transpose()?.unwrap_or(1);
    let hasher = std::sync::Arc::new(Hasher::new(HashingConfig {
        concurrency: 2,
        queue: hashes,
    })?);
    let base = status_kib("VmRSS:");
    let started = Instant::now();
    for _ in 0..storms {
        match mode.as_str() {
            "unbounded" => {
                let threads: Vec<_> = (0..hashes)
                    .map(|_| {
                        std::thread::spawn(|| {
                            let salt = SaltString::generate(&mut OsRng);
                            argon2::Argon2::default()
                                .hash_password(b"a password", &salt)
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().map_err(|_| "a hashing thread panicked")??;
                }
            }
            "bounded" => {
                let tasks: Vec<_> = (0..hashes)
                    .map(|_| {
                        let hasher = std::sync::Arc::clone(&hasher);
                        tokio::spawn(async move { hasher.hash("a password".to_owned()).await })
                    })
                    .collect();
                for t in tasks {
                    t.await??;
                }
            }
            other => return Err(format!("unknown mode {other:?}").into()),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let secs = started.elapsed().as_secs_f64() - storms as f64;
    let peak = status_kib("VmHWM:");
    let after = status_kib("VmRSS:");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let later = status_kib("VmRSS:");
    println!(
        "{mode} {hashes} hashes × {storms}: {:.1} hashes/s, peak +{} MiB, after +{} MiB, 15 s after +{} MiB",
        (hashes * storms) as f64 / secs,
        peak.saturating_sub(base) / 1024,
        after.saturating_sub(base) / 1024,
        later.saturating_sub(base) / 1024
    );
    Ok(())
}
