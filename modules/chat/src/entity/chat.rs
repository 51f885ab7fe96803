use sea_orm::entity::prelude::*;

/// One chat per (request, seller), between the request's buyer and that seller.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub last_message_at: Option<DateTimeUtc>,
    /// `last_message_at`, or `created_at` before the first message: what "newest activity
    /// first" sorts by (with `id` as the tie-breaker).
    pub activity_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn is_participant(&self, user_id: Uuid) -> bool {
        self.buyer_id == user_id || self.seller_id == user_id
    }

    /// The participant who is not `user_id` (the seller for anyone but the seller).
    pub fn other_participant(&self, user_id: Uuid) -> Uuid {
        if user_id == self.seller_id {
            self.buyer_id
        } else {
            self.seller_id
        }
    }

    pub fn to_api(&self, unread_count: u64) -> catalog::contract::Chat {
        catalog::contract::Chat {
            id: self.id,
            request_id: self.request_id,
            buyer_id: self.buyer_id,
            seller_id: self.seller_id,
            last_message_at: self.last_message_at,
            unread_count,
            created_at: self.created_at,
        }
    }
}
