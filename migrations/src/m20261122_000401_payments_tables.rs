//! Payments, payouts and received provider callbacks (payments module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    RequestId,
    OfferId,
    BuyerId,
    SellerId,
    Amount,
    Currency,
    Crypto,
    CryptoAmount,
    PayAddress,
    ExchangeRate,
    PaidAmount,
    PaidCrypto,
    Status,
    ProviderPaymentId,
    PlatformFeePercent,
    OpenKey,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Payouts {
    Table,
    Id,
    PaymentId,
    RequestId,
    RecipientId,
    Kind,
    Amount,
    Crypto,
    Destination,
    Status,
    ProviderTaskId,
    TxHash,
    FailureReason,
    SubmitAttempts,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    Id,
    Kind,
    ExternalId,
    ProviderStatus,
    Txid,
    Outcome,
    Auth,
    Detail,
    Body,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum WebhookApplications {
    Table,
    Key,
    EventId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .if_not_exists()
                    .col(pk_uuid(Payments::Id))
                    .col(uuid(Payments::RequestId))
                    .col(uuid(Payments::OfferId))
                    .col(uuid(Payments::BuyerId))
                    .col(uuid(Payments::SellerId))
                    .col(string_len(Payments::Amount, 40))
                    .col(string_len(Payments::Currency, 8))
                    .col(string_len(Payments::Crypto, 32))
                    .col(string_len(Payments::CryptoAmount, 64))
                    .col(string_len(Payments::PayAddress, 255))
                    .col(string_len(Payments::ExchangeRate, 64))
                    .col(string_len(Payments::PaidAmount, 40))
                    .col(string_len(Payments::PaidCrypto, 64))
                    .col(string_len(Payments::Status, 16))
                    .col(string_len_null(Payments::ProviderPaymentId, 128))
                    .col(string_len(Payments::PlatformFeePercent, 16))
                    // The request id while the payment is open: at most one open payment per request.
                    .col(uuid_null(Payments::OpenKey).unique_key())
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payments_request")
                    .table(Payments::Table)
                    .col(Payments::RequestId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Payouts::Table)
                    .if_not_exists()
                    .col(pk_uuid(Payouts::Id))
                    .col(uuid(Payouts::PaymentId))
                    .col(uuid(Payouts::RequestId))
                    .col(uuid(Payouts::RecipientId))
                    .col(string_len(Payouts::Kind, 16))
                    .col(string_len(Payouts::Amount, 64))
                    .col(string_len(Payouts::Crypto, 32))
                    .col(string_len(Payouts::Destination, 255))
                    .col(string_len(Payouts::Status, 16))
                    .col(string_len_null(Payouts::ProviderTaskId, 128))
                    .col(string_len_null(Payouts::TxHash, 255))
                    .col(text_null(Payouts::FailureReason))
                    .col(integer(Payouts::SubmitAttempts).default(0))
                    .col(timestamp_with_time_zone(Payouts::CreatedAt))
                    .col(timestamp_with_time_zone(Payouts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_payouts_payment_kind")
                    .table(Payouts::Table)
                    .col(Payouts::PaymentId)
                    .col(Payouts::Kind)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payouts_status")
                    .table(Payouts::Table)
                    .col(Payouts::Status)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookEvents::Table)
                    .if_not_exists()
                    .col(pk_uuid(WebhookEvents::Id))
                    .col(string_len(WebhookEvents::Kind, 16))
                    .col(string_len_null(WebhookEvents::ExternalId, 255))
                    .col(string_len_null(WebhookEvents::ProviderStatus, 64))
                    .col(string_len_null(WebhookEvents::Txid, 255))
                    .col(string_len(WebhookEvents::Outcome, 16))
                    .col(string_len(WebhookEvents::Auth, 32))
                    .col(text_null(WebhookEvents::Detail))
                    .col(text(WebhookEvents::Body))
                    .col(timestamp_with_time_zone(WebhookEvents::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_events_outcome")
                    .table(WebhookEvents::Table)
                    .col(WebhookEvents::Outcome)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookApplications::Table)
                    .if_not_exists()
                    .col(string_len(WebhookApplications::Key, 512).primary_key())
                    .col(uuid(WebhookApplications::EventId))
                    .col(timestamp_with_time_zone(WebhookApplications::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookApplications::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Payouts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await
    }
}
