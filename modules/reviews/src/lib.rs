//! The reviews module: after a request is `completed`, its buyer and its accepted seller may
//! each review the other once, double-blind (Airbnb's and Sharetribe's rule, so reviews are
//! honest). It owns the `reviews` table.
//!
//! How a review goes public:
//! 1. `POST /api/requests/{id}/reviews` stores it hidden: only its author sees it
//!    (`GET /api/requests/{id}/reviews`). The first review of a request schedules, in the same
//!    transaction, the request's deadline timer ([`service::DEADLINE`], `kernel::timers`) at the
//!    completion time plus `REVIEW_WINDOW_SECS`; until a review exists nothing needs publishing,
//!    so requests nobody reviews cost no timer.
//! 2. When the other party's review is written before the deadline, both are published in
//!    that transaction (`publishedAt`), and the timer is cancelled.
//! 3. Otherwise the timer publishes what was written when the window closes, on whichever node
//!    claims it; from then on reviews of that request are refused (`review_window_closed`).
//!
//! Publishing is one transaction per request that holds the request's row
//! (`requests::hold_parties`), so the two parties' reviews, or a review and the
//! deadline, take turns: every review is published exactly once, with its
//! `review:published` event (to `user-{subjectId}` and `user-{authorId}`; the notifications
//! module tells the reviewed user) and its count in the subject's rating
//! (`auth::add_rating`), which `User.rating`, offer listings and
//! `GET /api/users/{id}/reviews` show.
//!
//! # Public API
//! [`ReviewsModule`] and [`ReviewsConfig`] (one line in `apps/api`). No module calls it; it
//! calls `requests` (the parties and the completion time) and `auth` (users, ratings).

mod dto;
pub(crate) mod entity;
mod routes;
mod service;

use std::sync::Arc;
use std::time::Duration;

use kernel::timers::TimerHandler;
use kernel::{AppState, Module};
use utoipa_axum::router::OpenApiRouter;

/// What the reviews module needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ReviewsConfig {
    /// `REVIEW_WINDOW_SECS`: how long after completion reviews are taken; hidden reviews are
    /// published when it closes.
    pub window: Duration,
}

impl Default for ReviewsConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(1_209_600),
        }
    }
}

/// Registers `/api/requests/{id}/reviews`, `/api/users/{id}/reviews` and the deadline timer.
pub struct ReviewsModule {
    config: ReviewsConfig,
}

impl ReviewsModule {
    pub fn new(config: ReviewsConfig) -> Self {
        Self { config }
    }
}

impl Module for ReviewsModule {
    fn name(&self) -> &'static str {
        "reviews"
    }
    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.config)
    }
    fn timers(&self, state: &AppState) -> Vec<Arc<dyn TimerHandler>> {
        vec![service::Deadline::handler(state.bus.clone(), self.config)]
    }
}
