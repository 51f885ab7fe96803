//! Uploaded files (files module): one row per upload, private to its uploader until it is
//! attached to a chat message or to dispute evidence. Who may see an attached file is kept on
//! the row (`party_a`, `party_b`, `admins_see`), fixed when it is attached, so the files
//! module answers "may this user see it" without reading other modules' tables.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    UploaderId,
    Name,
    ContentType,
    Size,
    Sha256,
    Width,
    Height,
    StorageKey,
    ThumbnailKey,
    ThumbnailContentType,
    AttachedKind,
    AttachedTo,
    Position,
    PartyA,
    PartyB,
    AdminsSee,
    CreatedAt,
    AttachedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .if_not_exists()
                    .col(pk_uuid(Attachments::Id))
                    .col(uuid(Attachments::UploaderId))
                    .col(string_len(Attachments::Name, 255))
                    .col(string_len(Attachments::ContentType, 64))
                    .col(big_integer(Attachments::Size))
                    .col(string_len(Attachments::Sha256, 64))
                    .col(integer_null(Attachments::Width))
                    .col(integer_null(Attachments::Height))
                    .col(string_len(Attachments::StorageKey, 255))
                    .col(string_len_null(Attachments::ThumbnailKey, 255))
                    .col(string_len_null(Attachments::ThumbnailContentType, 64))
                    .col(string_len_null(Attachments::AttachedKind, 16))
                    .col(uuid_null(Attachments::AttachedTo))
                    .col(integer(Attachments::Position).default(0))
                    .col(uuid_null(Attachments::PartyA))
                    .col(uuid_null(Attachments::PartyB))
                    .col(boolean(Attachments::AdminsSee).default(false))
                    .col(timestamp_with_time_zone(Attachments::CreatedAt))
                    .col(timestamp_with_time_zone_null(Attachments::AttachedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_attachments_attached_to")
                    .table(Attachments::Table)
                    .col(Attachments::AttachedTo)
                    .col(Attachments::Position)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await
    }
}
