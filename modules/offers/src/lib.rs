//! The offers module: sellers' offers on purchase requests, their negotiation threads, and
//! accepting one. It owns the `offers` and `offer_messages` tables and answers the
//! [`kernel::ports::RequestAccess`] question through [`Access`].

pub mod dto;
pub mod entity;
pub mod routes;
pub mod service;

use std::sync::Arc;

use kernel::{AppState, Module, Subscriber};
use utoipa_axum::router::OpenApiRouter;

pub use service::Access;

/// Registers `/api/requests/{id}/offers` and `/api/offers/*`, and the subscriber that
/// rejects the pending offers of a request that was closed.
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
            move |event| {
                let db = db.clone();
                async move { service::close_pending_offers(&db, &event).await }
            },
        )]
    }
}
