//! Reviews of completed requests (reviews module, issue 21): one per request and author,
//! hidden until published. Listed by subject, newest published first.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reviews {
    Table,
    Id,
    RequestId,
    AuthorId,
    SubjectId,
    Rating,
    Comment,
    CreatedAt,
    PublishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Reviews::Table)
                    .if_not_exists()
                    .col(pk_uuid(Reviews::Id))
                    .col(uuid(Reviews::RequestId))
                    .col(uuid(Reviews::AuthorId))
                    .col(uuid(Reviews::SubjectId))
                    .col(integer(Reviews::Rating))
                    .col(text_null(Reviews::Comment))
                    .col(timestamp_with_time_zone(Reviews::CreatedAt))
                    .col(timestamp_with_time_zone_null(Reviews::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_reviews_request_author")
                    .table(Reviews::Table)
                    .col(Reviews::RequestId)
                    .col(Reviews::AuthorId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_reviews_subject_published")
                    .table(Reviews::Table)
                    .col(Reviews::SubjectId)
                    .col(Reviews::PublishedAt)
                    .col(Reviews::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Reviews::Table).to_owned())
            .await
    }
}
