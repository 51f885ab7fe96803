use std::str::FromStr;

use catalog::contract::{Money, PurchaseRequest, RequestStatus};
use rust_decimal::Decimal;
use sea_orm::entity::prelude::*;

/// A purchase request. The budget is kept as a decimal string and its currency.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "purchase_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub category: String,
    pub budget_amount: Option<String>,
    pub budget_currency: Option<String>,
    /// One of [`RequestStatus::as_str`]; changed only by [`crate::service::transition`].
    pub status: String,
    pub accepted_offer_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The stored status. Only this module writes the column, so an unknown value means a
    /// corrupted row; it reads as `open` rather than failing every list that contains it.
    pub fn status(&self) -> RequestStatus {
        RequestStatus::parse(&self.status).unwrap_or_else(|| {
            tracing::error!(request_id = %self.id, status = %self.status, "unknown request status in the database");
            RequestStatus::Open
        })
    }

    pub fn budget(&self) -> Option<Money> {
        match (&self.budget_amount, &self.budget_currency) {
            (Some(amount), Some(currency)) => Decimal::from_str(amount).ok().map(|amount| Money {
                amount,
                currency: currency.clone(),
            }),
            _ => None,
        }
    }

    /// The request as the API shows it.
    pub fn to_api(&self) -> PurchaseRequest {
        PurchaseRequest {
            id: self.id,
            buyer_id: self.buyer_id,
            title: self.title.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            budget: self.budget(),
            status: self.status(),
            accepted_offer_id: self.accepted_offer_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
