//! Web push (push module): the server's VAPID key when none is configured, the users' push
//! subscriptions, and one delivery row per (notification, subscription) so that a push is
//! sent once across retries, restarts and nodes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PushVapidKeys {
    Table,
    Id,
    PrivateKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Id,
    UserId,
    Endpoint,
    P256dh,
    Auth,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PushDeliveries {
    Table,
    Id,
    NotificationId,
    SubscriptionId,
    State,
    Payload,
    Urgency,
    Topic,
    Attempts,
    LastError,
    NextAttemptAt,
    CreatedAt,
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
                    .table(PushVapidKeys::Table)
                    .if_not_exists()
                    .col(integer(PushVapidKeys::Id).primary_key())
                    .col(string_len(PushVapidKeys::PrivateKey, 128))
                    .col(timestamp_with_time_zone(PushVapidKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushSubscriptions::Table)
                    .if_not_exists()
                    .col(pk_uuid(PushSubscriptions::Id))
                    .col(uuid(PushSubscriptions::UserId))
                    .col(string_len_uniq(PushSubscriptions::Endpoint, 2048))
                    .col(string_len(PushSubscriptions::P256dh, 128))
                    .col(string_len(PushSubscriptions::Auth, 64))
                    .col(timestamp_with_time_zone(PushSubscriptions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_push_subscriptions_user")
                            .from(PushSubscriptions::Table, PushSubscriptions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_push_subscriptions_user")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::UserId)
                    .col(PushSubscriptions::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushDeliveries::Table)
                    .if_not_exists()
                    .col(pk_uuid(PushDeliveries::Id))
                    .col(uuid(PushDeliveries::NotificationId))
                    .col(uuid(PushDeliveries::SubscriptionId))
                    .col(string_len(PushDeliveries::State, 16))
                    .col(text(PushDeliveries::Payload))
                    .col(string_len(PushDeliveries::Urgency, 16))
                    .col(string_len_null(PushDeliveries::Topic, 32))
                    .col(integer(PushDeliveries::Attempts))
                    .col(text_null(PushDeliveries::LastError))
                    .col(timestamp_with_time_zone_null(PushDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone(PushDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(PushDeliveries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_push_deliveries_subscription")
                            .from(PushDeliveries::Table, PushDeliveries::SubscriptionId)
                            .to(PushSubscriptions::Table, PushSubscriptions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_push_deliveries_notification_subscription")
                    .table(PushDeliveries::Table)
                    .col(PushDeliveries::NotificationId)
                    .col(PushDeliveries::SubscriptionId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_push_deliveries_subscription")
                    .table(PushDeliveries::Table)
                    .col(PushDeliveries::SubscriptionId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // For the hourly pruning of settled deliveries.
        manager
            .create_index(
                Index::create()
                    .name("ix_push_deliveries_updated")
                    .table(PushDeliveries::Table)
                    .col(PushDeliveries::UpdatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PushDeliveries::Table.into_iden(),
            PushSubscriptions::Table.into_iden(),
            PushVapidKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
