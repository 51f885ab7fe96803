//! Purchase requests and the sellers who made offers on them (requests module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PurchaseRequests {
    Table,
    Id,
    BuyerId,
    Title,
    Description,
    Category,
    BudgetAmount,
    BudgetCurrency,
    Status,
    AcceptedOfferId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PurchaseRequestSellers {
    Table,
    RequestId,
    SellerId,
    CreatedAt,
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
                    .table(PurchaseRequests::Table)
                    .if_not_exists()
                    .col(pk_uuid(PurchaseRequests::Id))
                    .col(uuid(PurchaseRequests::BuyerId))
                    .col(string_len(PurchaseRequests::Title, 200))
                    .col(text(PurchaseRequests::Description))
                    .col(string_len(PurchaseRequests::Category, 100))
                    .col(string_len_null(PurchaseRequests::BudgetAmount, 40))
                    .col(string_len_null(PurchaseRequests::BudgetCurrency, 3))
                    .col(string_len(PurchaseRequests::Status, 16))
                    .col(uuid_null(PurchaseRequests::AcceptedOfferId))
                    .col(timestamp_with_time_zone(PurchaseRequests::CreatedAt))
                    .col(timestamp_with_time_zone(PurchaseRequests::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_purchase_requests_buyer")
                            .from(PurchaseRequests::Table, PurchaseRequests::BuyerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_purchase_requests_status_id",
                [PurchaseRequests::Status, PurchaseRequests::Id],
            ),
            (
                "idx_purchase_requests_buyer_id",
                [PurchaseRequests::BuyerId, PurchaseRequests::Id],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(PurchaseRequests::Table)
                .if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(PurchaseRequestSellers::Table)
                    .if_not_exists()
                    .col(uuid(PurchaseRequestSellers::RequestId))
                    .col(uuid(PurchaseRequestSellers::SellerId))
                    .col(timestamp_with_time_zone(PurchaseRequestSellers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PurchaseRequestSellers::RequestId)
                            .col(PurchaseRequestSellers::SellerId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_purchase_request_sellers_request")
                            .from(
                                PurchaseRequestSellers::Table,
                                PurchaseRequestSellers::RequestId,
                            )
                            .to(PurchaseRequests::Table, PurchaseRequests::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_purchase_request_sellers_seller")
                            .from(
                                PurchaseRequestSellers::Table,
                                PurchaseRequestSellers::SellerId,
                            )
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_purchase_request_sellers_seller")
                    .table(PurchaseRequestSellers::Table)
                    .col(PurchaseRequestSellers::SellerId)
                    .col(PurchaseRequestSellers::RequestId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(PurchaseRequestSellers::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PurchaseRequests::Table).to_owned())
            .await
    }
}
