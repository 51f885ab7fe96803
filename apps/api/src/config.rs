//! Configuration from the environment (and `.env`), exactly the contract's table plus a few
//! documented extras. An invalid value stops start-up with one line naming the variable.

use std::net::IpAddr;
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Sandbox,
    Shkeeper,
}

/// A variable that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Everything the server reads from its environment. The secrets (`JWT_SECRET`,
/// `ADMIN_PASSWORD`, `SHKEEPER_API_KEY`, `SHKEEPER_PAYOUT_PASSWORD`) are [`SecretString`]s:
/// `Debug` prints them as `[REDACTED]`, so logging the config cannot leak them; read one
/// with `ExposeSecret::expose_secret` only where it is used.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: String,
    /// `JWT_SECRET`; `None` outside production when unset: the server then signs with a random
    /// secret it makes once and keeps in the database (every node reads the same one).
    pub jwt_secret: Option<SecretString>,
    pub jwt_ttl_secs: i64,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    pub public_url: String,
    pub payment_provider: ProviderKind,
    pub shkeeper_url: Option<String>,
    pub shkeeper_api_key: Option<SecretString>,
    pub shkeeper_payout_user: Option<String>,
    pub shkeeper_payout_password: Option<SecretString>,
    pub shkeeper_payout_fee: Decimal,
    pub shkeeper_allow_legacy_api_key: bool,
    pub payout_poll: Duration,
    pub platform_fee_percent: Decimal,
    /// `PAYMENT_UNDERPAID_TOLERANCE_PERCENT`: how far below the invoice a `PAID` may be and
    /// still complete it (network fees, rounding), in percent.
    pub payment_underpaid_tolerance_percent: Decimal,
    pub cors_origins: Vec<String>,
    pub app_env: AppEnv,
    pub log_format: LogFormat,
    pub rust_log: String,
    /// Extra: `BODY_LIMIT_BYTES`, default 1 MiB.
    pub body_limit: usize,
    /// Extra: `DB_MAX_CONNECTIONS`, default 10 (SQLite: 5).
    pub db_max_connections: u32,
    /// Extra: `SOCKET_PING_INTERVAL_SECS` (25) / `SOCKET_PING_TIMEOUT_SECS` (20).
    pub socket_ping_interval: Duration,
    pub socket_ping_timeout: Duration,
    /// Extra: `SOCKET_MAX_PAYLOAD_BYTES`, default 1,000,000 (the JS server's).
    pub socket_max_payload: u64,
    /// Extra: `EVENT_POLL_MS`, how often subscribers look at the log without a wake-up (1000).
    pub event_poll: Duration,
    /// `REDIS_URL`: set, this node joins a cluster (RESP3 is asked for when the URL does not
    /// say). Needs PostgreSQL.
    pub redis_url: Option<String>,
    /// `REDIS_KEY_PREFIX` (`marketplace`): every Redis key and pub/sub channel starts with it.
    pub redis_key_prefix: String,
    /// `METRICS_TOKEN`: when set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// The bus's retries, dead letters, leases and the shutdown drain ([`bus_settings`]).
    pub bus: BusSettings,
    /// `APP_URL` (`PUBLIC_URL`): the frontend's base URL, for links in emails and pushes.
    pub app_url: String,
    /// `VAPID_PRIVATE_KEY`: base64url P-256 private key for web push; unset, one is made at
    /// first start and kept in the database.
    pub vapid_private_key: Option<SecretString>,
    /// `VAPID_SUBJECT` (`mailto:` + `MAIL_FROM`'s address, else `PUBLIC_URL`).
    pub vapid_subject: String,
    /// `PUSH_ALLOW_HTTP_ENDPOINTS` (false): development and tests only, accept `http://` and
    /// loopback or private push endpoints.
    pub push_allow_http_endpoints: bool,
    /// `SMTP_URL` with `MAIL_FROM` (required with it): `None`, no email.
    pub smtp: Option<mail::SmtpSettings>,
    /// `EMAIL_DIGEST_DELAY_SECS` (900, 1..=86400): how long a notification stays unread
    /// before it is mailed.
    pub email_digest_delay: Duration,
    /// `AUTO_COMPLETE_AFTER_SECS` (1209600, 1..=31536000): a delivered request its buyer
    /// neither completes nor disputes within this completes by itself.
    pub auto_complete_after: Duration,
    /// `REVIEW_WINDOW_SECS` (1209600, 1..=31536000): how long after completion reviews are
    /// taken; hidden reviews are published when it closes.
    pub review_window: Duration,
    /// Extra: `HASH_CONCURRENCY` (default: the number of cores) password hashes at once, and
    /// `HASH_QUEUE` (default: 32 per hashing thread) waiting; beyond, 503 `busy`.
    pub hashing: auth::HashingConfig,
    /// Who may connect, how fast, how often ([`net_settings`]).
    pub net: NetSettings,
    /// `STORAGE_URL` (`file://./uploads`), `UPLOAD_MAX_BYTES` (10 MiB) and the `AWS_*`
    /// settings of an `s3://` store (see [`files_settings`]).
    pub files: files::FilesConfig,
}

