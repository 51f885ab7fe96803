//! Provider callbacks that claimed more than they paid (a `PAID` short of the invoice, or in
//! another currency or crypto): marked on the stored callback so admins find them under
//! money that needs attention (`GET /api/admin/attention`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    ClaimMismatch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEvents::Table)
                    .add_column(string_null(WebhookEvents::ClaimMismatch))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEvents::Table)
                    .drop_column(WebhookEvents::ClaimMismatch)
                    .to_owned(),
            )
            .await
    }
}
