//! The black-box suite: one test binary (linked once), a module per area. Each test starts
//! the real app on a random port with a fresh database (SQLite, or a throwaway PostgreSQL
//! database under `TEST_DATABASE_URL`) and talks to it over real HTTP and Socket.IO.
//!
//! Run one area with `cargo test -p marketplace-tests --test suite -- mail::`, one test by
//! its name, or everything with `cargo xtask test`.

mod access_rules;
mod admin_console;
mod auth;
mod bus;
mod bus_live;
mod chat;
mod cluster;
mod dead_letters;
mod delivery;
mod disputes;
mod disputes_live;
mod engine_io;
mod files;
mod frontend_types;
mod hashing;
mod idempotency;
mod js_client;
mod limits;
mod mail;
mod marketplace_live;
mod metrics;
mod notification_settings;
mod notifications;
mod ops;
mod payments;
mod payments_attention;
mod push;
mod requests_offers;
mod reviews;
mod search;
mod sockets;
mod stored_values;
mod text_rule;
mod timers;
