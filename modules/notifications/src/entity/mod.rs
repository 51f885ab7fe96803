//! The tables of the notifications module.

pub mod notification;
pub mod notification_setting;
