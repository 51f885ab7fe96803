//! Email digests (mail module): one row per email (sent, pending, or not sent and why), and
//! one row per notification it lists. The notification id is the key of the second table, so
//! "each notification is in at most one email, ever" is a fact the database keeps.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EmailDigests {
    Table,
    Id,
    UserId,
    Status,
    Attempts,
    LastError,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum EmailDigestItems {
    Table,
    NotificationId,
    DigestId,
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
                    .table(EmailDigests::Table)
                    .if_not_exists()
                    .col(pk_uuid(EmailDigests::Id))
                    .col(uuid(EmailDigests::UserId))
                    .col(string_len(EmailDigests::Status, 16))
                    .col(integer(EmailDigests::Attempts).default(0))
                    .col(text_null(EmailDigests::LastError))
                    .col(timestamp_with_time_zone(EmailDigests::CreatedAt))
                    .col(timestamp_with_time_zone_null(EmailDigests::SentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailDigests::Table, EmailDigests::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_email_digests_user_status")
                    .table(EmailDigests::Table)
                    .col(EmailDigests::UserId)
                    .col(EmailDigests::Status)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailDigestItems::Table)
                    .if_not_exists()
                    .col(pk_uuid(EmailDigestItems::NotificationId))
                    .col(uuid(EmailDigestItems::DigestId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailDigestItems::Table, EmailDigestItems::DigestId)
                            .to(EmailDigests::Table, EmailDigests::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_email_digest_items_digest")
                    .table(EmailDigestItems::Table)
                    .col(EmailDigestItems::DigestId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EmailDigestItems::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EmailDigests::Table).to_owned())
            .await
    }
}
