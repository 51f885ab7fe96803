//! Payouts: at most one LIVE payout (not `failed`) per payment and kind, instead of one payout
//! per payment and kind in any status. A failed payout stays as history while an admin's
//! retry starts a new one (with a new id, hence a new `external_id` at the provider); the
//! database still refuses a second live payout, so no race can pay twice.
//!
//! A partial unique index; PostgreSQL and SQLite share the syntax.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX IF NOT EXISTS uq_payouts_live_payment_kind \
             ON payouts (payment_id, kind) WHERE status <> 'failed'",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS uq_payouts_payment_kind")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Fails when retries left several payouts of one payment and kind: keep the history.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX IF NOT EXISTS uq_payouts_payment_kind \
             ON payouts (payment_id, kind)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS uq_payouts_live_payment_kind")
            .await?;
        Ok(())
    }
}