/// `TRUSTED_PROXIES`, `MAX_CONNECTIONS_PER_CLIENT`, `HTTP_HEADER_TIMEOUT_SECS`: what the
/// server believes about its callers and what it lets one caller hold.
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// `TRUSTED_PROXIES` (unset): IPs and CIDR networks whose `X-Forwarded-For` is believed;
    /// their connections are not counted per client.
    pub trusted_proxies: kernel::TrustedProxies,
    /// `MAX_CONNECTIONS_PER_CLIENT` (1000): open TCP connections per peer address; beyond,
    /// a new one is closed as soon as it is accepted.
    pub max_connections_per_client: usize,
    /// `HTTP_HEADER_TIMEOUT_SECS` (10): the longest a request head may take to arrive, and
    /// how long an idle keep-alive connection waits for its next request.
    pub header_timeout: Duration,
}

/// Reads [`NetSettings`].
fn net_settings(get: &impl Fn(&str) -> Option<String>) -> Result<NetSettings, ConfigError> {
    let trusted_proxies = match get("TRUSTED_PROXIES") {
        None => kernel::TrustedProxies::default(),
        Some(list) => list
            .parse()
            .map_err(|e: kernel::client::BadProxy| err("TRUSTED_PROXIES", e.to_string()))?,
    };
    let max_connections_per_client: usize = parse(get, "MAX_CONNECTIONS_PER_CLIENT", "1000")?;
    if !(1..=1_000_000).contains(&max_connections_per_client) {
        return Err(err(
            "MAX_CONNECTIONS_PER_CLIENT",
            "must be between 1 and 1000000",
        ));
    }
    let header_timeout: u64 = parse(get, "HTTP_HEADER_TIMEOUT_SECS", "10")?;
    if !(1..=3600).contains(&header_timeout) {
        return Err(err(
            "HTTP_HEADER_TIMEOUT_SECS",
            "must be between 1 and 3600",
        ));
    }
    Ok(NetSettings {
        trusted_proxies,
        max_connections_per_client,
        header_timeout: Duration::from_secs(header_timeout),
    })
}

/// Retries, dead letters, leases and shutdown of the event bus (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct BusSettings {
    /// `EVENT_RETRY_ATTEMPTS` (8): attempts per event before it becomes a dead letter.
    pub retry_attempts: u32,
    /// `EVENT_RETRY_BACKOFF_MS` (50): the first pause between attempts (doubles, at most 5 s).
    pub retry_backoff: Duration,
    /// `DEAD_LETTER_RETRY_MS` (10000): the first pause before a dead letter is retried.
    pub dead_letter_backoff: Duration,
    /// `DEAD_LETTER_RETRY_MAX_MS` (600000): the longest pause between its retries (at most
    /// 600000, 10 minutes).
    pub dead_letter_backoff_max: Duration,
    /// `SUBSCRIBER_LEASE_RETRY_MS` (3000): how often a node without a side-effect
    /// subscriber's lease tries to take it (100..=10000, so a takeover stays within 15 s).
    pub lease_retry: Duration,
    /// `SHUTDOWN_DRAIN_SECS` (10): the longest a shutdown waits for in-flight requests and
    /// the last delivery pass before it closes the sockets.
    pub shutdown_drain: Duration,
    /// `TIMER_LEASE_SECS` (60, 2..=3600): how long a node holds a durable timer job it runs
    /// (renewed while it runs); a job of a node that died is taken again after it.
    pub timer_lease: Duration,
}

