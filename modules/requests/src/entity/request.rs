use catalog::contract::{Money, PurchaseRequest, RequestStatus};
use kernel::stored::DecimalText;
use sea_orm::entity::prelude::*;

kernel::stored_enum! {
    /// [`RequestStatus`] as stored in `purchase_requests.status`.
    pub enum Status for RequestStatus {
        Open = "open",
        Accepted = "accepted",
        Paid = "paid",
        Delivered = "delivered",
        Completed = "completed",
        Cancelled = "cancelled",
        Disputed = "disputed",
        Refunded = "refunded",
    }
}

/// A purchase request. The budget is kept as a decimal string and its currency. A row whose
/// status or budget cannot be read fails to load (a 500), never reads as a default.
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
    pub budget_amount: Option<DecimalText>,
    pub budget_currency: Option<String>,
    /// Changed only by [`crate::service::transition`].
    pub status: Status,
    pub accepted_offer_id: Option<Uuid>,
    /// The seller of the accepted offer (set with it): who may deliver, who is reviewed.
    pub accepted_seller_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    /// When a delivered request completes by itself (its `requests.auto-complete` timer).
    pub auto_complete_at: Option<DateTimeUtc>,
    /// When it became `completed` (by its buyer, by itself, or by a dispute's resolution):
    /// the review window starts then.
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn status(&self) -> RequestStatus {
        self.status.into()
    }

    pub fn budget(&self) -> Option<Money> {
        match (self.budget_amount, &self.budget_currency) {
            (Some(amount), Some(currency)) => Some(Money {
                amount: amount.0,
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
            delivered_at: self.delivered_at,
            auto_complete_at: self.auto_complete_at,
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
            assert_eq!(s.as_str(), RequestStatus::from(s).as_str());
            assert_eq!(Status::from(RequestStatus::from(s)), s);
        }
    }
}
