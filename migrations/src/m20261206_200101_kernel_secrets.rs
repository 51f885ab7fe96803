//! Secrets the server makes for itself and keeps (the JWT signing key when `JWT_SECRET` is
//! unset): made once by whichever node starts first, read by every node after.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum KeptSecrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeptSecrets::Table)
                    .if_not_exists()
                    .col(string(KeptSecrets::Name).primary_key())
                    .col(text(KeptSecrets::Value))
                    .col(timestamp_with_time_zone(KeptSecrets::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeptSecrets::Table).to_owned())
            .await
    }
}