/// Reads [`BusSettings`].
fn bus_settings(get: &impl Fn(&str) -> Option<String>) -> Result<BusSettings, ConfigError> {
    let retry_attempts: u32 = parse(get, "EVENT_RETRY_ATTEMPTS", "8")?;
    if !(1..=100).contains(&retry_attempts) {
        return Err(err("EVENT_RETRY_ATTEMPTS", "must be between 1 and 100"));
    }
    let retry_backoff: u64 = parse(get, "EVENT_RETRY_BACKOFF_MS", "50")?;
    if !(1..=5000).contains(&retry_backoff) {
        return Err(err("EVENT_RETRY_BACKOFF_MS", "must be between 1 and 5000"));
    }
    let dl_max: u64 = parse(get, "DEAD_LETTER_RETRY_MAX_MS", "600000")?;
    if !(10..=600_000).contains(&dl_max) {
        return Err(err(
            "DEAD_LETTER_RETRY_MAX_MS",
            "must be between 10 and 600000 (10 minutes)",
        ));
    }
    let dl_first: u64 = parse(get, "DEAD_LETTER_RETRY_MS", "10000")?;
    if !(10..=dl_max).contains(&dl_first) {
        return Err(err(
            "DEAD_LETTER_RETRY_MS",
            "must be between 10 and DEAD_LETTER_RETRY_MAX_MS",
        ));
    }
    let lease_retry: u64 = parse(get, "SUBSCRIBER_LEASE_RETRY_MS", "3000")?;
    if !(100..=10_000).contains(&lease_retry) {
        return Err(err(
            "SUBSCRIBER_LEASE_RETRY_MS",
            "must be between 100 and 10000",
        ));
    }
    let drain: u64 = parse(get, "SHUTDOWN_DRAIN_SECS", "10")?;
    if !(1..=600).contains(&drain) {
        return Err(err("SHUTDOWN_DRAIN_SECS", "must be between 1 and 600"));
    }
    let timer_lease: u64 = parse(get, "TIMER_LEASE_SECS", "60")?;
    if !(2..=3600).contains(&timer_lease) {
        return Err(err("TIMER_LEASE_SECS", "must be between 2 and 3600"));
    }
    Ok(BusSettings {
        timer_lease: Duration::from_secs(timer_lease),
        retry_attempts,
        retry_backoff: Duration::from_millis(retry_backoff),
        dead_letter_backoff: Duration::from_millis(dl_first),
        dead_letter_backoff_max: Duration::from_millis(dl_max),
        lease_retry: Duration::from_millis(lease_retry),
        shutdown_drain: Duration::from_secs(drain),
    })
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let app_env = match get("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") | Some("test") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                return Err(err(
                    "APP_ENV",
                    format!("expected development or production, got {other:?}"),
                ));
            }
        };
        let host: IpAddr = parse(&get, "HOST", "127.0.0.1")?;
        let port: u16 = parse(&get, "PORT", "3000")?;
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| "sqlite://marketplace.db?mode=rwc".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        let jwt_secret = match get("JWT_SECRET") {
            Some(s) if s.len() < 32 && app_env == AppEnv::Production => {
                return Err(err("JWT_SECRET", "must be at least 32 bytes in production"));
            }
            Some(s) => Some(SecretString::from(s)),
            None if app_env == AppEnv::Production => {
                return Err(err("JWT_SECRET", "is required when APP_ENV=production"));
            }
            // Outside production: a random secret made at first start and kept in the
            // database (see `kernel::secrets`), never a value written here.
            None => None,
        };
        let jwt_ttl_secs: i64 = parse(&get, "JWT_TTL_SECS", "86400")?;
        if !(60..=31_536_000).contains(&jwt_ttl_secs) {
            return Err(err("JWT_TTL_SECS", "must be between 60 and 31536000"));
        }
        let admin_email = get("ADMIN_EMAIL");
        let admin_password = get("ADMIN_PASSWORD");
        let public_url = get("PUBLIC_URL").unwrap_or_else(|| match host {
            IpAddr::V6(h) => format!("http://[{h}]:{port}"),
            IpAddr::V4(h) => format!("http://{h}:{port}"),
        });
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(err("PUBLIC_URL", "must be an http(s) URL"));
        }
        let public_url = public_url.trim_end_matches('/').to_owned();
        let payment_provider = match get("PAYMENT_PROVIDER").as_deref() {
            None | Some("sandbox") => ProviderKind::Sandbox,
            Some("shkeeper") => ProviderKind::Shkeeper,
            Some(other) => {
                return Err(err(
                    "PAYMENT_PROVIDER",
                    format!("expected sandbox or shkeeper, got {other:?}"),
                ));
            }
        };
        let shkeeper_url = get("SHKEEPER_URL").map(|u| u.trim_end_matches('/').to_owned());
        let shkeeper_api_key = get("SHKEEPER_API_KEY");
        if payment_provider == ProviderKind::Shkeeper {
            match &shkeeper_url {
                None => {
                    return Err(err(
                        "SHKEEPER_URL",
                        "is required when PAYMENT_PROVIDER=shkeeper",
                    ));
                }
                Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    return Err(err("SHKEEPER_URL", "must be an http(s) URL"));
                }
                _ => {}
            }
            if shkeeper_api_key.is_none() {
                return Err(err(
                    "SHKEEPER_API_KEY",
                    "is required when PAYMENT_PROVIDER=shkeeper",
                ));
            }
        }
        let shkeeper_payout_fee: Decimal = parse(&get, "SHKEEPER_PAYOUT_FEE", "10")?;
        if shkeeper_payout_fee < Decimal::ZERO {
            return Err(err("SHKEEPER_PAYOUT_FEE", "must not be negative"));
        }
        let platform_fee_percent: Decimal = parse(&get, "PLATFORM_FEE_PERCENT", "0")?;
        if platform_fee_percent < Decimal::ZERO || platform_fee_percent >= Decimal::from(100) {
            return Err(err(
                "PLATFORM_FEE_PERCENT",
                "must be at least 0 and below 100",
            ));
        }
        let payment_underpaid_tolerance_percent: Decimal =
            parse(&get, "PAYMENT_UNDERPAID_TOLERANCE_PERCENT", "0.5")?;
        if payment_underpaid_tolerance_percent < Decimal::ZERO
            || payment_underpaid_tolerance_percent >= Decimal::from(100)
        {
            return Err(err(
                "PAYMENT_UNDERPAID_TOLERANCE_PERCENT",
                "must be at least 0 and below 100",
            ));
        }
        let payout_poll_secs: u64 = parse(&get, "PAYOUT_POLL_SECS", "30")?;
        if payout_poll_secs == 0 {
            return Err(err("PAYOUT_POLL_SECS", "must be at least 1"));
        }
        let cors_origins = match get("CORS_ORIGINS") {
            None => Vec::new(),
            Some(list) => {
                let origins: Vec<String> = list
                    .split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect();
                for o in &origins {
                    let ok = o == "*"
                        || ((o.starts_with("http://") || o.starts_with("https://"))
                            && o.parse::<http::HeaderValue>().is_ok());
                    if !ok {
                        return Err(err(
                            "CORS_ORIGINS",
                            format!("{o:?} is not an http(s) origin"),
                        ));
                    }
                }
                origins
            }
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ));
            }
        };
        let rust_log = get("RUST_LOG").unwrap_or_else(|| "info".to_owned());
        let body_limit: usize = parse(&get, "BODY_LIMIT_BYTES", "1048576")?;
        let is_sqlite = database_url.starts_with("sqlite:");
        let db_max_connections: u32 = parse(
            &get,
            "DB_MAX_CONNECTIONS",
            if is_sqlite { "5" } else { "10" },
        )?;
        if db_max_connections == 0 {
            return Err(err("DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        let ping_interval: u64 = parse(&get, "SOCKET_PING_INTERVAL_SECS", "25")?;
        let ping_timeout: u64 = parse(&get, "SOCKET_PING_TIMEOUT_SECS", "20")?;
        if ping_interval == 0 || ping_timeout == 0 {
            return Err(err(
                "SOCKET_PING_INTERVAL_SECS",
                "ping interval and timeout must be at least 1",
            ));
        }
        let socket_max_payload: u64 = parse(&get, "SOCKET_MAX_PAYLOAD_BYTES", "1000000")?;
        let event_poll_ms: u64 = parse(&get, "EVENT_POLL_MS", "1000")?;
        let (redis_url, redis_key_prefix) = cluster_settings(&get, is_sqlite)?;
        let hashing = hashing_config(&get)?;
        let metrics_token = metrics_token(&get)?;
        let app_url = url_setting(&get, "APP_URL", &public_url)?;
        let (vapid_private_key, vapid_subject) = vapid_settings(&get, &public_url)?;
        let push_allow_http_endpoints = parse_bool(&get, "PUSH_ALLOW_HTTP_ENDPOINTS")?;
        let files = files_settings(&get, &public_url)?;
        // `email_settings` reads `APP_URL` too, with the same default; `url_setting` above
        // checks it.
        let (smtp, _, email_digest_delay) = email_settings(&get, &public_url)?;
        let auto_complete_after = seconds_between(&get, "AUTO_COMPLETE_AFTER_SECS", 1, 31_536_000)?;
        let review_window = seconds_between(&get, "REVIEW_WINDOW_SECS", 1, 31_536_000)?;
        Ok(Config {
            auto_complete_after,
            review_window,
            app_url,
            vapid_private_key,
            vapid_subject,
            push_allow_http_endpoints,
            smtp,
            email_digest_delay,
            host,
            port,
            database_url,
            jwt_secret,
            jwt_ttl_secs,
            admin_email,
            admin_password: admin_password.map(SecretString::from),
            public_url,
            payment_provider,
            shkeeper_url,
            shkeeper_api_key: shkeeper_api_key.map(SecretString::from),
            shkeeper_payout_user: get("SHKEEPER_PAYOUT_USER"),
            shkeeper_payout_password: get("SHKEEPER_PAYOUT_PASSWORD").map(SecretString::from),
            shkeeper_payout_fee,
            shkeeper_allow_legacy_api_key: parse_bool(&get, "SHKEEPER_ALLOW_LEGACY_API_KEY")?,
            payout_poll: Duration::from_secs(payout_poll_secs),
            platform_fee_percent,
            payment_underpaid_tolerance_percent,
            cors_origins,
            app_env,
            log_format,
            rust_log,
            body_limit,
            db_max_connections,
            socket_ping_interval: Duration::from_secs(ping_interval),
            socket_ping_timeout: Duration::from_secs(ping_timeout),
            socket_max_payload,
            event_poll: Duration::from_millis(event_poll_ms.max(10)),
            redis_url,
            redis_key_prefix,
            metrics_token,
            bus: bus_settings(&get)?,
            hashing,
            net: net_settings(&get)?,
            files,
        })
    }
}

/// `STORAGE_URL`, `UPLOAD_MAX_BYTES` and, for `s3://`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
fn files_settings(
    get: &impl Fn(&str) -> Option<String>,
    public_url: &str,
) -> Result<files::FilesConfig, ConfigError> {
    let raw = get("STORAGE_URL").unwrap_or_else(|| "file://./uploads".to_owned());
    let location = files::StorageLocation::parse(&raw).map_err(|e| err("STORAGE_URL", e))?;
    let max_bytes: u64 = parse(get, "UPLOAD_MAX_BYTES", "10485760")?;
    if !(1..=1_073_741_824).contains(&max_bytes) {
        return Err(err("UPLOAD_MAX_BYTES", "must be between 1 and 1073741824"));
    }
    let endpoint = get("AWS_ENDPOINT_URL");
    if let Some(e) = &endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(err("AWS_ENDPOINT_URL", "must be an http(s) URL"));
    }
    let s3 = files::S3Settings {
        endpoint,
        region: get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned()),
        access_key_id: get("AWS_ACCESS_KEY_ID"),
        secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
        session_token: get("AWS_SESSION_TOKEN"),
    };
    if matches!(location, files::StorageLocation::S3 { .. }) {
        for (var, value) in [
            ("AWS_ACCESS_KEY_ID", &s3.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key),
        ] {
            if value.is_none() {
                return Err(err(var, "is required when STORAGE_URL is s3://"));
            }
        }
    }
    Ok(files::FilesConfig {
        location,
        s3,
        max_bytes,
        public_url: public_url.to_owned(),
        image_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
    })
}

