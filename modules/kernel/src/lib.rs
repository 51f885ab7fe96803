//! The shared kernel every module depends on, and nothing more: the contract's shapes, the
//! event catalog, the durable event bus, the error type, the auth extractor, pagination,
//! input checks and rate limits.

pub mod auth;
pub mod bus;
pub mod contract;
pub mod error;
pub mod events;
pub mod extract;
pub mod limits;
pub mod monitor;
pub mod pagination;
pub mod ports;
pub mod schema;
pub mod state;
pub mod stored;
pub mod validate;

pub use auth::{AuthUser, Authenticator, JwtKeys, Role, UserDirectory};
pub use bus::{EventBus, StoredEvent, Subscriber, Tx, subscriber};
pub use error::{ApiError, FieldError, Result};
pub use limits::{Limits, Quota};
pub use state::{AppState, Module, Runtime};
