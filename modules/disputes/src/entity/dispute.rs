//! `disputes`: a disagreement over a paid request, settled by an admin.

use catalog::contract::{DisputeStatus, Resolution};
use sea_orm::entity::prelude::*;

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
    pub status: String,
    pub resolution: Option<String>,
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

pub fn resolution_str(r: Resolution) -> &'static str {
    match r {
        Resolution::ReleaseToSeller => "release_to_seller",
        Resolution::RefundBuyer => "refund_buyer",
    }
}

pub fn parse_resolution(s: &str) -> Option<Resolution> {
    match s {
        "release_to_seller" => Some(Resolution::ReleaseToSeller),
        "refund_buyer" => Some(Resolution::RefundBuyer),
        _ => None,
    }
}

impl Model {
    pub fn status(&self) -> DisputeStatus {
        if self.status == "resolved" {
            DisputeStatus::Resolved
        } else {
            DisputeStatus::Open
        }
    }

    pub fn to_api(&self) -> catalog::contract::Dispute {
        catalog::contract::Dispute {
            id: self.id,
            request_id: self.request_id,
            opened_by: self.opened_by,
            reason: self.reason.clone(),
            status: self.status(),
            resolution: self.resolution.as_deref().and_then(parse_resolution),
            note: self.note.clone(),
            created_at: self.created_at,
            resolved_at: self.resolved_at,
        }
    }
}
