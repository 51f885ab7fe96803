//! `disputes`: a disagreement over a paid request, settled by an admin.

use catalog::contract::{DisputeStatus, Resolution as ContractResolution};
use sea_orm::entity::prelude::*;

kernel::stored_enum! {
    /// [`DisputeStatus`] as stored in `disputes.status`.
    pub enum Status for DisputeStatus {
        Open = "open",
        Resolved = "resolved",
    }
}

kernel::stored_enum! {
    /// [`catalog::contract::Resolution`] as stored in `disputes.resolution`.
    pub enum Resolution for ContractResolution {
        ReleaseToSeller = "release_to_seller",
        RefundBuyer = "refund_buyer",
    }
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "disputes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub opened_by: Uuid,
    /// The request's buyer and accepted seller, kept for visibility and event routing.
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub reason: String,
    pub status: Status,
    pub resolution: Option<Resolution>,
    pub note: Option<String>,
    /// The request id while open, NULL once resolved: unique, so one open dispute per request.
    #[sea_orm(unique)]
    pub open_key: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn status(&self) -> DisputeStatus {
        self.status.into()
    }

    pub fn to_api(&self) -> catalog::contract::Dispute {
        catalog::contract::Dispute {
            id: self.id,
            request_id: self.request_id,
            opened_by: self.opened_by,
            reason: self.reason.clone(),
            status: self.status(),
            resolution: self.resolution.map(Into::into),
            note: self.note.clone(),
            created_at: self.created_at,
            resolved_at: self.resolved_at,
        }
    }
}
