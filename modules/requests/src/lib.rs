//! The requests module: purchase requests and their state machine. It owns the
//! `purchase_requests` and `purchase_request_sellers` tables. Other modules change a
//! request's status only through [`service::transition`].
//!
//! # Public API
//! What other modules may call (nothing else; its tables are private to it). Requests come
//! out as the contract's `PurchaseRequest`.
//! - [`service::find`]: a request by id, whoever asks; [`service::visible`]: the request if
//!   this caller may see it, else 404.
//! - [`service::transition`]: the one way to change a request's status, inside the caller's
//!   transaction (publishes `request:status-updated`).
//! - [`service::hold_open`], [`service::set_accepted_offer`], [`service::record_offerer`]: the
//!   steps of making and accepting an offer, inside the offer's transaction.
//! - [`service::ids_with_status`]: a sub-query of the ids of requests in one status, to filter
//!   another module's rows by it.

pub mod dto;
pub(crate) mod entity;
pub mod routes;
pub mod service;

use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

/// Registers `/api/requests*`.
pub struct RequestsModule;

impl Module for RequestsModule {
    fn name(&self) -> &'static str {
        "requests"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
}
