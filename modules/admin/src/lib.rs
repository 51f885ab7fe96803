//! The admin module: admin and system endpoints under `/api/admin/*` (every one of them is for
//! the `admin` role only; other roles get 403): dead letters, announcements and maintenance
//! notices to every connected client (`system:announcement`, `system:maintenance`), the
//! console's system views, and the console itself. It owns no domain tables: what it shows
//! lives in the kernel (e.g. the event bus's dead letters) or is reached through ports.
//!
//! # Public API
//! None: no module calls it, and it calls no module (only the kernel).
//!
//! Layout like every module: `routes.rs` (handlers with their OpenAPI description),
//! `service.rs` (the work, with the role checks), `dto.rs` (bodies and query parameters).
//! `system.rs` has the console's views of the running system (nodes, subscriber lag), and
//! `console.rs` serves the admin console page itself (`/admin`, assets built into the binary).

mod console;
mod dto;
mod routes;
mod service;
mod system;

use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

/// Registers the `/api/admin/*` system endpoints.
pub struct AdminModule;

impl Module for AdminModule {
    fn name(&self) -> &'static str {
        "admin"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router()
            .merge(system::router())
            .merge(console::router())
    }
}
