//! Password hashing with a bound: a login storm must not take the server down.
//!
//! argon2 is slow and memory-hard on purpose (19 MiB and two passes per hash by default).
//! Run without a bound, 300 logins at once mean 300 threads each holding 19 MiB, a runtime
//! with no CPU left for anything else, and an allocator that keeps gigabytes afterwards. So
//! every hash and every verification of this server goes through one [`Hasher`]:
//!
//! - a fixed set of dedicated OS threads (`concurrency`, by default one per core) runs the
//!   hashes; neither tokio's workers nor its blocking pool (which the database uses) ever
//!   run argon2, and the hashing threads run at a lower CPU priority, so REST calls that hash
//!   nothing and socket heartbeats keep their latency while hashes queue;
//! - requests wait in one first-in-first-out queue of at most `queue` entries; beyond that
//!   the answer is an immediate 503 `busy` with `Retry-After` (never a pool time-out);
//! - each thread keeps one argon2 work area while there is queued work and gives it back as
//!   soon as the queue is empty, so memory peaks near `concurrency` × argon2 memory whatever
//!   the size of the storm, and returns to the idle level afterwards.
//!
//! Nothing here touches the database: callers never hold a connection while they wait.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, oneshot};

/// How many hashes may run and wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingConfig {
    /// Hashing threads, i.e. hashes running at the same time (at least 1).
    pub concurrency: usize,
    /// Requests that may wait for a thread; one more answers 503 `busy`.
    pub queue: usize,
}

impl HashingConfig {
    /// One thread per core, and a queue of 32 per thread (about a second of work at
    /// ~30 ms per hash: long enough to absorb a reconnect wave, short enough that a waiting
    /// client is answered well before its own time-out).
    pub fn for_this_machine() -> Self {
        let concurrency = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            concurrency,
            queue: concurrency * 32,
        }
    }
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self::for_this_machine()
    }
}

/// Why a hash or a verification did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full: retry after about this many seconds.
    #[error("password hashing is saturated; retry after {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// A stored hash that cannot be parsed, or an argon2 failure (never the client's doing).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl From<HashError> for kernel::ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy { retry_after_secs } => kernel::ApiError::Busy { retry_after_secs },
            HashError::Failed(cause) => kernel::ApiError::internal(cause),
        }
    }
}

/// A snapshot of the hasher's counters (for tests and operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashingStats {
    /// Hashing threads (the bound on hashes running at once).
    pub concurrency: usize,
    /// Hashes running right now.
    pub running: usize,
    /// The most hashes that ever ran at the same time.
    pub max_running: usize,
    /// Requests admitted and not finished (running or waiting).
    pub admitted: usize,
    /// Hashes and verifications done.
    pub completed: u64,
    /// Requests answered `busy` because the queue was full.
    pub rejected: u64,
}

enum Task {
    Hash {
        password: String,
        reply: oneshot::Sender<Result<String, HashError>>,
    },
    Verify {
        password: String,
        phc: String,
        reply: oneshot::Sender<Result<bool, HashError>>,
    },
}

impl Task {
    /// True when nobody waits for the answer any more (the client went away).
    fn abandoned(&self) -> bool {
        match self {
            Task::Hash { reply, .. } => reply.is_closed(),
            Task::Verify { reply, .. } => reply.is_closed(),
        }
    }
}

#[derive(Default)]
struct Counters {
    admitted: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    completed: AtomicU64,
    rejected: AtomicU64,
    /// Moving average of one hash's duration, in microseconds (for `Retry-After`).
    avg_micros: AtomicU64,
}

/// The bounded password hasher. Cheap to share (`Arc`); its threads stop once the last
/// handle is dropped and the queue is drained.
pub struct Hasher {
    config: HashingConfig,
    tasks: mpsc::Sender<Task>,
    counters: Arc<Counters>,
    dummy: OnceCell<String>,
}

