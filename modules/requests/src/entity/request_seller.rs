use sea_orm::entity::prelude::*;

/// The sellers who have made an offer on a request (any offer, in any state). Written by
/// [`crate::service::record_offerer`] in the offer's transaction, so the requests module can
/// answer "may this seller see this request" without reading the offers module's tables.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "purchase_request_sellers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seller_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
