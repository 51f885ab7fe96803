//! `dispute_evidence`: what the parties and admins add to an open dispute.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dispute_evidence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub dispute_id: Uuid,
    pub author_id: Uuid,
    pub description: String,
    pub attachment_url: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The evidence as the contract shows it, with its files (found by the caller).
    pub fn to_api(
        &self,
        attachments: Vec<catalog::contract::Attachment>,
    ) -> catalog::contract::Evidence {
        catalog::contract::Evidence {
            id: self.id,
            dispute_id: self.dispute_id,
            author_id: self.author_id,
            description: self.description.clone(),
            attachment_url: self.attachment_url.clone(),
            created_at: self.created_at,
            attachments,
        }
    }
}