/// `REDIS_URL` and `REDIS_KEY_PREFIX` (see docs/operations.md, "Running several nodes").
fn cluster_settings(
    get: &impl Fn(&str) -> Option<String>,
    is_sqlite: bool,
) -> Result<(Option<String>, String), ConfigError> {
    let prefix = get("REDIS_KEY_PREFIX").unwrap_or_else(|| "marketplace".to_owned());
    if prefix.len() > 64
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    {
        return Err(err(
            "REDIS_KEY_PREFIX",
            "use 1 to 64 characters among letters, digits, _ - . :",
        ));
    }
    let Some(url) = get("REDIS_URL") else {
        return Ok((None, prefix));
    };
    if is_sqlite {
        return Err(err(
            "REDIS_URL",
            "is set but DATABASE_URL is SQLite: the nodes of a cluster share one PostgreSQL database (set DATABASE_URL=postgres://… or unset REDIS_URL)",
        ));
    }
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(err("REDIS_URL", "must start with redis:// or rediss://"));
    }
    let lower = url.to_ascii_lowercase();
    let url = if lower.contains("protocol=resp3") {
        url
    } else if lower.contains("protocol=") {
        return Err(err(
            "REDIS_URL",
            "the Socket.IO Redis adapter needs RESP3 (protocol=resp3, Redis 7 or newer)",
        ));
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    };
    if let Err(e) = redis::Client::open(url.as_str()) {
        return Err(err("REDIS_URL", format!("not a Redis URL: {e}")));
    }
    Ok((Some(url), prefix))
}

