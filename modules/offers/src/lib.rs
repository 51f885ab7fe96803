//! The offers module: sellers' offers on purchase requests, their negotiation threads, and
//! accepting one. It owns the `offers` and `offer_messages` tables and answers the
//! [`kernel::ports::RequestAccess`] question through [`Access`].
//!
//! # Public API
//! What other modules may call (nothing else; its tables are private to it):
//! - [`service::accepted_offer`]: a request's accepted offer (its price and seller), as the
//!   contract's `SellerOffer`.
//! - [`Access`]: its answer to [`kernel::ports::RequestAccess`] (the socket gateway's
//!   `join-request-room` and replay).
//!
//! It calls `requests` (visibility, [`requests::transition`] on accept), `chat` (the
//! offer opens the chat, in the offer's transaction) and `auth` (the seller's payout address).

mod dto;
pub(crate) mod entity;
mod routes;
mod service;

pub use service::accepted_offer;

use std::sync::Arc;

use kernel::{AppState, Module, Subscriber};
use utoipa_axum::router::OpenApiRouter;

pub use service::Access;

/// Registers `/api/requests/{id}/offers` and `/api/offers/*`, and the subscriber that
/// rejects the pending offers of a request that was cancelled.
pub struct OffersModule;

impl Module for OffersModule {
    fn name(&self) -> &'static str {
        "offers"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
    fn subscribers(&self, state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        let db = state.db.clone();
        vec![kernel::subscriber(
            "offers.close-pending-offers",
            &[catalog::events::EventName::RequestStatusUpdated],
            move |event| {
                let db = db.clone();
                async move { service::close_pending_offers(&db, &event).await }
            },
        )]
    }
}