impl Hasher {
    /// Starts `config.concurrency` hashing threads hashing new passwords with argon2id at
    /// OWASP's recommended minimum (19 MiB, 2 passes, 1 lane: argon2's defaults).
    ///
    /// Fails only when the operating system refuses to start a thread.
    pub fn new(config: HashingConfig) -> std::io::Result<Self> {
        let config = HashingConfig {
            concurrency: config.concurrency.max(1),
            queue: config.queue,
        };
        let (tasks, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters {
            avg_micros: AtomicU64::new(50_000),
            ..Default::default()
        });
        for i in 0..config.concurrency {
            let rx = Arc::clone(&rx);
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx, &counters))?;
        }
        Ok(Self {
            config,
            tasks,
            counters,
            dummy: OnceCell::new(),
        })
    }

    /// The bound this hasher was started with.
    pub fn config(&self) -> HashingConfig {
        self.config
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`, with a fresh salt.
    ///
    /// Fails with [`HashError::Busy`] at once when the queue is full.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Task::Hash { password, reply })?;
        rx.await
            .map_err(|_| HashError::Failed("the hashing thread stopped".into()))?
    }

    /// Whether `password` matches the PHC string `phc`. Any argon2 variant and parameters
    /// (those of older hashes included) are read from the string itself.
    ///
    /// Fails with [`HashError::Busy`] at once when the queue is full, and with
    /// [`HashError::Failed`] when `phc` is not a valid argon2 hash.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Task::Verify {
            password,
            phc,
            reply,
        })?;
        rx.await
            .map_err(|_| HashError::Failed("the hashing thread stopped".into()))?
    }

    /// Verifies `password` against a hash of a random secret, so that a login for an unknown
    /// email costs what a wrong password costs (same queue, same work). The secret's hash
    /// is made once per hasher, through the queue like any other.
    pub async fn verify_dummy(&self, password: String) -> Result<(), HashError> {
        let phc = self
            .dummy
            .get_or_try_init(|| self.hash(SaltString::generate(&mut OsRng).to_string()))
            .await?
            .clone();
        self.verify(password, phc).await.map(|_| ())
    }

    /// The current counters.
    pub fn stats(&self) -> HashingStats {
        let c = &self.counters;
        HashingStats {
            concurrency: self.config.concurrency,
            running: c.running.load(Ordering::Relaxed),
            max_running: c.max_running.load(Ordering::Relaxed),
            admitted: c.admitted.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }

    /// Admits the task when fewer than `concurrency + queue` are admitted, else `Busy`.
    fn submit(&self, task: Task) -> Result<(), HashError> {
        let limit = self.config.concurrency + self.config.queue;
        let admitted =
            self.counters
                .admitted
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limit).then_some(n + 1)
                });
        if let Err(now) = admitted {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(HashError::Busy {
                retry_after_secs: self.retry_after(now),
            });
        }
        self.tasks.send(task).map_err(|_| {
            self.counters.admitted.fetch_sub(1, Ordering::AcqRel);
            HashError::Failed("the hashing threads stopped".into())
        })?;
        Ok(())
    }

    /// Seconds until the work ahead of a newcomer is likely done (at least 1).
    fn retry_after(&self, ahead: usize) -> u64 {
        let avg = self.counters.avg_micros.load(Ordering::Relaxed);
        let micros = (ahead as u64).saturating_mul(avg) / self.config.concurrency as u64;
        micros.div_ceil(1_000_000).clamp(1, 60)
    }
}

/// One hashing thread: takes tasks in arrival order, keeps its argon2 work area while more
/// work is queued, and frees it when the queue is empty.
fn worker(rx: &Mutex<mpsc::Receiver<Task>>, counters: &Counters) {
    lower_priority();
    let mut area = WorkArea::default();
    loop {
        let task = match rx.lock() {
            Ok(rx) => match rx.recv() {
                Ok(t) => t,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let reply = if task.abandoned() {
            None
        } else {
            let running = counters.running.fetch_add(1, Ordering::AcqRel) + 1;
            counters.max_running.fetch_max(running, Ordering::AcqRel);
            let started = Instant::now();
            let reply = match task {
                Task::Hash { password, reply } => {
                    Reply::Hash(reply, hash_with(&mut area, &password))
                }
                Task::Verify {
                    password,
                    phc,
                    reply,
                } => Reply::Verify(reply, verify_with(&mut area, &password, &phc)),
            };
            let took = started.elapsed().as_micros() as u64;
            let avg = counters.avg_micros.load(Ordering::Relaxed);
            counters
                .avg_micros
                .store((avg * 7 + took) / 8, Ordering::Relaxed);
            counters.running.fetch_sub(1, Ordering::AcqRel);
            counters.completed.fetch_add(1, Ordering::Relaxed);
            Some(reply)
        };
        // The counters are settled before the caller hears back, so what it reads is final.
        let left = counters.admitted.fetch_sub(1, Ordering::AcqRel) - 1;
        match reply {
            Some(Reply::Hash(tx, r)) => {
                let _ = tx.send(r);
            }
            Some(Reply::Verify(tx, r)) => {
                let _ = tx.send(r);
            }
            None => {}
        }
        if left <= counters.running.load(Ordering::Acquire) {
            area.release();
        }
    }
}

enum Reply {
    Hash(
        oneshot::Sender<Result<String, HashError>>,
        Result<String, HashError>,
    ),
    Verify(
        oneshot::Sender<Result<bool, HashError>>,
        Result<bool, HashError>,
    ),
}

/// Hashing threads yield the CPU to the runtime's threads under contention (Linux: nice 10
/// for this thread only). Best effort: without it hashing still works, only less politely.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread; no memory is shared.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
        }
    }
}

fn hash_with(area: &mut WorkArea, password: &str) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let params = Params::DEFAULT;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            area.blocks(params.block_count()),
        )
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

fn verify_with(area: &mut WorkArea, password: &str, phc: &str) -> Result<bool, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(|e| failed(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| failed(&e))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| failed(&e))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| failed(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Failed(
            "the stored hash has no salt or output".into(),
        ));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out
        .get_mut(..expected.len())
        .ok_or_else(|| HashError::Failed("the stored hash is too long".into()))?;
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            out,
            area.blocks(params.block_count()),
        )
        .map_err(|e| failed(&e))?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(out).map_err(|e| failed(&e))? == expected)
}

/// argon2's memory (one [`argon2::Block`] per KiB), kept between hashes while work is queued.
#[derive(Default)]
struct WorkArea {
    blocks: Vec<argon2::Block>,
}

impl WorkArea {
    fn blocks(&mut self, count: usize) -> &mut [argon2::Block] {
        if self.blocks.len() < count {
            self.blocks = vec![argon2::Block::default(); count];
        }
        &mut self.blocks[..count]
    }

    /// Frees the area and asks the allocator to give free memory back to the system. With
    /// glibc a freed 19 MiB block otherwise stays in the thread's arena for good once the
    /// allocator has raised its mmap threshold (docs/benchmarks.md, "Login storm": ~19 MiB per thread kept
    /// after every storm but the first); `malloc_trim` returns it. It runs once per thread
    /// when the queue drains, not per hash.
    fn release(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        self.blocks = Vec::new();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory to the system; no pointer is involved.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher as _;

    fn small() -> Hasher {
        Hasher::new(HashingConfig {
            concurrency: 2,
            queue: 4,
        })
        .expect("threads")
    }

    #[tokio::test]
    async fn a_hash_verifies_and_a_wrong_password_does_not() {
        let h = small();
        let phc = h.hash("correct horse".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            h.verify("correct horse".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(!h.verify("wrong horse".into(), phc).await.expect("verify"));
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_keep_verifying() {
        // What `Argon2::default().hash_password` stored before this hasher existed, and a
        // hash with other parameters and variant.
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"old password", &salt)
            .expect("hash")
            .to_string();
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(8 * 1024, 3, 2, Some(40)).expect("params"),
        )
        .hash_password(b"old password", &salt)
        .expect("hash")
        .to_string();
        let h = small();
        for phc in [old, other] {
            assert!(
                h.verify("old password".into(), phc.clone())
                    .await
                    .expect("verify")
            );
            assert!(!h.verify("new password".into(), phc).await.expect("verify"));
        }
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let h = small();
        assert!(matches!(
            h.verify("x".into(), "not a hash".into()).await,
            Err(HashError::Failed(_))
        ));
    }
}
