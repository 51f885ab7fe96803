//! Tables of the offers module.

pub mod offer;
pub mod offer_message;
