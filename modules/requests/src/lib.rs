//! The requests module: purchase requests and their state machine. It owns the
//! `purchase_requests` and `purchase_request_sellers` tables. Other modules change a
//! request's status only through [`service::transition`].

pub mod dto;
pub mod entity;
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
