//! The `payments.payout-wake` subscriber is gone (a payout's transaction now wakes the payout
//! poller after its commit): its cursor and dead letters go too, so the admin console does not
//! show a subscriber that no longer runs, falling further behind forever.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const RETIRED: &str = "payments.payout-wake";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["dead_letters", "subscriber_cursors"] {
            let column = if table == "dead_letters" {
                "subscriber"
            } else {
                "name"
            };
            manager
                .exec_stmt(
                    Query::delete()
                        .from_table(Alias::new(table))
                        .and_where(Expr::col(Alias::new(column)).eq(RETIRED))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Nothing to restore: a subscriber's cursor is made again when it first runs.
        Ok(())
    }
}
