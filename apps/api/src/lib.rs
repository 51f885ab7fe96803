//! The marketplace server, assembled from its modules. `apps/api` is thin: it reads
//! configuration, connects and migrates the database, registers the modules (see
//! [`modules`]), starts the bus and serves REST and Socket.IO on one port.

mod apidoc;
pub mod config;
pub mod metrics;
mod ops;
pub mod serve;
pub mod telemetry;
pub mod typescript;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use connections::cluster::RedisLink;
use kernel::bus::DispatchOptions;
use kernel::{AppState, Authenticator, EventBus, JwtKeys, Module, Runtime};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use config::Config;

/// Every module of the server. Adding a module is one line here. `hasher` is the server's
/// one bounded password-hashing queue (see [`auth::hashing`]); `redis` is this node's link to
/// the cluster (see [`cluster_link`]), `None` on a single node.
pub fn modules(
    config: &Config,
    state: &AppState,
    hasher: &Arc<auth::Hasher>,
    redis: Option<&Arc<RedisLink>>,
    files: &files::Files,
    jwt_secret: &SecretString,
) -> Vec<Box<dyn Module>> {
    let request_access = Arc::new(offers::Access {
        db: state.db.clone(),
    });
    let chat_port = Arc::new(chat::Port::new(state, files.clone()));
    // Built first: its presence tracker answers the domain modules that reach users who are
    // not connected (see `kernel::ports::Presence`).
    let connections = connections::Connections::new(
        connections_config(config, redis),
        state.clone(),
        request_access,
        chat_port,
    );
    let presence = connections.presence();
    vec![
        Box::new(auth::AuthModule::new(Arc::clone(hasher))),
        Box::new(requests::RequestsModule::new(requests_config(config))),
        Box::new(offers::OffersModule),
        Box::new(chat::ChatModule),
        Box::new(notifications::NotificationsModule),
        Box::new(mail::MailModule::new(
            mail_config(config, jwt_secret),
            presence.clone(),
        )),
        Box::new(payments::PaymentsModule::new(payments_config(config))),
        Box::new(disputes::DisputesModule),
        Box::new(files::FilesModule::new(files.clone())),
        Box::new(admin::AdminModule),
        Box::new(push::PushModule::new(push_config(config), state, presence)),
        Box::new(reviews::ReviewsModule::new(reviews_config(config))),
        Box::new(connections),
    ]
}

fn requests_config(config: &Config) -> requests::RequestsConfig {
    requests::RequestsConfig {
        auto_complete_after: config.auto_complete_after,
    }
}

fn reviews_config(config: &Config) -> reviews::ReviewsConfig {
    reviews::ReviewsConfig {
        window: config.review_window,
    }
}

/// `jwt_secret` is the key tokens are signed with (see [`jwt_secret`]): the unsubscribe
/// tokens' key is derived from it, so it is as stable as sessions are.
fn mail_config(config: &Config, jwt_secret: &SecretString) -> mail::MailConfig {
    mail::MailConfig {
        smtp: config.smtp.clone(),
        app_url: config.app_url.clone(),
        public_url: config.public_url.clone(),
        delay: config.email_digest_delay,
        signer: mail::Signer::derived_from(jwt_secret.expose_secret().as_bytes()),
    }
}

fn connections_config(
    config: &Config,
    redis: Option<&Arc<RedisLink>>,
) -> connections::ConnectionsConfig {
    connections::ConnectionsConfig {
        ping_interval: config.socket_ping_interval,
        ping_timeout: config.socket_ping_timeout,
        max_payload: config.socket_max_payload,
        cors_origins: config.cors_origins.clone(),
        redis: redis.cloned(),
        ..Default::default()
    }
}

/// This node's Redis link when `REDIS_URL` is set: prepared, not yet connected (it connects
/// and reconnects by itself), so a node starts while Redis is down. Call inside the runtime.
pub fn cluster_link(config: &Config) -> anyhow::Result<Option<Arc<RedisLink>>> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let link = RedisLink::open(url, &config.redis_key_prefix)
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    tracing::info!(
        node = link.node_id(),
        prefix = link.prefix(),
        "joining a cluster through redis"
    );
    Ok(Some(link))
}

fn push_config(config: &Config) -> push::PushConfig {
    push::PushConfig {
        vapid_private_key: config.vapid_private_key.clone(),
        vapid_subject: config.vapid_subject.clone(),
        allow_http_endpoints: config.push_allow_http_endpoints,
        app_url: config.app_url.clone(),
    }
}