/// A number of seconds from `var` within `min..=max` (default 1209600, 14 days: the contract's
/// for `AUTO_COMPLETE_AFTER_SECS` and `REVIEW_WINDOW_SECS`).
fn seconds_between(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let secs: u64 = parse(get, var, "1209600")?;
    if !(min..=max).contains(&secs) {
        return Err(err(var, format!("must be between {min} and {max}")));
    }
    Ok(Duration::from_secs(secs))
}

/// `SMTP_URL`, `MAIL_FROM`, `SMTP_TLS_CA_FILE`, `APP_URL` and `EMAIL_DIGEST_DELAY_SECS`.
fn email_settings(
    get: &impl Fn(&str) -> Option<String>,
    public_url: &str,
) -> Result<(Option<mail::SmtpSettings>, String, Duration), ConfigError> {
    let smtp = match (get("SMTP_URL"), get("MAIL_FROM")) {
        (None, _) => None,
        (Some(_), None) => return Err(err("MAIL_FROM", "is required when SMTP_URL is set")),
        (Some(url), Some(from)) => {
            let mut settings = mail::SmtpSettings::parse(&url, &from);
            if let Some(path) = get("SMTP_TLS_CA_FILE") {
                settings = settings.and_then(|s| s.with_ca_file(&path));
            }
            Some(settings.map_err(|e| err(e.var(), e.message().to_owned()))?)
        }
    };
    if get("SMTP_URL").is_none() && get("SMTP_TLS_CA_FILE").is_some() {
        return Err(err("SMTP_TLS_CA_FILE", "is set but SMTP_URL is not"));
    }
    let app_url = get("APP_URL").unwrap_or_else(|| public_url.to_owned());
    if !(app_url.starts_with("http://") || app_url.starts_with("https://")) {
        return Err(err("APP_URL", "must be an http(s) URL"));
    }
    let app_url = app_url.trim_end_matches('/').to_owned();
    let delay: u64 = parse(get, "EMAIL_DIGEST_DELAY_SECS", "900")?;
    if !(1..=86_400).contains(&delay) {
        return Err(err(
            "EMAIL_DIGEST_DELAY_SECS",
            "must be between 1 and 86400",
        ));
    }
    Ok((smtp, app_url, Duration::from_secs(delay)))
}

