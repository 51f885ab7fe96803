use std::str::FromStr;

use catalog::contract::{Money, OfferStatus, SellerOffer};
use rust_decimal::Decimal;
use sea_orm::entity::prelude::*;

/// A seller's offer on a request. At most one `pending` offer per (request, seller): a
/// partial unique index enforces it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "offers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub seller_id: Uuid,
    /// Decimal string.
    pub price_amount: String,
    pub price_currency: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    /// One of [`OfferStatus::as_str`].
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The stored status; only this module writes it, so an unknown value is a corrupted
    /// row and reads as `withdrawn` (never actionable).
    pub fn status(&self) -> OfferStatus {
        OfferStatus::parse(&self.status).unwrap_or_else(|| {
            tracing::error!(offer_id = %self.id, status = %self.status, "unknown offer status in the database");
            OfferStatus::Withdrawn
        })
    }

    pub fn price(&self) -> Money {
        Money {
            amount: Decimal::from_str(&self.price_amount).unwrap_or_else(|_| {
                tracing::error!(offer_id = %self.id, amount = %self.price_amount, "unreadable offer price in the database");
                Decimal::ZERO
            }),
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
        }
    }
}
