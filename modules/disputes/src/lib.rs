//! The disputes module: disputes over paid requests, their evidence, and their resolution
//! (which moves the request and starts its payout in one transaction). It also serves the
//! admin's system notices (`/api/admin/announcements`, `/api/admin/maintenance`).
//!
//! It owns the `disputes` and `dispute_evidence` tables.

pub mod dto;
pub mod entity;
pub mod routes;
pub mod service;

use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

/// Registers `/api/requests/{id}/disputes`, `/api/disputes*` and the admin notices.
pub struct DisputesModule;

impl Module for DisputesModule {
    fn name(&self) -> &'static str {
        "disputes"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
}
