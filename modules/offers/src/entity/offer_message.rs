use catalog::contract::{Money, OfferMessage};
use kernel::stored::DecimalText;
use sea_orm::entity::prelude::*;

/// One step of an offer's negotiation: the opening message, then each counter. A price is
/// set when that step proposed one; a price that cannot be read fails the load (a 500).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "offer_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub offer_id: Uuid,
    pub author_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub price_amount: Option<DecimalText>,
    pub price_currency: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn price(&self) -> Option<Money> {
        match (self.price_amount, &self.price_currency) {
            (Some(a), Some(c)) => Some(Money {
                amount: a.0,
                currency: c.clone(),
            }),
            _ => None,
        }
    }

    /// The message as the API shows it.
    pub fn to_api(&self) -> OfferMessage {
        OfferMessage {
            id: self.id,
            offer_id: self.offer_id,
            author_id: self.author_id,
            message: self.message.clone(),
            price: self.price(),
            created_at: self.created_at,
        }
    }
}
