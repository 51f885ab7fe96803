//! The notifications module: every catalog event that concerns a user becomes a persisted
//! notification for that user (never for the actor), announced by `notification:received`.
//! It owns the `notifications` table.
//!
//! It also owns each user's notification settings (`notification_settings`).
//!
//! # Public API
//! [`settings_of`] (how a user wants to be reached when not connected, with
//! [`Settings::mails`] and [`Settings::pushes`]), [`set_email_off`] (one-click unsubscribe)
//! and [`mark_email_undeliverable`] (a permanent bounce), for the email and push modules;
//! [`KINDS`], the notification kinds.

mod dto;
pub(crate) mod entity;
mod routes;
mod service;
mod settings;
mod subscribers;

pub use service::{by_ids, unread_until};

use std::sync::Arc;

pub use settings::{Settings, mark_email_undeliverable, set_email_off, settings_of};
pub use subscribers::KINDS;

use kernel::{AppState, Module, Subscriber};
use utoipa_axum::router::OpenApiRouter;

/// Registers `/api/notifications/*` and the `notifications` bus subscriber.
pub struct NotificationsModule;

impl Module for NotificationsModule {
    fn name(&self) -> &'static str {
        "notifications"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
    fn subscribers(&self, state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        vec![subscribers::subscriber(state)]
    }
}
