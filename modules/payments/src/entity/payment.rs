//! `payments`: one invoice at the provider for a request's accepted offer.

use catalog::contract::{Money, PaymentStatus};
use kernel::stored::DecimalText;
use sea_orm::entity::prelude::*;

kernel::stored_enum! {
    /// [`PaymentStatus`] as stored in `payments.status`.
    pub enum Status for PaymentStatus {
        Pending = "pending",
        PartiallyPaid = "partially_paid",
        Completed = "completed",
        Refunded = "refunded",
    }
}

/// A row whose status or any amount cannot be read fails to load (a 500; the payout poller
/// and webhook log it and retry), never reads as a default or as zero.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub offer_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    /// Fiat amount.
    pub amount: DecimalText,
    pub currency: String,
    pub crypto: String,
    pub crypto_amount: DecimalText,
    pub pay_address: String,
    pub exchange_rate: DecimalText,
    /// Fiat received so far (`balance_fiat`).
    pub paid_amount: DecimalText,
    /// Crypto received so far (`balance_crypto`); what payouts are cut from.
    pub paid_crypto: DecimalText,
    pub status: Status,
    pub provider_payment_id: Option<String>,
    /// `PLATFORM_FEE_PERCENT` when the payment was made; a release payout keeps this share.
    pub platform_fee_percent: DecimalText,
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

impl Model {
    pub fn status(&self) -> PaymentStatus {
        self.status.into()
    }

    pub fn to_api(&self) -> catalog::contract::Payment {
        catalog::contract::Payment {
            id: self.id,
            request_id: self.request_id,
            offer_id: self.offer_id,
            buyer_id: self.buyer_id,
            seller_id: self.seller_id,
            amount: Money {
                amount: self.amount.0,
                currency: self.currency.clone(),
            },
            crypto: self.crypto.clone(),
            crypto_amount: self.crypto_amount.to_string(),
            pay_address: self.pay_address.clone(),
            exchange_rate: self.exchange_rate.to_string(),
            paid_amount: Money {
                amount: self.paid_amount.0,
                currency: self.currency.clone(),
            },
            status: self.status(),
            provider_payment_id: self.provider_payment_id.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    #[test]
    fn stored_words_are_the_contract_words() {
        for s in Status::iter() {
            assert_eq!(s.as_str(), PaymentStatus::from(s).as_str());
            assert_eq!(Status::from(PaymentStatus::from(s)), s);
        }
    }
}
