//! The test harness: [`TestApp::spawn`] starts the real server on a random loopback port
//! with a fresh database (SQLite always; PostgreSQL when `TEST_DATABASE_URL` is set), and
//! gives typed helpers for HTTP calls; [`story`] adds one typed helper per step of the
//! marketplace story (an open request ... a resolved dispute, a chat with messages), and
//! [`TestApp::socket`] a connected Socket.IO client of a user.

pub mod cluster;
pub mod files;
pub mod js;
pub mod shkeeper;
pub mod smtp;
pub mod socket;
pub mod story;
pub mod webpush;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use marketplace_api::Config;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
/// The message of every offer the kit makes (the first entry of its negotiation thread).
pub const OFFER_MESSAGE: &str = "In stock.";
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// Which engine this run tests: `sqlite`, or `postgres` when `TEST_DATABASE_URL` is set.
pub fn engine() -> &'static str {
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A database made for one test and the URL the app should use. On PostgreSQL it is a copy
/// of this process's migrated template ([`postgres_template`]), so the app finds every
/// migration applied; on SQLite it is a new file the app migrates (that takes milliseconds).
pub async fn fresh_database() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(admin_url) => {
            let template = postgres_template(&admin_url).await;
            let name = format!("mk_test_{id}");
            admin_execute(
                &admin_url,
                &format!("CREATE DATABASE {name} TEMPLATE {template}"),
            )
            .await;
            database_url(&admin_url, &name)
        }
        None => {
            let dir = std::env::temp_dir().join("marketplace-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{id}.db")).display()
            )
        }
    }
}

/// The name of a database with every migration applied, made once per test process and
/// copied by [`fresh_database`]: migrating a new PostgreSQL database takes about a second,
/// a copy a fraction of that. Named `mk_test_…` like the copies, so `.ci/run`'s clean-up
/// drops it too.
async fn postgres_template(admin_url: &str) -> &'static str {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("mk_test_template_{}", uuid::Uuid::now_v7().simple());
            admin_execute(admin_url, &format!("CREATE DATABASE {name}")).await;
            let mut opts = sea_orm::ConnectOptions::new(database_url(admin_url, &name));
            opts.max_connections(1).sqlx_logging(false);
            let db = sea_orm::Database::connect(opts)
                .await
                .expect("connect to the template database");
            // The app's own migration step, so the template has exactly what a start applies.
            marketplace_api::migrate(&db)
                .await
                .expect("migrate the template database");
            // A template may have no open session while it is copied.
            db.close().await.expect("close the template database");
            name
        })
        .await
}

/// Runs one statement on the `TEST_DATABASE_URL` database, on a short-lived connection of
/// its own (many tests create databases at once).
async fn admin_execute(admin_url: &str, sql: &str) {
    use sea_orm::{ConnectionTrait, Database};
    let mut opts = sea_orm::ConnectOptions::new(admin_url.to_owned());
    opts.max_connections(1)
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(60));
    let db = Database::connect(opts)
        .await
        .expect("TEST_DATABASE_URL must be reachable");
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = db.close().await;
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL must name a database");
    format!("{base}/{name}")
}

/// An HTTP answer: status and JSON body (`Value::Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// Panics with the body when the status is not `expected`.
    #[track_caller]
    pub fn expect(self, expected: u16) -> Value {
        assert_eq!(
            self.status, expected,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }
    /// The problem document's `code`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// A registered user of a test.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub token: String,
    pub email: String,
    pub password: String,
    pub role: String,
}

/// A running server for one test.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub http: reqwest::Client,
    pub database_url: String,
    pub env: HashMap<String, String>,
    cancel: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// Drops the server at once, without a graceful stop ([`TestApp::kill`]).
    abort: Option<tokio::sync::oneshot::Sender<()>>,
    /// This process's server's hasher; `None` for a server attached from another process.
    hasher: Option<std::sync::Arc<auth::Hasher>>,
}

