//! Durable timers of the kernel (`kernel::timers`): one row per job that must run at a time,
//! claimed by one node at a time under a lease, retried with growing pauses, kept as failed
//! after its last attempt.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Timers {
    Table,
    Id,
    Kind,
    Key,
    Payload,
    RunAt,
    Attempts,
    LastError,
    LockedUntil,
    LeaseId,
    Generation,
    FailedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Timers::Table)
                    .if_not_exists()
                    .col(pk_uuid(Timers::Id))
                    .col(string_len(Timers::Kind, 64))
                    .col(string_len(Timers::Key, 255))
                    .col(json(Timers::Payload))
                    .col(timestamp_with_time_zone(Timers::RunAt))
                    .col(integer(Timers::Attempts).default(0))
                    .col(text_null(Timers::LastError))
                    .col(timestamp_with_time_zone_null(Timers::LockedUntil))
                    .col(uuid_null(Timers::LeaseId))
                    .col(big_integer(Timers::Generation).default(0))
                    .col(timestamp_with_time_zone_null(Timers::FailedAt))
                    .col(timestamp_with_time_zone(Timers::CreatedAt))
                    .col(timestamp_with_time_zone(Timers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_timers_kind_key")
                    .table(Timers::Table)
                    .col(Timers::Kind)
                    .col(Timers::Key)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_timers_run_at")
                    .table(Timers::Table)
                    .col(Timers::RunAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Timers::Table).to_owned())
            .await
    }
}
