//! Every schema change, one file each, named `mYYYYMMDD_HHMMSS_<module>_<change>.rs` and
//! listed here in order. An applied migration is never edited: write a new one.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_kernel_event_log;
mod m20261122_000002_auth_users;
mod m20261122_000101_requests_purchase_requests;
mod m20261122_000102_offers_offers;
mod m20261122_000201_chat_tables;
mod m20261122_000202_notifications_table;
mod m20261122_000301_connections_user_presence;
mod m20261122_000401_payments_tables;
mod m20261122_000402_disputes_tables;
mod m20261130_000101_kernel_dead_letters;
mod m20261130_000401_payments_live_payout_index;
mod m20261130_000501_connections_nodes;
mod m20261206_190101_chat_reactions;
mod m20261206_190201_files_attachments;
mod m20261206_200101_kernel_secrets;
mod m20261206_200401_payments_callback_claims;
mod m20261206_200501_kernel_idempotency_keys;
mod m20261206_220001_kernel_timers;
mod m20261206_220101_mail_digests;
mod m20261206_230001_notifications_settings;
mod m20261206_230101_push_tables;
mod m20261207_010001_payments_retire_payout_wake;
mod m20261207_240001_requests_search;
mod m20261207_240101_requests_delivery;
mod m20261207_240102_auth_user_ratings;
mod m20261207_240103_reviews_table;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_kernel_event_log::Migration),
            Box::new(m20261122_000002_auth_users::Migration),
            Box::new(m20261122_000101_requests_purchase_requests::Migration),
            Box::new(m20261122_000102_offers_offers::Migration),
            Box::new(m20261122_000201_chat_tables::Migration),
            Box::new(m20261122_000202_notifications_table::Migration),
            Box::new(m20261122_000301_connections_user_presence::Migration),
            Box::new(m20261122_000401_payments_tables::Migration),
            Box::new(m20261122_000402_disputes_tables::Migration),
            Box::new(m20261130_000101_kernel_dead_letters::Migration),
            Box::new(m20261130_000401_payments_live_payout_index::Migration),
            Box::new(m20261130_000501_connections_nodes::Migration),
            Box::new(m20261206_190101_chat_reactions::Migration),
            Box::new(m20261206_190201_files_attachments::Migration),
            Box::new(m20261206_200101_kernel_secrets::Migration),
            Box::new(m20261206_200401_payments_callback_claims::Migration),
            Box::new(m20261206_200501_kernel_idempotency_keys::Migration),
            Box::new(m20261206_220001_kernel_timers::Migration),
            Box::new(m20261206_220101_mail_digests::Migration),
            Box::new(m20261206_230001_notifications_settings::Migration),
            Box::new(m20261206_230101_push_tables::Migration),
            Box::new(m20261207_010001_payments_retire_payout_wake::Migration),
            Box::new(m20261207_240001_requests_search::Migration),
            Box::new(m20261207_240101_requests_delivery::Migration),
            Box::new(m20261207_240102_auth_user_ratings::Migration),
            Box::new(m20261207_240103_reviews_table::Migration),
        ]
    }
}
