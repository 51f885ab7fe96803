//! `payouts`: money sent out of a payment, at most one per (payment, kind).

use catalog::contract::{PayoutKind, PayoutStatus};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "payouts")]
pub struct Model {
    /// Also the `external_id` at the provider, so a retry can never pay twice.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payment_id: Uuid,
    pub request_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    /// Crypto amount, decimal string.
    pub amount: String,
    pub crypto: String,
    pub destination: String,
    pub status: String,
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

pub fn kind_str(kind: PayoutKind) -> &'static str {
    match kind {
        PayoutKind::Release => "release",
        PayoutKind::Refund => "refund",
    }
}

pub fn status_str(status: PayoutStatus) -> &'static str {
    match status {
        PayoutStatus::Pending => "pending",
        PayoutStatus::Processing => "processing",
        PayoutStatus::Completed => "completed",
        PayoutStatus::Failed => "failed",
    }
}

impl Model {
    pub fn kind(&self) -> PayoutKind {
        if self.kind == "refund" {
            PayoutKind::Refund
        } else {
            PayoutKind::Release
        }
    }

    pub fn status(&self) -> PayoutStatus {
        match self.status.as_str() {
            "processing" => PayoutStatus::Processing,
            "completed" => PayoutStatus::Completed,
            "failed" => PayoutStatus::Failed,
            _ => PayoutStatus::Pending,
        }
    }

    pub fn to_api(&self) -> catalog::contract::Payout {
        catalog::contract::Payout {
            id: self.id,
            payment_id: self.payment_id,
            request_id: self.request_id,
            recipient_id: self.recipient_id,
            kind: self.kind(),
            amount: self.amount.clone(),
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
