//! The mail module: email digests of what stayed unread, for users who are not connected,
//! with one-click unsubscribe (RFC 8058). It owns the `email_digests` and
//! `email_digest_items` tables.
//!
//! How a notification becomes (part of) an email, Knock- and Slack-style:
//! 1. `mail.digest-scheduler` hears `notification:received` and schedules the recipient's
//!    digest timer (`kernel::timers`, kind [`digest::KIND`], one per user) for the
//!    notification's time plus `EMAIL_DIGEST_DELAY_SECS`; a timer already pending keeps the
//!    earlier time.
//! 2. When it fires ([`digest::DigestHandler`]) the user's unread, not yet mailed, not muted
//!    notifications that are due form one digest. It waits until every notification created
//!    within one delay of the earliest due one is due too, so they go together. A user with
//!    email off, an undeliverable address, or a connected socket on any node gets none for
//!    them (they are recorded as `suppressed`, never mailed later).
//! 3. The digest row and its items are written in one transaction: the item's key is the
//!    notification id, so no notification is ever in two emails. Then it is sent; the row
//!    becomes `sent`. After a crash between the two the timer's lease brings the job back and
//!    the `pending` row says what to send.
//! 4. A temporary SMTP failure (4xx, refused connection, timeout) is retried with growing
//!    pauses (5 s doubling to 5 minutes; after 20 attempts the timer is kept as failed, listed
//!    with the dead letters); a permanent refusal (5xx) marks the address undeliverable.
//!
//! # Public API
//! [`MailModule`] (one line in `apps/api`), [`MailConfig`], the metric names.

mod digest;
pub(crate) mod entity;
mod render;
mod routes;
mod smtp;
mod token;

pub use smtp::SmtpSettings;
pub use token::Signer;

use std::sync::Arc;
use std::time::Duration;

use kernel::ports::Presence;
use kernel::timers::TimerHandler;
use kernel::{AppState, Module, Subscriber};
use utoipa_axum::router::OpenApiRouter;

/// `marketplace_emails_total{outcome}`: emails by what became of them.
pub const EMAILS_TOTAL: &str = "marketplace_emails_total";
/// Every `outcome` label of [`EMAILS_TOTAL`]: `sent` (accepted by the relay), `retried` (a
/// temporary failure, tried again later), `bounced` (refused for good: the address is now
/// undeliverable), `suppressed` (due, but not mailed: the user was connected, or has email
/// off or an undeliverable address).
pub const EMAIL_OUTCOMES: [&str; 4] = ["sent", "retried", "bounced", "suppressed"];

/// What the mail module needs from the configuration.
#[derive(Clone)]
pub struct MailConfig {
    /// `SMTP_URL`: `None` means no email at all (the routes still answer).
    pub smtp: Option<smtp::SmtpSettings>,
    /// `APP_URL`: the frontend, for the links in an email.
    pub app_url: String,
    /// `PUBLIC_URL`: this API, for the unsubscribe link.
    pub public_url: String,
    /// `EMAIL_DIGEST_DELAY_SECS`.
    pub delay: Duration,
    /// Signs unsubscribe tokens (derived from the JWT secret, see [`token::Signer`]).
    pub signer: token::Signer,
}

/// Registers `/api/email/unsubscribe`, the digest scheduler and the digest timer.
pub struct MailModule {
    config: MailConfig,
    presence: Arc<dyn Presence>,
    mailer: Option<smtp::Mailer>,
}

impl MailModule {
    /// `presence` tells whether a user is connected on any node (see
    /// [`kernel::ports::Presence`]). Builds the SMTP transport (it connects on first use).
    pub fn new(config: MailConfig, presence: Arc<dyn Presence>) -> Self {
        let mailer = config.smtp.as_ref().map(smtp::Mailer::new);
        Self {
            config,
            presence,
            mailer,
        }
    }
}

impl Module for MailModule {
    fn name(&self) -> &'static str {
        "mail"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.config.signer.clone())
    }
    fn subscribers(&self, state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        vec![digest::scheduler(
            state,
            self.mailer.is_some(),
            self.config.delay,
        )]
    }
    fn timers(&self, state: &AppState) -> Vec<Arc<dyn TimerHandler>> {
        match &self.mailer {
            Some(mailer) => vec![Arc::new(digest::DigestHandler {
                bus: state.bus.clone(),
                config: self.config.clone(),
                presence: self.presence.clone(),
                mailer: mailer.clone(),
            })],
            None => Vec::new(),
        }
    }
}
