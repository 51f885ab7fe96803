//! The requests module: purchase requests and their state machine, search, delivery and the
//! automatic completion of delivered requests. It owns the `purchase_requests` and
//! `purchase_request_sellers` tables (and, on SQLite, the `purchase_requests_fts` search index
//! that triggers keep). Other modules change a request's status only through
//! [`service::transition`].
//!
//! # Public API
//! What other modules may call (nothing else; its tables are private to it). Requests come
//! out as the contract's `PurchaseRequest`.
//! - [`service::find`]: a request by id, whoever asks; [`service::visible`]: the request if
//!   this caller may see it, else 404.
//! - [`service::parties`] / [`service::hold_parties`]: a request's buyer, accepted seller,
//!   status and completion time (the second holds the request's row until the caller's
//!   transaction ends).
//! - [`service::transition`]: the one way to change a request's status, inside the caller's
//!   transaction (publishes `request:status-updated`).
//! - [`service::hold_open`], [`service::set_accepted_offer`], [`service::record_offerer`]: the
//!   steps of making and accepting an offer, inside the offer's transaction.
//! - [`service::ids_with_status`]: a sub-query of the ids of requests in one status, to filter
//!   another module's rows by it.
//!
//! Delivery: the accepted seller's `POST /api/requests/{id}/deliver` makes a `paid` request
//! `delivered` and schedules, in the same transaction, a durable timer
//! ([`service::AUTO_COMPLETE`], `kernel::timers`) at `deliveredAt` + `AUTO_COMPLETE_AFTER_SECS`.
//! When it fires on any node, a request still `delivered` completes exactly as if its buyer had
//! completed it ([`service::AutoComplete`]); leaving `delivered` (the buyer completes, a party
//! disputes) cancels it.
//!
//! Search (`GET /api/requests?q=…`) lives in [`search`]: the query language, its translation
//! for FTS5 and PostgreSQL, budget filters and sorts.

mod dto;
pub(crate) mod entity;
mod routes;
mod search;
mod service;

pub use service::{
    find, hold_open, hold_parties, ids_with_status, record_offerer, set_accepted_offer, transition,
    visible,
};

use std::sync::Arc;
use std::time::Duration;

use kernel::timers::TimerHandler;
use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

/// What the requests module needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct RequestsConfig {
    /// `AUTO_COMPLETE_AFTER_SECS`: how long after its delivery a request the buyer neither
    /// completed nor disputed completes by itself.
    pub auto_complete_after: Duration,
}

impl Default for RequestsConfig {
    fn default() -> Self {
        Self {
            auto_complete_after: Duration::from_secs(1_209_600),
        }
    }
}

/// Registers `/api/requests*` and the automatic-completion timer.
pub struct RequestsModule {
    config: RequestsConfig,
}

impl RequestsModule {
    pub fn new(config: RequestsConfig) -> Self {
        Self { config }
    }
}

impl Module for RequestsModule {
    fn name(&self) -> &'static str {
        "requests"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.config)
    }
    fn timers(&self, state: &AppState) -> Vec<Arc<dyn TimerHandler>> {
        vec![service::AutoComplete::handler(state.bus.clone())]
    }
}
