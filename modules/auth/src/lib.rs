//! The auth module: users, passwords, tokens. It owns the `users` table.
//!
//! # Public API
//! What other modules may call (nothing else; its tables are private to it):
//! - [`service::user`]: a user as the API shows it (role, `payoutAddress`, `rating`), or
//!   `None`; [`service::profiles`]: the name and rating of several users (listings).
//! - [`service::add_rating`]: counts a published review into its subject's rating, inside the
//!   publishing transaction (the reviews module).
//! - [`Directory`]: its answer to [`kernel::UserDirectory`] (does this user exist, with which
//!   role), which the kernel's authenticator and the socket gateway use.
//!
//! For the assembly (`apps/api`): [`AuthModule`], [`Hasher`] / [`HashingConfig`], and
//! [`service::ensure_admin`] (`create-admin`, `ADMIN_EMAIL`).

mod dto;
pub(crate) mod entity;
mod hashing;
mod limiter;
mod routes;
mod service;

pub use service::{add_rating, ensure_admin, profiles, user, users};

use std::sync::Arc;

use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

pub use hashing::{Hasher, HashingConfig, HashingStats};
pub use service::{Directory, Email};

/// Registers `/api/auth/*` and `/api/users/me`. Every password it hashes or checks goes
/// through `hasher`, the server's one bounded hashing queue.
pub struct AuthModule {
    hasher: Arc<Hasher>,
}

impl AuthModule {
    pub fn new(hasher: Arc<Hasher>) -> Self {
        Self { hasher }
    }
}

impl Module for AuthModule {
    fn name(&self) -> &'static str {
        "auth"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(Arc::clone(&self.hasher))
    }
}
