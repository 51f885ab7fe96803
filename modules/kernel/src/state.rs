//! What every handler can reach, and the shape of a module.

use std::sync::Arc;

use axum::extract::FromRef;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Authenticator;
use crate::bus::{EventBus, Subscriber};
use crate::limits::Limits;

/// The application state shared by every module's router. Module-specific services are
/// added by each module to its own router (as an `Extension`), not here.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub bus: EventBus,
    pub auth: Authenticator,
    /// Rate limits (chat messages, typing, logins), shared by REST, sockets and auth: in
    /// memory on one node, in Redis across a cluster.
    pub limits: Limits,
}

/// What a running module may use for background work.
#[derive(Clone)]
pub struct Runtime {
    /// Fires on SIGINT/SIGTERM; background loops stop when it does.
    pub cancel: CancellationToken,
    /// Tracks background tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Fires later than `cancel`: once in-flight requests are finished and the bus has made
    /// its last delivery pass (or the drain timeout ran out). Client connections (sockets)
    /// are closed then, not on `cancel`, so they still receive the events of every
    /// acknowledged change.
    pub drained: CancellationToken,
    pub state: AppState,
}

/// A domain module: its routes, what it subscribes to on the bus, and its background work.
/// Registering one is a single line in `apps/api`.
pub trait Module: Send + Sync + 'static {
    /// A short stable name (`auth`, `requests`, ...).
    fn name(&self) -> &'static str;
    /// The module's REST routes with their OpenAPI description.
    fn router(&self) -> OpenApiRouter<AppState>;
    /// Subscribers this module adds to the bus. Each name must be unique and stable.
    fn subscribers(&self, _state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        Vec::new()
    }
    /// Handlers of this module's durable timers (see [`crate::timers`]), one per kind.
    fn timers(&self, _state: &AppState) -> Vec<Arc<dyn crate::timers::TimerHandler>> {
        Vec::new()
    }
    /// Starts background tasks (pollers). They must stop when `rt.cancel` fires.
    fn start(&self, _rt: &Runtime) {}
    /// Wraps the whole HTTP router once it is assembled (the Socket.IO layer of
    /// `connections` uses this). Most modules leave it alone.
    fn wrap(&self, router: axum::Router) -> axum::Router {
        router
    }
}
