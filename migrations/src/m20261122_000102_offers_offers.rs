//! Offers and their negotiation messages (offers module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Offers {
    Table,
    Id,
    RequestId,
    SellerId,
    PriceAmount,
    PriceCurrency,
    Message,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OfferMessages {
    Table,
    Id,
    OfferId,
    AuthorId,
    Message,
    PriceAmount,
    PriceCurrency,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PurchaseRequests {
    Table,
    Id,
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
                    .table(Offers::Table)
                    .if_not_exists()
                    .col(pk_uuid(Offers::Id))
                    .col(uuid(Offers::RequestId))
                    .col(uuid(Offers::SellerId))
                    .col(string_len(Offers::PriceAmount, 40))
                    .col(string_len(Offers::PriceCurrency, 3))
                    .col(text(Offers::Message))
                    .col(string_len(Offers::Status, 16))
                    .col(timestamp_with_time_zone(Offers::CreatedAt))
                    .col(timestamp_with_time_zone(Offers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_offers_request")
                            .from(Offers::Table, Offers::RequestId)
                            .to(PurchaseRequests::Table, PurchaseRequests::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_offers_seller")
                            .from(Offers::Table, Offers::SellerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One live offer per seller and request: a partial unique index over pending offers
        // (SQLite and PostgreSQL both support them), so a duplicate fails in the database.
        manager
            .create_index(
                Index::create()
                    .name("ux_offers_pending_per_seller")
                    .table(Offers::Table)
                    .col(Offers::RequestId)
                    .col(Offers::SellerId)
                    .unique()
                    .and_where(Expr::col(Offers::Status).eq("pending"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_offers_request_id")
                    .table(Offers::Table)
                    .col(Offers::RequestId)
                    .col(Offers::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OfferMessages::Table)
                    .if_not_exists()
                    .col(pk_uuid(OfferMessages::Id))
                    .col(uuid(OfferMessages::OfferId))
                    .col(uuid(OfferMessages::AuthorId))
                    .col(text(OfferMessages::Message))
                    .col(string_len_null(OfferMessages::PriceAmount, 40))
                    .col(string_len_null(OfferMessages::PriceCurrency, 3))
                    .col(timestamp_with_time_zone(OfferMessages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_offer_messages_offer")
                            .from(OfferMessages::Table, OfferMessages::OfferId)
                            .to(Offers::Table, Offers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_offer_messages_author")
                            .from(OfferMessages::Table, OfferMessages::AuthorId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_offer_messages_offer_id")
                    .table(OfferMessages::Table)
                    .col(OfferMessages::OfferId)
                    .col(OfferMessages::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OfferMessages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Offers::Table).to_owned())
            .await
    }
}
