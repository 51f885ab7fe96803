//! Delivery and automatic completion of purchase requests (issue 21): the accepted seller is
//! kept on the request (who may deliver, who is reviewed), with the delivery time, the time
//! it completes by itself, and the completion time (the review window starts then). Existing
//! rows get their accepted seller from their accepted offer, and completed ones their last
//! change as their completion time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PurchaseRequests {
    Table,
    AcceptedSellerId,
    DeliveredAt,
    AutoCompleteAt,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            uuid_null(PurchaseRequests::AcceptedSellerId),
            timestamp_with_time_zone_null(PurchaseRequests::DeliveredAt),
            timestamp_with_time_zone_null(PurchaseRequests::AutoCompleteAt),
            timestamp_with_time_zone_null(PurchaseRequests::CompletedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PurchaseRequests::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE purchase_requests SET accepted_seller_id = \
               (SELECT offers.seller_id FROM offers WHERE offers.id = purchase_requests.accepted_offer_id) \
             WHERE accepted_offer_id IS NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE purchase_requests SET completed_at = updated_at WHERE status = 'completed'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            PurchaseRequests::AcceptedSellerId,
            PurchaseRequests::DeliveredAt,
            PurchaseRequests::AutoCompleteAt,
            PurchaseRequests::CompletedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PurchaseRequests::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
