//! The auth module: users, passwords, tokens. It owns the `users` table.

pub mod dto;
pub mod entity;
pub mod limiter;
pub mod routes;
pub mod service;

use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

pub use service::{Directory, Email};

/// Registers `/api/auth/*` and `/api/users/me`.
pub struct AuthModule;

impl Module for AuthModule {
    fn name(&self) -> &'static str {
        "auth"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
    }
}
