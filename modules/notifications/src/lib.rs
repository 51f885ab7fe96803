//! The notifications module: every catalog event that concerns a user becomes a persisted
//! notification for that user (never for the actor), announced by `notification:received`.
//! It owns the `notifications` table.
//!
//! # Public API
//! None: it only listens to the event log and serves its routes. No module calls it.

pub mod dto;
pub(crate) mod entity;
pub mod routes;
pub mod service;
pub mod subscribers;

use std::sync::Arc;

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
