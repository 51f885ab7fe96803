//! Disputes and their evidence (disputes module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Disputes {
    Table,
    Id,
    RequestId,
    OpenedBy,
    BuyerId,
    SellerId,
    Reason,
    Status,
    Resolution,
    Note,
    OpenKey,
    CreatedAt,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum DisputeEvidence {
    Table,
    Id,
    DisputeId,
    AuthorId,
    Description,
    AttachmentUrl,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Disputes::Table)
                    .if_not_exists()
                    .col(pk_uuid(Disputes::Id))
                    .col(uuid(Disputes::RequestId))
                    .col(uuid(Disputes::OpenedBy))
                    .col(uuid(Disputes::BuyerId))
                    .col(uuid(Disputes::SellerId))
                    .col(text(Disputes::Reason))
                    .col(string_len(Disputes::Status, 16))
                    .col(string_len_null(Disputes::Resolution, 32))
                    .col(text_null(Disputes::Note))
                    // The request id while the dispute is open: one open dispute per request.
                    .col(uuid_null(Disputes::OpenKey).unique_key())
                    .col(timestamp_with_time_zone(Disputes::CreatedAt))
                    .col(timestamp_with_time_zone_null(Disputes::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_disputes_request", Disputes::RequestId),
            ("idx_disputes_buyer", Disputes::BuyerId),
            ("idx_disputes_seller", Disputes::SellerId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Disputes::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(DisputeEvidence::Table)
                    .if_not_exists()
                    .col(pk_uuid(DisputeEvidence::Id))
                    .col(uuid(DisputeEvidence::DisputeId))
                    .col(uuid(DisputeEvidence::AuthorId))
                    .col(text(DisputeEvidence::Description))
                    .col(string_len_null(DisputeEvidence::AttachmentUrl, 2048))
                    .col(timestamp_with_time_zone(DisputeEvidence::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dispute_evidence_dispute")
                    .table(DisputeEvidence::Table)
                    .col(DisputeEvidence::DisputeId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DisputeEvidence::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Disputes::Table).to_owned())
            .await
    }
}
