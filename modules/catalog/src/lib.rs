//! The contract as data, shared by every crate and depending on none of ours:
//!
//! - [`contract`]: the public shapes REST answers and socket events carry (`User`, `Money`,
//!   `PurchaseRequest`, ..., `Role`, `Page`, `FieldError`);
//! - [`events`]: the event catalog, one declaration per event (wire name, durability, payload
//!   type, rooms), from which `EventName`, the AsyncAPI document, replay visibility, the
//!   routing of emits and the TypeScript types all follow;
//! - [`rooms`]: the room rules and room names those declarations use.

pub mod contract;
pub mod events;
pub mod rooms;

pub use contract::{FieldError, Role};
