//! Several nodes of one marketplace: N app instances on one PostgreSQL database and one Redis,
//! with a key prefix of their own per test so tests share the Redis at 127.0.0.1:6379
//! (`TEST_REDIS_URL` to use another).
//!
//! Most tests run the nodes in this process ([`Cluster::start`]); a test that kills a node
//! with SIGKILL runs real `marketplace` processes ([`Cluster::spawn_process`], the binary is
//! built first when needed). [`RedisServer`] starts a private `redis-server` on a free port
//! for outage tests (the shared one is never touched).
//!
//! A cluster needs PostgreSQL: on SQLite runs, [`postgres_or_skip`] prints why the test is
//! skipped and the test returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, TestApp, engine, fresh_database};

/// The Redis the cluster tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// True on PostgreSQL runs; on SQLite prints a line saying the test is skipped.
pub fn postgres_or_skip(test: &str) -> bool {
    if engine() == "postgres" {
        return true;
    }
    println!("skipped {test}: a cluster needs PostgreSQL (set TEST_DATABASE_URL)");
    false
}

/// Nodes sharing one database and one Redis key prefix.
pub struct Cluster {
    pub database_url: String,
    pub redis_url: String,
    pub prefix: String,
    /// In-process nodes, in start order.
    pub nodes: Vec<TestApp>,
    /// This cluster's place among those running at once (dropped last, after the nodes).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Clusters that run at once in one test process, whatever the number of test threads. A
/// node keeps up to 8 PostgreSQL connections (its pool of `DB_MAX_CONNECTIONS` = 4, 2 for the
/// event log, the listener's, the leases'), a test adds its own, and PostgreSQL refuses
/// clients beyond `max_connections` (100 by default).
const CLUSTERS_AT_ONCE: usize = 2;

fn cluster_slots() -> std::sync::Arc<tokio::sync::Semaphore> {
    static SLOTS: OnceLock<std::sync::Arc<tokio::sync::Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(CLUSTERS_AT_ONCE)))
        .clone()
}

impl Cluster {
    /// `n` in-process nodes on a fresh PostgreSQL database and the shared Redis.
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, &redis_url(), |_| {}).await
    }

    /// `n` in-process nodes against `redis`, with environment overrides for all of them.
    pub async fn start_with(
        n: usize,
        redis: &str,
        adjust: impl Fn(&mut HashMap<String, String>),
    ) -> Cluster {
        let slot = cluster_slots()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut cluster = Cluster {
            _slot: slot,
            database_url: fresh_database().await,
            redis_url: redis.to_owned(),
            prefix: format!("mk-test-{}", uuid::Uuid::now_v7().simple()),
            nodes: Vec::new(),
        };
        for _ in 0..n {
            let mut env = cluster.env();
            adjust(&mut env);
            // One at a time: the first one migrates the database.
            cluster.nodes.push(TestApp::start(env).await);
        }
        cluster
    }

    /// The environment of one node of this cluster (`PORT` is set per node).
    pub fn env(&self) -> HashMap<String, String> {
        // The nodes share one upload directory (what several nodes need without S3), named
        // after the key prefix so clusters side by side do not mix.
        let uploads = std::env::temp_dir()
            .join("marketplace-tests")
            .join(format!("uploads-{}", self.prefix));
        let storage_url = format!("file://{}", uploads.display());
        [
            ("STORAGE_URL", storage_url.as_str()),
            ("DATABASE_URL", self.database_url.as_str()),
            ("REDIS_URL", self.redis_url.as_str()),
            ("REDIS_KEY_PREFIX", self.prefix.as_str()),
            ("JWT_SECRET", JWT_SECRET),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("EVENT_POLL_MS", "200"),
            ("PAYOUT_POLL_SECS", "1"),
            ("RUST_LOG", "warn"),
            ("DB_MAX_CONNECTIONS", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Starts one more node of this cluster as a real `marketplace` process.
    pub async fn spawn_process(&self) -> ProcessNode {
        ProcessNode::spawn(self.env()).await
    }

    /// Stops every in-process node gracefully, so its PostgreSQL connections are closed
    /// before the next test opens its own. (A test's runtime ends right after the test; a node
    /// only cancelled then leaves its pool's connections open until the process exits.)
    pub async fn stop(mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &TestApp {
        &self.nodes[i]
    }
}

/// A node running as its own `marketplace` process (so it can be killed with SIGKILL).
pub struct ProcessNode {
    pub app: TestApp,
    child: Child,
}

impl ProcessNode {
    /// Starts the binary with `env` on a free port and waits until `/readyz` answers 200.
    pub async fn spawn(mut env: HashMap<String, String>) -> ProcessNode {
        let port = free_port();
        env.insert("PORT".into(), port.to_string());
        env.insert("HOST".into(), "127.0.0.1".into());
        let mut child = Command::new(marketplace_binary())
            .arg("serve")
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the marketplace binary");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the marketplace process exited during start-up: {status}");
            }
            if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the marketplace process was not ready within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ProcessNode {
            app: TestApp::attach(addr, env).await,
            child,
        }
    }

    /// SIGKILL: no shutdown code runs, its TCP connections are closed by the kernel.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `marketplace` binary of this workspace (`MARKETPLACE_BIN` points at another one).
/// `.ci/run` builds it before the tests (`cargo build --workspace --bin marketplace`); when it
/// is missing it is built here. A binary older than this test executable is used all the same,
/// with a printed warning: building it from inside `cargo test` would see a different
/// environment and rebuild half the dependency tree.
pub fn marketplace_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("MARKETPLACE_BIN") {
            return PathBuf::from(path);
        }
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate sits in the workspace")
            .to_path_buf();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace.join("target"));
        let bin = target.join("debug").join("marketplace");
        let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (modified(&bin), std::env::current_exe().ok().and_then(|e| modified(&e))) {
            (None, _) => {
                let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
                cargo
                    .current_dir(&workspace)
                    .args(["build", "--workspace", "--bin", "marketplace"]);
                for (k, _) in std::env::vars() {
                    if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
                        || k == "LD_LIBRARY_PATH"
                        || k == "OUT_DIR"
                    {
                        cargo.env_remove(k);
                    }
                }
                let status = cargo.status().expect("run cargo build");
                assert!(status.success(), "cargo build of the marketplace binary failed");
            }
            (Some(bin_time), Some(test_time)) if bin_time < test_time => println!(
                "warning: {} is older than this test; run `cargo build --workspace --bin marketplace` to test current code",
                bin.display()
            ),
            _ => {}
        }
        bin
    })
    .clone()
}

/// A private `redis-server` on a free port, without persistence, for outage tests.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers.
    pub async fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
        };
        server.restart().await;
        server
    }

    /// Its URL (RESP3 is added by the app's configuration).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): every client connection drops at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was saved).
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the outage test");
        self.child = Some(child);
        // It answers PING once it is loaded; under a loaded CI machine that can take seconds.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.ping().await.is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server on port {} did not answer within 30 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    async fn ping(&self) -> redis::RedisResult<String> {
        let mut conn = self.connection().await?;
        redis::cmd("PING").query_async(&mut conn).await
    }

    /// Every key it holds, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.connection().await.expect("the private redis-server");
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        keys.sort();
        keys
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