fn payments_config(config: &Config) -> payments::PaymentsConfig {
    let provider = match (
        config.payment_provider,
        &config.shkeeper_url,
        &config.shkeeper_api_key,
    ) {
        (config::ProviderKind::Shkeeper, Some(url), Some(api_key)) => {
            payments::ProviderConfig::Shkeeper {
                url: url.clone(),
                api_key: api_key.clone(),
                payout_user: config.shkeeper_payout_user.clone(),
                payout_password: config.shkeeper_payout_password.clone(),
                payout_fee: config.shkeeper_payout_fee,
            }
        }
        // Config::from_lookup refuses `shkeeper` without its URL and key.
        _ => payments::ProviderConfig::Sandbox,
    };
    payments::PaymentsConfig {
        provider,
        allow_legacy_api_key: config.shkeeper_allow_legacy_api_key,
        payout_poll: config.payout_poll,
        platform_fee_percent: config.platform_fee_percent,
        underpaid_tolerance_percent: config.payment_underpaid_tolerance_percent,
        public_url: config.public_url.clone(),
    }
}

/// Opens the database: SQLite in WAL mode with a busy timeout, or PostgreSQL.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(config.database_url.clone());
    opts.sqlx_logging(false)
        .max_connections(config.db_max_connections)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(opts).await.with_context(|| {
        format!(
            "cannot open the database at {}",
            redact(&config.database_url)
        )
    })
}

/// Applies every pending migration.
/// On PostgreSQL, nodes that start together take turns: a session advisory lock on a
/// connection of its own is held while migrating (released when it closes, or when the
/// process dies), so a second node waits and then finds nothing left to apply.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return migrations::Migrator::up(db, None)
            .await
            .context("migrations failed");
    }
    let lock = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .context("migrations: no database connection for the lock")?;
    let mut lock = lock.detach();
    sea_orm::sqlx::query("SELECT pg_advisory_lock(7242000)")
        .execute(&mut lock)
        .await
        .context("migrations: lock")?;
    let result = migrations::Migrator::up(db, None)
        .await
        .context("migrations failed");
    let _ = sea_orm::sqlx::Connection::close(lock).await;
    result
}

/// Hides a password in a database URL before it is logged.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// The key tokens are signed with: `JWT_SECRET`, or (outside production, where it may be
/// unset) the random secret kept in the database, made by the first node that starts.
pub async fn jwt_secret(config: &Config, db: &DatabaseConnection) -> anyhow::Result<SecretString> {
    match &config.jwt_secret {
        Some(s) => Ok(s.clone()),
        None => kernel::secrets::kept_secret(db, "jwt")
            .await
            .map_err(|e| anyhow::anyhow!("cannot read or make the kept JWT secret: {e}")),
    }
}

/// The shared state of every router; tokens are signed with `jwt_secret` (see
/// [`jwt_secret`]).
pub fn state(config: &Config, db: DatabaseConnection, jwt_secret: &SecretString) -> AppState {
    let keys = Arc::new(JwtKeys::from_secret(jwt_secret, config.jwt_ttl_secs));
    let auth = Authenticator {
        keys,
        users: Arc::new(auth::Directory { db: db.clone() }),
    };
    AppState {
        bus: EventBus::new(db.clone()),
        db,
        auth,
        // One node: counters in memory. A cluster node replaces this with
        // `kernel::Limits::redis(connection_manager, &redis_key_prefix)`.
        limits: kernel::Limits::memory(),
        proxies: config.net.trusted_proxies.clone(),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Marketplace API", description = "Purchase requests, offers, chat, payments, disputes. Live events over Socket.IO: see /api/asyncapi.json."),
    modifiers(&BearerAuth),
    components(schemas(kernel::error::Problem, catalog::FieldError))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The full router and its OpenAPI document, built from the modules' routers.
pub fn assemble(
    config: &Config,
    state: &AppState,
    modules: &[Box<dyn Module>],
) -> (Router, utoipa::openapi::OpenApi) {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .merge(typescript::router());
    for m in modules {
        api = api.merge(m.router());
    }
    let (router, openapi) = api.split_for_parts();
    let openapi = apidoc::finish(openapi);
    let types = typescript::TypesTs(typescript_module(&openapi).into());
    let mut router = router
        .layer(axum::Extension(types))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/api/openapi.json", openapi.clone()))
        .merge(metrics::router(config))
        .fallback(kernel::error::not_found_fallback)
        .method_not_allowed_fallback(kernel::error::method_not_allowed_fallback)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            kernel::idempotency::Idempotency {
                db: state.db.clone(),
                keys: state.auth.keys.clone(),
                body_limit: config.body_limit,
            },
            kernel::idempotency::layer,
        ));
    for m in modules {
        router = m.wrap(router);
    }
    (ops::layers(router, config), openapi)
}

