//! The durable event log and the subscribers' cursors (kernel).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Name,
    Payload,
    Audience,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SubscriberCursors {
    Table,
    Name,
    LastEventId,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Events::Id))
                    .col(string_len(Events::Name, 64))
                    .col(json(Events::Payload))
                    .col(json(Events::Audience))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SubscriberCursors::Table)
                    .if_not_exists()
                    .col(string_len(SubscriberCursors::Name, 128).primary_key())
                    .col(big_integer(SubscriberCursors::LastEventId))
                    .col(timestamp_with_time_zone(SubscriberCursors::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SubscriberCursors::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}
