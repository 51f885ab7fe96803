use sea_orm::entity::prelude::*;

/// A chat message. Ids are UUID v7, so id order is creation order.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    pub content: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The message as the contract shows it, with its attachments and reactions (found by
    /// the caller, who knows who is looking).
    pub fn to_api(
        &self,
        attachments: Vec<catalog::contract::Attachment>,
        reactions: Vec<catalog::contract::Reaction>,
    ) -> catalog::contract::Message {
        catalog::contract::Message {
            id: self.id,
            chat_id: self.chat_id,
            sender_id: self.sender_id,
            content: self.content.clone(),
            created_at: self.created_at,
            attachments,
            reactions,
        }
    }
}