impl TestApp {
    /// The app with the test defaults on a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// The app with environment overrides (`env.insert("PLATFORM_FEE_PERCENT".into(), ...)`).
    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
        Self::start(Self::test_env(adjust).await).await
    }

    /// The environment of a test's app: the test defaults on a fresh database, with `adjust`
    /// applied (for [`TestApp::start`], or for a `marketplace` process of its own:
    /// [`cluster::ProcessNode::spawn`]).
    pub async fn test_env(
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> HashMap<String, String> {
        let database_url = fresh_database().await;
        // Every app stores its uploads in a directory of its own, never in the crate.
        let uploads = std::env::temp_dir()
            .join("marketplace-tests")
            .join(format!("uploads-{}", uuid::Uuid::now_v7().simple()));
        let storage_url = format!("file://{}", uploads.display());
        let mut env: HashMap<String, String> = [
            ("STORAGE_URL", storage_url.as_str()),
            ("DATABASE_URL", database_url.as_str()),
            ("JWT_SECRET", JWT_SECRET),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("EVENT_POLL_MS", "200"),
            ("PAYOUT_POLL_SECS", "1"),
            ("RUST_LOG", "warn"),
            // Small pools: PostgreSQL allows 100 connections and tests run side by side.
            ("DB_MAX_CONNECTIONS", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        adjust(&mut env);
        env
    }

    /// Starts a server with exactly this environment (the database must exist).
    ///
    /// The server runs on a runtime of its own, of the same kind as the test's (one worker
    /// thread, or as many as the test has), on a blocking thread of the test's runtime. So
    /// when the test drops it, it stops gracefully even though the test's runtime ends: its
    /// sockets are closed and its database connections with them. (Run on the test's own
    /// runtime, a server with sockets still open when the test ended kept its pools, and their
    /// PostgreSQL connections, until the process exited: socketioxide's sockets and namespaces
    /// refer to each other, so nothing but a graceful close frees them.) The test's runtime
    /// waits for that stop when it ends.
    pub async fn start(mut env: HashMap<String, String>) -> TestApp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("addr");
        env.insert("PORT".into(), addr.port().to_string());
        let lookup = env.clone();
        let config = Config::from_lookup(|k| lookup.get(k).cloned()).expect("test config");
        let cancel = CancellationToken::new();
        let hasher = marketplace_api::hasher(&config).expect("hashing threads");
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        let (abort, aborted) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::task::spawn_blocking({
            let (cancel, hasher) = (cancel.clone(), hasher.clone());
            move || -> anyhow::Result<()> {
                let runtime = if workers > 1 {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(workers)
                        .enable_all()
                        .build()?
                } else {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                };
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let run = marketplace_api::run_with_hasher(config, listener, cancel, hasher);
                    tokio::select! {
                        r = run => r,
                        Ok(()) = aborted => Err(anyhow::anyhow!("killed")),
                    }
                })
            }
        });
        let mut app = TestApp {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            database_url: env.get("DATABASE_URL").cloned().unwrap_or_default(),
            env,
            cancel,
            handle: Some(handle),
            abort: Some(abort),
            hasher: Some(hasher),
        };
        app.wait_ready().await;
        app
    }

    /// A handle on a server that runs elsewhere (another process) at `addr`, for the same
    /// typed helpers. Stopping or dropping it does nothing to that server.
    pub async fn attach(addr: SocketAddr, env: HashMap<String, String>) -> TestApp {
        let mut app = TestApp {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            database_url: env.get("DATABASE_URL").cloned().unwrap_or_default(),
            env,
            cancel: CancellationToken::new(),
            handle: None,
            abort: None,
            hasher: None,
        };
        app.wait_ready().await;
        app
    }

    /// Waits for `/readyz` (migrations run first, which takes a while on a loaded machine);
    /// a server that stopped on its own fails the test with its error.
    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
                let handle = self.handle.take().expect("checked above");
                match handle.await {
                    Ok(Err(e)) => panic!("the app failed to start: {e:#}"),
                    other => panic!("the app stopped during start-up: {other:?}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the app did not become ready within 60 s");
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            match tokio::time::timeout(Duration::from_secs(30), h).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("server ended with an error: {e:#}"),
                Ok(Err(e)) => panic!("server task failed: {e}"),
                Err(_) => panic!("server did not stop within 30 s"),
            }
        }
    }

    /// Kills the server without a graceful stop: it is dropped mid-flight, with its runtime.
    pub async fn kill(&mut self) {
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
    }

    /// Stops this server and starts a new one on the same database.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let env = self.env.clone();
        Self::start(env).await
    }

    /// The counters of this server's password hasher (hashes running, most at once, ...).
    /// Panics for a server attached from another process (its hasher is not in reach).
    pub fn hashing(&self) -> auth::HashingStats {
        self.hasher
            .as_ref()
            .expect("hashing counters exist only for a server started in this process")
            .stats()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            content_type,
            headers,
        }
    }

    fn authed(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(self.authed(self.http.get(self.url(path)), token))
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(self.authed(self.http.post(self.url(path)).json(&body), token))
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(self.authed(self.http.patch(self.url(path)).json(&body), token))
            .await
    }

    /// Registers a fresh user with this role (`buyer` or `seller`).
    pub async fn register(&self, role: &str) -> TestUser {
        let email = format!("{role}-{}@test.local", uuid::Uuid::now_v7().simple());
        self.register_as(&email, role).await
    }

    /// Registers a user with this address (one a test's SMTP server knows) and role.
    pub async fn register_as(&self, email: &str, role: &str) -> TestUser {
        let email = email.to_owned();
        let password = "correct-horse-1".to_owned();
        let body = self
            .post("/api/auth/register", None, json!({ "email": email, "password": password, "name": format!("A {role}"), "role": role }))
            .await
            .expect(201);
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            token: body["token"].as_str().expect("token").to_owned(),
            email,
            password,
            role: role.to_owned(),
        }
    }

    /// A seller with a payout address (needed to make offers).
    pub async fn seller(&self) -> TestUser {
        let s = self.register("seller").await;
        self.patch(
            "/api/users/me",
            Some(&s.token),
            json!({ "payoutAddress": format!("addr-{}", &s.id[..8]) }),
        )
        .await
        .expect(200);
        s
    }

    pub async fn buyer(&self) -> TestUser {
        self.register("buyer").await
    }

    /// A new purchase request of `buyer` (a bike, no budget); its id.
    /// Events: `request:created`.
    pub async fn create_request(&self, buyer: &TestUser) -> String {
        let body = self
            .post_request(
                buyer,
                json!({ "title": "A used road bike", "description": "56 cm frame, good shape", "category": "bikes" }),
            )
            .await;
        body["id"].as_str().expect("request id").to_owned()
    }

    /// `POST /api/requests` with this body as `buyer`; the 201 `PurchaseRequest`.
    /// Events: `request:created`.
    pub async fn post_request(&self, buyer: &TestUser, body: Value) -> Value {
        self.post("/api/requests", Some(&buyer.token), body)
            .await
            .expect(201)
    }

    /// `seller`'s offer of `amount` USD on the request; its id.
    /// Events: `request:offer-received` (and the chat of the pair opens).
    pub async fn make_offer(&self, seller: &TestUser, request_id: &str, amount: &str) -> String {
        let body = self.post_offer(seller, request_id, amount).await;
        body["id"].as_str().expect("offer id").to_owned()
    }

    /// `seller`'s offer of `amount` USD on the request, message "In stock."; the 201
    /// `SellerOffer`. Events: `request:offer-received`.
    pub async fn post_offer(&self, seller: &TestUser, request_id: &str, amount: &str) -> Value {
        self.post(
            &format!("/api/requests/{request_id}/offers"),
            Some(&seller.token),
            json!({ "price": { "amount": amount, "currency": "USD" }, "message": OFFER_MESSAGE }),
        )
        .await
        .expect(201)
    }

    /// The request's status as `token`'s holder sees it.
    pub async fn request_status(&self, token: &str, request_id: &str) -> String {
        let r = self
            .get(&format!("/api/requests/{request_id}"), Some(token))
            .await
            .expect(200);
        r["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The newest payout `token`'s holder can see, if any.
    pub async fn latest_payout(&self, token: &str) -> Option<Value> {
        let page = self.get("/api/payouts", Some(token)).await.expect(200);
        page["items"].as_array().and_then(|a| a.first().cloned())
    }

    /// Waits until that payout has `status` (panics after `timeout`).
    pub async fn wait_payout(&self, token: &str, status: &str, timeout: Duration) -> Value {
        eventually(timeout, || async {
            self.latest_payout(token)
                .await
                .filter(|p| p["status"] == status)
        })
        .await
        .unwrap_or_else(|| panic!("no payout reached {status}"))
    }

    /// The bootstrapped admin (`ADMIN_EMAIL`/`ADMIN_PASSWORD`).
    pub async fn admin(&self) -> TestUser {
        let body = self
            .post(
                "/api/auth/login",
                None,
                json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
            )
            .await
            .expect(200);
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            token: body["token"].as_str().expect("token").to_owned(),
            email: ADMIN_EMAIL.to_owned(),
            password: ADMIN_PASSWORD.to_owned(),
            role: "admin".to_owned(),
        }
    }

    /// A direct connection to this test's database (for checks a client cannot make).
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(&self.database_url)
            .await
            .expect("db")
    }

    /// Waits until every subscriber's cursor has reached the newest event in the log: the
    /// side effects of what the test did so far (notifications, offer rejections, ...) and
    /// the events they wrote are all in. Panics after 30 s.
    pub async fn settled(&self) {
        use kernel::bus::entity::{event, subscriber_cursor};
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
        let db = self.db().await;
        let done = eventually(Duration::from_secs(30), || async {
            let newest = event::Entity::find()
                .order_by_desc(event::Column::Id)
                .one(&db)
                .await
                .ok()?
                .map_or(0, |e| e.id);
            let behind = subscriber_cursor::Entity::find()
                .filter(subscriber_cursor::Column::LastEventId.lt(newest))
                .count(&db)
                .await
                .ok()?;
            (behind == 0).then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "the subscribers did not catch up within 30 s"
        );
        db.close().await.ok();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A token signed with `secret` for these claims, expiring `exp_offset` seconds from now
/// (negative: already expired). Stands for a token minted by another service, or a forgery.
pub fn mint_token(secret: &str, sub: &str, role: &str, exp_offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": sub, "role": role, "iat": now, "exp": now + exp_offset }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode a test token")
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
