//! Tables of the requests module.

pub mod request;
pub mod request_seller;
