//! The push module: web push (RFC 8030) to the browsers of users who are not connected.
//! It owns `push_subscriptions`, `push_deliveries` and `push_vapid_keys`.
//!
//! - `GET /api/push/public-key` and `/api/push/subscriptions` (routes.rs);
//! - a bus subscriber of `notification:received` that makes one delivery per subscription
//!   of a recipient who has push on, did not mute the kind and has no socket on any node
//!   (asked through [`kernel::ports::Presence`]);
//! - a durable timer handler (`push.deliver`) that sends each delivery once, retrying 429
//!   and 5xx answers with growing pauses (service.rs).
//!
//! Payload encryption (RFC 8291 `aes128gcm`) and the VAPID key type come from
//! `web-push-native` (pure Rust); the HTTP call is ours, with `reqwest`, so it shares the
//! server's TLS stack and goes through the SSRF guard's resolver (guard.rs). The `web-push`
//! crate was not chosen: its default client is libcurl-based (isahc), a C library and a
//! second HTTP stack beside reqwest, and its pluggable hyper client would still leave the
//! DNS pinning to us.
//!
//! # Public API
//! None besides the module: nothing else calls it.

mod dto;
pub(crate) mod entity;
mod guard;
mod message;
mod routes;
mod sender;
mod service;
mod vapid;

pub use service::{OUTCOMES, PUSHES};
pub use vapid::parse_private_key;

use std::sync::Arc;

use kernel::ports::Presence;
use kernel::timers::TimerHandler;
use kernel::{AppState, Module, Runtime, Subscriber};
use secrecy::SecretString;
use utoipa_axum::router::OpenApiRouter;

use crate::service::PushService;

/// The durable cursor name of the push subscriber. Never rename it.
pub const SUBSCRIBER: &str = "push";

/// The events the push subscriber handles.
pub const HANDLES: &[catalog::events::EventName] =
    &[catalog::events::EventName::NotificationReceived];

/// How web push is configured (README "Configuration").
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// `VAPID_PRIVATE_KEY` (checked at start-up with [`vapid::parse_private_key`]); unset: a
    /// key made once and kept in the database.
    pub vapid_private_key: Option<SecretString>,
    /// `VAPID_SUBJECT`: the contact push services see (`mailto:` or `https:`).
    pub vapid_subject: String,
    /// `PUSH_ALLOW_HTTP_ENDPOINTS`: development and tests only.
    pub allow_http_endpoints: bool,
    /// `APP_URL`: the frontend, for the link a push opens.
    pub app_url: String,
}

/// Registers `/api/push/*`, the `push` bus subscriber and the `push.deliver` timer.
pub struct PushModule {
    service: Arc<PushService>,
}

impl PushModule {
    /// The module over `state`'s bus; `presence` tells whether a recipient is connected on
    /// any node.
    pub fn new(config: PushConfig, state: &AppState, presence: Arc<dyn Presence>) -> Self {
        Self {
            service: Arc::new(PushService::new(state.bus.clone(), config, presence)),
        }
    }
}

impl Module for PushModule {
    fn name(&self) -> &'static str {
        "push"
    }

    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.service.clone())
    }

    fn subscribers(&self, _state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        let push = self.service.clone();
        vec![kernel::subscriber(SUBSCRIBER, HANDLES, move |event| {
            let push = push.clone();
            async move {
                let Some(catalog::events::NotificationReceived(n)) = event.decode() else {
                    return Ok(());
                };
                push.on_notification(&n).await.map(|_| ())
            }
        })]
    }

    fn timers(&self, _state: &AppState) -> Vec<Arc<dyn TimerHandler>> {
        let push = self.service.clone();
        vec![
            Arc::new(DeliverHandler(self.service.clone())),
            kernel::timers::handler(service::PRUNE, move |_job| {
                let push = push.clone();
                async move { push.prune().await }
            }),
        ]
    }

    fn start(&self, rt: &Runtime) {
        let push = self.service.clone();
        rt.tracker.spawn(async move {
            if let Err(e) = push.schedule_pruning().await {
                tracing::warn!(error = %e, "cannot schedule the pruning of push deliveries");
            }
        });
    }
}

/// Runs `push.deliver` jobs.
struct DeliverHandler(Arc<PushService>);

#[async_trait::async_trait]
impl TimerHandler for DeliverHandler {
    fn kind(&self) -> &'static str {
        service::DELIVER
    }
    /// Above [`service::MAX_ATTEMPTS`]: the handler gives a push up itself (and counts it);
    /// the runner's own limit is only for database errors that outlast the retries.
    fn max_attempts(&self) -> u32 {
        service::MAX_ATTEMPTS + 4
    }
    async fn run(&self, job: &kernel::timers::Job) -> kernel::Result<kernel::timers::Outcome> {
        self.0.deliver(job).await
    }
}
