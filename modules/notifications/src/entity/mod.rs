//! The table of the notifications module.

pub mod notification;
