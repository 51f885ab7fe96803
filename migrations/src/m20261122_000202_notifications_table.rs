//! Notifications (notifications module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    RecipientId,
    Kind,
    Title,
    Body,
    Data,
    ReadAt,
    CreatedAt,
    SourceEventId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(pk_uuid(Notifications::Id))
                    .col(uuid(Notifications::RecipientId))
                    .col(string_len(Notifications::Kind, 64))
                    .col(string_len(Notifications::Title, 200))
                    .col(text(Notifications::Body))
                    .col(json(Notifications::Data))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(big_integer(Notifications::SourceEventId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_notifications_source_event_recipient")
                    .table(Notifications::Table)
                    .col(Notifications::SourceEventId)
                    .col(Notifications::RecipientId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_notifications_recipient")
                    .table(Notifications::Table)
                    .col(Notifications::RecipientId)
                    .col(Notifications::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await
    }
}