/// The OpenAPI document, without touching a database (for `marketplace openapi`).
pub async fn openapi_document(config: &Config) -> anyhow::Result<utoipa::openapi::OpenApi> {
    let mut opts = ConnectOptions::new("sqlite::memory:");
    opts.connect_lazy(true);
    // The document does not depend on the signing key; this one is never used to sign.
    let unused = SecretString::from(hex::encode(rand::random::<[u8; 32]>()));
    let state = state(config, Database::connect(opts).await?, &unused);
    let hasher = Arc::new(auth::Hasher::new(auth::HashingConfig {
        concurrency: 1,
        queue: 0,
    })?);
    // Nothing is stored while printing a document: no upload directory is made for it.
    let mut files_config = config.files.clone();
    files_config.location = files::StorageLocation::Memory;
    let files = files::Files::open(&files_config, state.db.clone())?;
    let modules = modules(config, &state, &hasher, None, &files, &unused);
    Ok(assemble(config, &state, &modules).1)
}

/// The password hasher `config` asks for (`HASH_CONCURRENCY` threads, `HASH_QUEUE`).
///
/// Fails when the operating system refuses to start its threads.
pub fn hasher(config: &Config) -> anyhow::Result<Arc<auth::Hasher>> {
    Ok(Arc::new(
        auth::Hasher::new(config.hashing).context("cannot start the password-hashing threads")?,
    ))
}

/// The TypeScript module of this API (`marketplace typescript`, `GET /api/types.ts`), from the
/// finished OpenAPI document and the AsyncAPI document.
pub fn typescript_module(openapi: &utoipa::openapi::OpenApi) -> String {
    let openapi = serde_json::to_value(openapi).unwrap_or_default();
    typescript::module(&openapi, &asyncapi_document())
}

/// Runs the server on `listener` until `cancel` fires: migrate, bootstrap the admin, start
/// the bus and background tasks, serve. Then shut down in order (bounded by
/// `SHUTDOWN_DRAIN_SECS`): stop accepting, finish in-flight requests, let the bus make its
/// last delivery pass (so every acknowledged change's events reach the sockets still
/// connected), close the sockets, wait for background tasks, close the database.
pub async fn run(
    config: Config,
    listener: TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let hasher = hasher(&config)?;
    run_with_hasher(config, listener, cancel, hasher).await
}