/// `HASH_CONCURRENCY` (1..=256) and `HASH_QUEUE` (0..=100000).
fn hashing_config(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<auth::HashingConfig, ConfigError> {
    let machine = auth::HashingConfig::for_this_machine();
    let concurrency: usize = parse(get, "HASH_CONCURRENCY", &machine.concurrency.to_string())?;
    if !(1..=256).contains(&concurrency) {
        return Err(err("HASH_CONCURRENCY", "must be between 1 and 256"));
    }
    let queue: usize = parse(get, "HASH_QUEUE", &(concurrency * 32).to_string())?;
    if queue > 100_000 {
        return Err(err("HASH_QUEUE", "must be at most 100000"));
    }
    Ok(auth::HashingConfig { concurrency, queue })
}

/// `METRICS_TOKEN`: visible ASCII only (it travels in a header), at least 16 characters.
fn metrics_token(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    match get("METRICS_TOKEN") {
        None => Ok(None),
        Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => Err(err(
            "METRICS_TOKEN",
            "must be visible ASCII characters without spaces",
        )),
        Some(t) if t.len() < 16 => Err(err("METRICS_TOKEN", "must be at least 16 characters")),
        Some(t) => Ok(Some(t)),
    }
}

/// An http(s) base URL (without a trailing slash), `default` when unset.
fn url_setting(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let value = get(var).unwrap_or_else(|| default.to_owned());
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(err(var, "must be an http(s) URL"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// `VAPID_PRIVATE_KEY` (checked now, so a bad key stops start-up rather than every push)
/// and `VAPID_SUBJECT` (RFC 8292: a `mailto:` or `https:` contact; by default `mailto:`
/// and `MAIL_FROM`'s address, else `PUBLIC_URL`).
fn vapid_settings(
    get: &impl Fn(&str) -> Option<String>,
    public_url: &str,
) -> Result<(Option<SecretString>, String), ConfigError> {
    let key = match get("VAPID_PRIVATE_KEY") {
        Some(text) => {
            push::parse_private_key(&text).map_err(|e| err("VAPID_PRIVATE_KEY", e))?;
            Some(SecretString::from(text))
        }
        None => None,
    };
    let subject = match get("VAPID_SUBJECT") {
        Some(s) if s.starts_with("mailto:") && s.len() > "mailto:".len() => s,
        Some(s) if s.starts_with("https://") && s.len() > "https://".len() => s,
        Some(_) => {
            return Err(err(
                "VAPID_SUBJECT",
                "must be a mailto: or https: contact URI",
            ));
        }
        None => match get("MAIL_FROM").as_deref().and_then(mail_address) {
            Some(address) => format!("mailto:{address}"),
            None => public_url.to_owned(),
        },
    };
    Ok((key, subject))
}

/// The address of a mailbox such as `Marketplace <no-reply@example.com>` or a bare address.
fn mail_address(mailbox: &str) -> Option<String> {
    let address = match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => &mailbox[open + 1..close],
        _ => mailbox,
    };
    let address = address.trim();
    (address.contains('@') && !address.contains(char::is_whitespace)).then(|| address.to_owned())
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let raw = get(var).unwrap_or_else(|| default.to_owned());
    raw.parse::<T>()
        .map_err(|e| err(var, format!("{raw:?}: {e}")))
}

fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<bool, ConfigError> {
    match get(var).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(err(var, format!("expected true or false, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn push_settings_have_their_defaults_and_bad_values_name_the_variable() {
        let c = cfg(&[("PUBLIC_URL", "https://api.example.com/")]).unwrap();
        assert_eq!(c.app_url, "https://api.example.com");
        assert_eq!(c.vapid_subject, "https://api.example.com");
        assert!(c.vapid_private_key.is_none() && !c.push_allow_http_endpoints);
        let c = cfg(&[
            ("MAIL_FROM", "Marketplace <no-reply@example.com>"),
            ("APP_URL", "https://app.example.com/"),
            ("PUSH_ALLOW_HTTP_ENDPOINTS", "true"),
            (
                "VAPID_PRIVATE_KEY",
                "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
            ),
        ])
        .unwrap();
        assert_eq!(c.vapid_subject, "mailto:no-reply@example.com");
        assert_eq!(c.app_url, "https://app.example.com");
        assert!(c.push_allow_http_endpoints && c.vapid_private_key.is_some());
        for (var, value) in [
            ("VAPID_PRIVATE_KEY", "not-a-key"),
            ("VAPID_PRIVATE_KEY", "AAAa"),
            ("VAPID_SUBJECT", "ops@example.com"),
            ("APP_URL", "app.example.com"),
            ("PUSH_ALLOW_HTTP_ENDPOINTS", "maybe"),
        ] {
            assert_eq!(cfg(&[(var, value)]).unwrap_err().var, var, "{var}={value}");
        }
        let ok = cfg(&[("VAPID_SUBJECT", "mailto:ops@example.com")]).unwrap();
        assert_eq!(ok.vapid_subject, "mailto:ops@example.com");
        let keyed = cfg(&[(
            "VAPID_PRIVATE_KEY",
            "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
        )])
        .unwrap();
        assert!(
            !format!("{keyed:?}").contains("yfWPiYE"),
            "the key is never printed"
        );
    }

    #[test]
    fn smtp_tls_ca_file_needs_a_tls_url_and_a_readable_certificate() {
        let from = ("MAIL_FROM", "Marketplace <no-reply@example.com>");
        let missing = ("SMTP_TLS_CA_FILE", "/nonexistent/ca.pem");
        for pairs in [
            vec![missing],
            vec![("SMTP_URL", "smtp://127.0.0.1:25"), from, missing],
            vec![("SMTP_URL", "smtps://relay.example:465"), from, missing],
            vec![
                ("SMTP_URL", "smtp://relay.example:587?tls=required"),
                from,
                ("SMTP_TLS_CA_FILE", "Cargo.toml"),
            ],
        ] {
            assert_eq!(
                cfg(&pairs).unwrap_err().var,
                "SMTP_TLS_CA_FILE",
                "{pairs:?}"
            );
        }
        let plain = cfg(&[("SMTP_URL", "smtp://127.0.0.1:25"), from]).unwrap();
        assert!(plain.smtp.is_some());
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.database_url, "sqlite://marketplace.db?mode=rwc");
        assert_eq!(c.public_url, "http://127.0.0.1:3000");
        assert!(c.jwt_secret.is_none());
        assert_eq!(c.payment_provider, ProviderKind::Sandbox);
        assert_eq!(c.payout_poll, Duration::from_secs(30));
        assert_eq!(c.auto_complete_after, Duration::from_secs(1_209_600));
        assert_eq!(c.review_window, Duration::from_secs(1_209_600));
    }

    #[test]
    fn delivery_and_review_windows_are_one_second_to_one_year() {
        for var in ["AUTO_COMPLETE_AFTER_SECS", "REVIEW_WINDOW_SECS"] {
            for bad in ["0", "31536001", "-5", "1.5", "soon"] {
                assert_eq!(cfg(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
            }
        }
        let c = cfg(&[
            ("AUTO_COMPLETE_AFTER_SECS", "1"),
            ("REVIEW_WINDOW_SECS", "31536000"),
        ])
        .unwrap();
        assert_eq!(c.auto_complete_after, Duration::from_secs(1));
        assert_eq!(c.review_window, Duration::from_secs(31_536_000));
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        assert_eq!(cfg(&[("PORT", "http")]).unwrap_err().var, "PORT");
        assert_eq!(cfg(&[("LOG_FORMAT", "xml")]).unwrap_err().var, "LOG_FORMAT");
        assert_eq!(
            cfg(&[("PAYMENT_PROVIDER", "shkeeper")]).unwrap_err().var,
            "SHKEEPER_URL"
        );
        assert_eq!(
            cfg(&[("CORS_ORIGINS", "ftp://x")]).unwrap_err().var,
            "CORS_ORIGINS"
        );
        assert_eq!(
            cfg(&[("METRICS_TOKEN", "short")]).unwrap_err().var,
            "METRICS_TOKEN"
        );
        assert_eq!(
            cfg(&[("METRICS_TOKEN", "has a space in it, sixteen+")])
                .unwrap_err()
                .var,
            "METRICS_TOKEN"
        );
        assert_eq!(
            cfg(&[("HASH_CONCURRENCY", "0")]).unwrap_err().var,
            "HASH_CONCURRENCY"
        );
        assert_eq!(cfg(&[("HASH_QUEUE", "-1")]).unwrap_err().var, "HASH_QUEUE");
    }

    #[test]
    fn net_settings_default_and_name_a_bad_value() {
        let n = cfg(&[]).unwrap().net;
        assert!(n.trusted_proxies.is_empty());
        assert_eq!(n.max_connections_per_client, 1000);
        assert_eq!(n.header_timeout, Duration::from_secs(10));
        let n = cfg(&[("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1")])
            .unwrap()
            .net;
        assert!(n.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        for (var, value) in [
            ("TRUSTED_PROXIES", "10.0.0.1,proxy.local"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("MAX_CONNECTIONS_PER_CLIENT", "0"),
            ("MAX_CONNECTIONS_PER_CLIENT", "many"),
            ("HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("HTTP_HEADER_TIMEOUT_SECS", "1.5"),
        ] {
            let e = cfg(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{value}");
            assert!(!e.to_string().contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn the_hashing_queue_defaults_to_32_per_thread() {
        let c = cfg(&[("HASH_CONCURRENCY", "3")]).unwrap();
        assert_eq!(c.hashing.concurrency, 3);
        assert_eq!(c.hashing.queue, 96);
        assert_eq!(cfg(&[("HASH_QUEUE", "0")]).unwrap().hashing.queue, 0);
    }

    #[test]
    fn redis_needs_postgres_and_resp3() {
        let e = cfg(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap_err();
        assert_eq!(e.var, "REDIS_URL");
        assert!(e.to_string().contains("DATABASE_URL"), "{e}");
        let pg = ("DATABASE_URL", "postgres://u@127.0.0.1/db");
        let c = cfg(&[pg, ("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap();
        assert_eq!(
            c.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379?protocol=resp3")
        );
        assert_eq!(c.redis_key_prefix, "marketplace");
        let c = cfg(&[pg, ("REDIS_URL", "redis://h/2?protocol=resp3")]).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://h/2?protocol=resp3"));
        for bad in ["http://h", "redis://h?protocol=resp2"] {
            assert_eq!(cfg(&[pg, ("REDIS_URL", bad)]).unwrap_err().var, "REDIS_URL");
        }
        assert_eq!(
            cfg(&[("REDIS_KEY_PREFIX", "a b")]).unwrap_err().var,
            "REDIS_KEY_PREFIX"
        );
        assert!(cfg(&[]).unwrap().redis_url.is_none());
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        assert_eq!(
            cfg(&[("APP_ENV", "production")]).unwrap_err().var,
            "JWT_SECRET"
        );
        let c = cfg(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .unwrap();
        assert!(c.jwt_secret.is_some());
    }

    #[test]
    fn bus_settings_default_and_refuse_what_would_break_their_promises() {
        let b = cfg(&[]).unwrap().bus;
        assert_eq!(b.retry_attempts, 8);
        assert_eq!(b.dead_letter_backoff_max, Duration::from_secs(600));
        assert_eq!(b.shutdown_drain, Duration::from_secs(10));
        for (var, value) in [
            ("EVENT_RETRY_ATTEMPTS", "0"),
            ("EVENT_RETRY_BACKOFF_MS", "x"),
            ("DEAD_LETTER_RETRY_MAX_MS", "600001"),
            ("SUBSCRIBER_LEASE_RETRY_MS", "20000"),
            ("SHUTDOWN_DRAIN_SECS", "0"),
        ] {
            assert_eq!(cfg(&[(var, value)]).unwrap_err().var, var);
        }
        assert_eq!(
            cfg(&[
                ("DEAD_LETTER_RETRY_MS", "5000"),
                ("DEAD_LETTER_RETRY_MAX_MS", "1000")
            ])
            .unwrap_err()
            .var,
            "DEAD_LETTER_RETRY_MS"
        );
    }

    #[test]
    fn debug_of_the_config_shows_no_secret() {
        let secrets = [
            ("JWT_SECRET", "jwt-secret-value-0123456789abcdef0123"),
            ("ADMIN_PASSWORD", "admin-password-value-42"),
            ("SHKEEPER_API_KEY", "shkeeper-api-key-value-42"),
            ("SHKEEPER_PAYOUT_PASSWORD", "payout-password-value-42"),
        ];
        let mut pairs = vec![
            ("APP_ENV", "production"),
            ("ADMIN_EMAIL", "admin@example.com"),
            ("PAYMENT_PROVIDER", "shkeeper"),
            ("SHKEEPER_URL", "https://shkeeper.example"),
            ("SHKEEPER_PAYOUT_USER", "payout-bot"),
        ];
        pairs.extend(secrets);
        let c = cfg(&pairs).unwrap();
        let debug = format!("{c:?}");
        let pretty = format!("{c:#?}");
        for (var, value) in secrets {
            assert!(!debug.contains(value), "{var} leaks through Debug: {debug}");
            assert!(!pretty.contains(value), "{var} leaks through Debug");
        }
        // The values are still there for the code that needs them.
        use secrecy::ExposeSecret;
        assert_eq!(
            c.jwt_secret.as_ref().map(|s| s.expose_secret()),
            Some(secrets[0].1)
        );
        assert_eq!(
            c.shkeeper_payout_password
                .as_ref()
                .map(|p| p.expose_secret()),
            Some(secrets[3].1)
        );
        assert!(debug.contains("payout-bot"), "non-secrets stay visible");
    }
}
