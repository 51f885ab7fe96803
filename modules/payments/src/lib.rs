//! The payments module: invoices at a [`provider::PaymentProvider`] (SHKeeper or the embedded
//! sandbox), signed provider callbacks applied exactly once, and payouts (release to the seller,
//! refund to the buyer) submitted and followed by a background poller.
//!
//! It owns the `payments`, `payouts`, `webhook_events` and `webhook_applications` tables.
//!
//! # Public API
//! What other modules may call (nothing else; its tables are private to it):
//! - [`ensure_payout`]: makes sure a request's release or refund payout exists, inside the
//!   caller's transaction (a dispute's resolution).
//!
//! For the assembly (`apps/api`): [`PaymentsModule`] with its [`PaymentsConfig`], and
//! [`stats`] (the `marketplace_payouts` gauge).
//!
//! It calls `requests` (a request's buyer and status, [`requests::transition`] to
//! `paid`), `offers` (the accepted offer's price and seller) and `auth` (payout addresses).

mod admin;
mod dto;
pub(crate) mod entity;
mod money;
mod payouts;
mod provider;
mod routes;
mod service;
mod signature;
mod stats;
mod webhook;

pub use stats::{PAYOUT_STATUSES, payouts_by_status, status_name};

use std::sync::Arc;
use std::time::Duration;

use kernel::{AppState, Module, Runtime, Subscriber};
use rust_decimal::Decimal;
use secrecy::SecretString;
use utoipa_axum::router::OpenApiRouter;

pub use payouts::ensure_payout;
pub use provider::{PaymentProvider, Sandbox, Shkeeper};

/// Which provider to talk to, with what it needs. The API key and the payout password are
/// [`SecretString`]s: `Debug` shows `[REDACTED]`.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// The embedded default: no network.
    Sandbox,
    Shkeeper {
        url: String,
        api_key: SecretString,
        payout_user: Option<String>,
        payout_password: Option<SecretString>,
        payout_fee: Decimal,
    },
}

/// What the module reads from the app's configuration.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    pub provider: ProviderConfig,
    /// Accept unsigned callbacks carrying the right `X-Shkeeper-Api-Key` (SHKeeper < 2.5.16).
    pub allow_legacy_api_key: bool,
    /// How often pending payouts are submitted and processing ones polled.
    pub payout_poll: Duration,
    /// Kept from a release payout, in percent.
    pub platform_fee_percent: Decimal,
    /// How far below the invoice, in percent, a `PAID` may be and still complete it.
    pub underpaid_tolerance_percent: Decimal,
    /// The base URL the provider calls back.
    pub public_url: String,
}

/// The module's runtime context, shared by its routes, subscriber and poller.
pub struct Payments {
    pub provider: Arc<dyn PaymentProvider>,
    /// The key callbacks are signed with: the SHKeeper API key, or for the sandbox a random
    /// per-process key (so nobody outside can forge a sandbox callback).
    pub webhook_key: SecretString,
    pub allow_legacy_api_key: bool,
    pub payout_poll: Duration,
    pub platform_fee_percent: Decimal,
    /// See [`PaymentsConfig::underpaid_tolerance_percent`].
    pub underpaid_tolerance_percent: Decimal,
    pub public_url: String,
    pub sandbox: bool,
}

impl Payments {
    pub fn new(config: PaymentsConfig) -> Self {
        let (provider, webhook_key, sandbox): (Arc<dyn PaymentProvider>, SecretString, bool) =
            match config.provider {
                ProviderConfig::Sandbox => {
                    let key: [u8; 32] = rand::random();
                    (
                        Arc::new(Sandbox),
                        SecretString::from(hex::encode(key)),
                        true,
                    )
                }
                ProviderConfig::Shkeeper {
                    url,
                    api_key,
                    payout_user,
                    payout_password,
                    payout_fee,
                } => {
                    let client =
                        Shkeeper::new(&url, &api_key, payout_user, payout_password, payout_fee);
                    (Arc::new(client), api_key, false)
                }
            };
        Self {
            provider,
            webhook_key,
            allow_legacy_api_key: config.allow_legacy_api_key,
            payout_poll: config.payout_poll,
            platform_fee_percent: config.platform_fee_percent,
            underpaid_tolerance_percent: config.underpaid_tolerance_percent,
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            sandbox,
        }
    }

    pub fn payment_callback_url(&self) -> String {
        format!("{}/api/webhooks/shkeeper", self.public_url)
    }

    pub fn payout_callback_url(&self) -> String {
        format!("{}/api/webhooks/shkeeper/payout", self.public_url)
    }
}

/// Registers `/api/payments*`, `/api/payouts*`, `/api/webhooks/shkeeper*`,
/// `/api/admin/webhooks`, money that needs a person (`/api/admin/attention`,
/// `/api/admin/payouts/{id}/retry`, `/api/admin/payments/{id}/refund`) and (sandbox only)
/// `/api/sandbox/*`; the `payments.payouts` subscriber; and the payout poller (woken after
/// the commit of each transaction that made a payout).
pub struct PaymentsModule {
    ctx: Arc<Payments>,
}

impl PaymentsModule {
    pub fn new(config: PaymentsConfig) -> Self {
        Self {
            ctx: Arc::new(Payments::new(config)),
        }
    }
}

impl Module for PaymentsModule {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.ctx.clone())
    }

    fn subscribers(&self, state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        vec![payouts::subscriber(state.clone())]
    }

    fn start(&self, rt: &Runtime) {
        payouts::start_poller(rt, self.ctx.clone());
    }
}
