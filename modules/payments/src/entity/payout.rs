//! `payouts`: money sent out of a payment, at most one per (payment, kind).

use catalog::contract::{PayoutKind, PayoutStatus};
use kernel::stored::DecimalText;
use sea_orm::entity::prelude::*;

kernel::stored_enum! {
    /// [`PayoutKind`] as stored in `payouts.kind`.
    pub enum Kind for PayoutKind {
        Release = "release",
        Refund = "refund",
    }
}

kernel::stored_enum! {
    /// [`PayoutStatus`] as stored in `payouts.status`.
    pub enum Status for PayoutStatus {
        Pending = "pending",
        Processing = "processing",
        Completed = "completed",
        Failed = "failed",
    }
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "payouts")]
pub struct Model {
    /// Also the `external_id` at the provider, so a retry can never pay twice.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payment_id: Uuid,
    pub request_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: Kind,
    /// Crypto amount.
    pub amount: DecimalText,
    pub crypto: String,
    pub destination: String,
    pub status: Status,
    pub provider_task_id: Option<String>,
    pub tx_hash: Option<String>,
    pub failure_reason: Option<String>,
    /// How many times a submission was started. Above zero the provider may already have
    /// it, so it is looked up by `external_id` before any new submission.
    pub submit_attempts: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The stored word of a payout kind.
pub fn kind_str(kind: PayoutKind) -> &'static str {
    Kind::from(kind).as_str()
}

/// The stored word of a payout status.
pub fn status_str(status: PayoutStatus) -> &'static str {
    Status::from(status).as_str()
}

impl Model {
    pub fn kind(&self) -> PayoutKind {
        self.kind.into()
    }

    pub fn status(&self) -> PayoutStatus {
        self.status.into()
    }

    pub fn to_api(&self) -> catalog::contract::Payout {
        catalog::contract::Payout {
            id: self.id,
            payment_id: self.payment_id,
            request_id: self.request_id,
            recipient_id: self.recipient_id,
            kind: self.kind(),
            amount: self.amount.to_string(),
            crypto: self.crypto.clone(),
            destination: self.destination.clone(),
            status: self.status(),
            provider_task_id: self.provider_task_id.clone(),
            tx_hash: self.tx_hash.clone(),
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
    fn stored_words_are_the_wire_words() {
        for k in Kind::iter() {
            let wire = serde_json::to_value(PayoutKind::from(k)).unwrap();
            assert_eq!(wire, k.as_str());
            assert_eq!(Kind::from(PayoutKind::from(k)), k);
        }
        for s in Status::iter() {
            let wire = serde_json::to_value(PayoutStatus::from(s)).unwrap();
            assert_eq!(wire, s.as_str());
            assert_eq!(Status::from(PayoutStatus::from(s)), s);
        }
    }
}
