//! The tables of the push module (created by `migrations`).

pub mod delivery;
pub mod subscription;
pub mod vapid_key;
