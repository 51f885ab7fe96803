//! Per-user notification settings (notifications module): whether a user is mailed and
//! pushed, which kinds they muted, and whether their address refused mail for good. A user
//! without a row has the defaults (email and push on, nothing muted, deliverable).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NotificationSettings {
    Table,
    UserId,
    Email,
    Push,
    MutedKinds,
    EmailUndeliverable,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NotificationSettings::Table)
                    .if_not_exists()
                    .col(pk_uuid(NotificationSettings::UserId))
                    .col(boolean(NotificationSettings::Email).default(true))
                    .col(boolean(NotificationSettings::Push).default(true))
                    .col(json(NotificationSettings::MutedKinds).default("[]"))
                    .col(boolean(NotificationSettings::EmailUndeliverable).default(false))
                    .col(timestamp_with_time_zone(NotificationSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_settings_user")
                            .from(NotificationSettings::Table, NotificationSettings::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(NotificationSettings::Table).to_owned())
            .await
    }
}
