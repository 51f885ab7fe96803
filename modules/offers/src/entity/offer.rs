use catalog::contract::{Money, OfferStatus, SellerOffer};
use kernel::stored::DecimalText;
use sea_orm::entity::prelude::*;

kernel::stored_enum! {
    /// [`OfferStatus`] as stored in `offers.status`.
    pub enum Status for OfferStatus {
        Pending = "pending",
        Accepted = "accepted",
        Rejected = "rejected",
        Withdrawn = "withdrawn",
    }
}

/// A seller's offer on a request. At most one `pending` offer per (request, seller): a
/// partial unique index enforces it. A row whose status or price cannot be read fails to load
/// (a 500), never reads as a default.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "offers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub seller_id: Uuid,
    pub price_amount: DecimalText,
    pub price_currency: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub status: Status,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn status(&self) -> OfferStatus {
        self.status.into()
    }

    pub fn price(&self) -> Money {
        Money {
            amount: self.price_amount.0,
            currency: self.price_currency.clone(),
        }
    }

    /// The offer as the API shows it.
    pub fn to_api(&self) -> SellerOffer {
        SellerOffer {
            id: self.id,
            request_id: self.request_id,
            seller_id: self.seller_id,
            price: self.price(),
            message: self.message.clone(),
            status: self.status(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            seller: None,
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
            assert_eq!(s.as_str(), OfferStatus::from(s).as_str());
            assert_eq!(Status::from(OfferStatus::from(s)), s);
        }
    }
}
