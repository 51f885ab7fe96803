//! Dead letters of the event bus (kernel): an event a subscriber still failed on after its
//! retries, kept and retried with growing pauses until it succeeds.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    Subscriber,
    EventId,
    EventName,
    Attempts,
    LastError,
    FirstFailedAt,
    LastFailedAt,
    NextRetryAt,
    ResolvedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .if_not_exists()
                    .col(pk_uuid(DeadLetters::Id))
                    .col(string_len(DeadLetters::Subscriber, 128))
                    .col(big_integer(DeadLetters::EventId))
                    .col(string_len(DeadLetters::EventName, 64))
                    .col(integer(DeadLetters::Attempts))
                    .col(text(DeadLetters::LastError))
                    .col(timestamp_with_time_zone(DeadLetters::FirstFailedAt))
                    .col(timestamp_with_time_zone(DeadLetters::LastFailedAt))
                    .col(timestamp_with_time_zone_null(DeadLetters::NextRetryAt))
                    .col(timestamp_with_time_zone_null(DeadLetters::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_dead_letters_subscriber_event")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::Subscriber)
                    .col(DeadLetters::EventId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_dead_letters_due")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::Subscriber)
                    .col(DeadLetters::NextRetryAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeadLetters::Table).to_owned())
            .await
    }
}
