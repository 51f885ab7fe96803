//! The shared kernel every module depends on, and nothing more: the durable event bus, the
//! error type, the extractors, pagination, the `Module` trait, and the infrastructure they
//! need (JWT auth, input checks, rate limits, node monitoring, ports). The contract's shapes,
//! the event catalog and the room rules are data and live in the `catalog` crate.

pub mod auth;
pub mod bus;
pub mod error;
pub mod extract;
pub mod limits;
pub mod monitor;
pub mod pagination;
pub mod ports;
pub mod schema;
pub mod secrets;
pub mod state;
pub mod stored;
pub mod timers;
pub mod validate;

pub use auth::{AuthUser, Authenticator, JwtKeys, UserDirectory};
pub use bus::{EventBus, StoredEvent, Subscriber, Tx, subscriber};
pub use error::{ApiError, Result};
pub use limits::{Limits, Quota};
pub use state::{AppState, Module, Runtime};
