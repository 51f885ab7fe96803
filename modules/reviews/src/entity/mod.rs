//! The table of the reviews module; no other module reads it.

pub mod review;
