//! `payments`: one invoice at the provider for a request's accepted offer.

use std::str::FromStr;

use catalog::contract::{Money, PaymentStatus};
use rust_decimal::Decimal;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub offer_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    /// Fiat amount, decimal string.
    pub amount: String,
    pub currency: String,
    pub crypto: String,
    pub crypto_amount: String,
    pub pay_address: String,
    pub exchange_rate: String,
    /// Fiat received so far (`balance_fiat`), decimal string.
    pub paid_amount: String,
    /// Crypto received so far (`balance_crypto`), decimal string; what payouts are cut from.
    pub paid_crypto: String,
    pub status: String,
    pub provider_payment_id: Option<String>,
    /// `PLATFORM_FEE_PERCENT` when the payment was made; a release payout keeps this share.
    pub platform_fee_percent: String,
    /// The request id while this payment is open (pending or partially paid), else NULL: a
    /// unique column, so a request has at most one open payment even under racing creates.
    #[sea_orm(unique)]
    pub open_key: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A decimal column; a corrupt value reads as zero (they are only ever written from `Decimal`).
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or(Decimal::ZERO)
}

impl Model {
    pub fn status(&self) -> PaymentStatus {
        PaymentStatus::parse(&self.status).unwrap_or(PaymentStatus::Pending)
    }

    pub fn to_api(&self) -> catalog::contract::Payment {
        catalog::contract::Payment {
            id: self.id,
            request_id: self.request_id,
            offer_id: self.offer_id,
            buyer_id: self.buyer_id,
            seller_id: self.seller_id,
            amount: Money {
                amount: dec(&self.amount),
                currency: self.currency.clone(),
            },
            crypto: self.crypto.clone(),
            crypto_amount: self.crypto_amount.clone(),
            pay_address: self.pay_address.clone(),
            exchange_rate: self.exchange_rate.clone(),
            paid_amount: Money {
                amount: dec(&self.paid_amount),
                currency: self.currency.clone(),
            },
            status: self.status(),
            provider_payment_id: self.provider_payment_id.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
