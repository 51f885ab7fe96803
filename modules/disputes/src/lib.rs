//! The disputes module: disputes over paid or delivered requests, their evidence, and their
//! resolution (which moves the request and starts its payout in one transaction).
//!
//! It owns the `disputes` and `dispute_evidence` tables.
//!
//! # Public API
//! None: no module calls it. It calls `requests` (the request, its
//! [`requests::transition`]), `offers` (the accepted seller) and `payments`
//! ([`payments::ensure_payout`] in the resolution's transaction).

mod dto;
pub(crate) mod entity;
mod routes;
mod service;

use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

/// Registers `/api/requests/{id}/disputes` and `/api/disputes*`.
pub struct DisputesModule;

impl Module for DisputesModule {
    fn name(&self) -> &'static str {
        "disputes"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
}
