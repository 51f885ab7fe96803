pub mod payment;
pub mod payout;
pub mod webhook_application;
pub mod webhook_event;