/// [`run`] with a hasher made by the caller, who can then watch its counters (the tests do).
pub async fn run_with_hasher(
    config: Config,
    listener: TcpListener,
    cancel: CancellationToken,
    hasher: Arc<auth::Hasher>,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut db = connect(&config).await?;
    migrate(&db).await?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        // A pooled SQLite connection that read the schema while the migrations ran keeps that
        // old schema until it next runs a statement, and some statements (an upsert naming a
        // unique index made by a migration) are refused against it instead of re-read. Fresh
        // connections read the migrated schema.
        let _ = db.close().await;
        db = connect(&config).await?;
    }
    if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
        auth::ensure_admin(&db, &hasher, email, password.expose_secret())
            .await
            .map_err(|e| anyhow::anyhow!("ADMIN_EMAIL/ADMIN_PASSWORD: {e}"))?;
        tracing::info!(email = %email, "admin account ensured");
    }
    let redis = cluster_link(&config)?;
    let jwt_secret = jwt_secret(&config, &db).await?;
    let mut state = state(&config, db.clone(), &jwt_secret);
    if let Some(link) = &redis {
        // Limits count across nodes on the same Redis link (in memory while it is down).
        state.limits = kernel::Limits::redis(link.connection(), link.prefix());
    }
    let files = files::Files::open(&config.files, db.clone())
        .map_err(|e| anyhow::anyhow!("STORAGE_URL: {e}"))?;
    files
        .prepare()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read or make the kept file-link key: {e}"))?;
    let modules = modules(
        &config,
        &state,
        &hasher,
        redis.as_ref(),
        &files,
        &jwt_secret,
    );
    let (router, openapi) = assemble(&config, &state, &modules);
    let router = match &redis {
        Some(link) => router.layer(axum::Extension(link.clone())),
        None => router,
    };

    let tracker = TaskTracker::new();
    // The bus has its own tracker and stop signal: it stops after in-flight requests, not
    // when the signal comes.
    let bus_tracker = TaskTracker::new();
    let bus_stop = CancellationToken::new();
    let drained = CancellationToken::new();
    let subscribers: Vec<_> = modules.iter().flat_map(|m| m.subscribers(&state)).collect();
    let names: Vec<&'static str> = subscribers.iter().map(|s| s.name()).collect();
    metrics::init(&openapi, &names);
    state.bus.start(
        subscribers,
        dispatch_options(&config),
        bus_stop.clone(),
        &bus_tracker,
    );
    let mut timers: Vec<_> = modules.iter().flat_map(|m| m.timers(&state)).collect();
    timers.push(kernel::idempotency::prune_handler(db.clone()));
    kernel::idempotency::schedule_prune(&db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot schedule the idempotency prune job: {e}"))?;
    kernel::timers::start(
        db.clone(),
        timers,
        kernel::timers::TimerOptions {
            poll_interval: config.event_poll,
            lease: config.bus.timer_lease,
            ..Default::default()
        },
        cancel.clone(),
        &tracker,
    );
    let rt = Runtime {
        cancel: cancel.clone(),
        tracker: tracker.clone(),
        state: state.clone(),
        drained: drained.clone(),
    };
    for m in &modules {
        m.start(&rt);
    }

    let inflight = Inflight::default();
    let router = router.layer(axum::middleware::from_fn_with_state(
        inflight.clone(),
        count_inflight,
    ));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening (REST and Socket.IO)");
    let (quiesced_tx, quiesced) = tokio::sync::oneshot::channel();
    let mut server = tokio::spawn(serve::serve(
        listener,
        router,
        serve::ServeOptions::from_config(&config),
        cancel.clone().cancelled_owned(),
        quiesced_tx,
    ));
    // Dropped before the end (a test's `kill`, a panic): nothing keeps running behind it.
    let _stop_on_drop = StopOnDrop {
        server: server.abort_handle(),
        tokens: vec![cancel.clone(), bus_stop.clone(), drained.clone()],
    };
    let mut served = None;
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = &mut server => served = Some(r),
    }
    let deadline = tokio::time::Instant::now() + config.bus.shutdown_drain;
    if served.is_none() {
        tracing::info!("stopped accepting; finishing in-flight requests");
        // Every connection is told to stop before the count is read: a keep-alive connection
        // that has not heard of the shutdown yet could still start a request after it.
        let _ = tokio::time::timeout_at(deadline, quiesced).await;
        if tokio::time::timeout_at(deadline, inflight.idle())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within SHUTDOWN_DRAIN_SECS");
        }
    }
    tracing::info!("delivering what is committed to the sockets still connected");
    bus_stop.cancel();
    bus_tracker.close();
    if tokio::time::timeout_at(deadline, bus_tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("the last delivery pass did not finish within SHUTDOWN_DRAIN_SECS");
    }
    tracing::info!("closing the sockets");
    drained.cancel();
    cancel.cancel();
    let served = match served {
        Some(r) => Some(r),
        None => tokio::time::timeout(Duration::from_secs(5), &mut server)
            .await
            .ok(),
    };
    if served.is_none() {
        tracing::warn!("connections still open 5 s after the sockets were closed; dropping them");
        server.abort();
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(15), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop within 15 s");
    }
    let _ = db.close().await;
    tracing::info!("shut down");
    match served {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) if e.is_panic() => Err(anyhow::anyhow!("server task panicked")),
        _ => Ok(()),
    }
}

/// Stops what [`run`] started when `run` is dropped before it finishes: the HTTP server at
/// once, background tasks, the bus and the sockets through their tokens.
struct StopOnDrop {
    server: tokio::task::AbortHandle,
    tokens: Vec<CancellationToken>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.server.abort();
        for t in &self.tokens {
            t.cancel();
        }
    }
}

/// The bus's options from the configuration.
fn dispatch_options(config: &Config) -> DispatchOptions {
    DispatchOptions {
        poll_interval: config.event_poll,
        max_attempts: config.bus.retry_attempts,
        retry_backoff: config.bus.retry_backoff,
        dead_letter_backoff: config.bus.dead_letter_backoff,
        dead_letter_backoff_max: config.bus.dead_letter_backoff_max,
        lease_retry: config.bus.lease_retry,
        ..Default::default()
    }
}

/// Counts REST requests in progress (Socket.IO transport requests aside: a long-poll lasts
/// as long as the socket), so shutdown knows when every acknowledged change is committed.
#[derive(Clone)]
struct Inflight(Arc<tokio::sync::watch::Sender<usize>>);

impl Default for Inflight {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(0).0))
    }
}

impl Inflight {
    /// Resolves once no counted request is in progress.
    async fn idle(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Decrements the count when the request is answered (or dropped).
struct InflightGuard(Inflight);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn count_inflight(
    axum::extract::State(inflight): axum::extract::State<Inflight>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if req.uri().path().starts_with("/socket.io") {
        return next.run(req).await;
    }
    inflight.0.send_modify(|n| *n += 1);
    let _guard = InflightGuard(inflight);
    next.run(req).await
}

/// The AsyncAPI document of the socket events.
pub fn asyncapi_document() -> serde_json::Value {
    connections::asyncapi::document()
}
