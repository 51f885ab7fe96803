use catalog::Role as ContractRole;
use sea_orm::entity::prelude::*;

kernel::stored_enum! {
    /// [`catalog::Role`] as stored in `users.role`. A user whose role cannot be read fails to
    /// load (a 500 for their requests), never becomes a buyer by default.
    pub enum Role for ContractRole {
        Buyer = "buyer",
        Seller = "seller",
        Admin = "admin",
    }
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Lower-cased and trimmed.
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub payout_address: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// How many published reviews are about this user ([`crate::service::add_rating`]).
    pub rating_count: i64,
    /// The sum of their ratings (so the average needs no scan of the reviews).
    pub rating_sum: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn role(&self) -> ContractRole {
        self.role.into()
    }

    pub fn to_api(&self) -> catalog::contract::User {
        catalog::contract::User {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role(),
            payout_address: self.payout_address.clone(),
            created_at: self.created_at,
            rating: self.rating(),
        }
    }

    /// The published-review rating of this user.
    pub fn rating(&self) -> catalog::contract::Rating {
        catalog::contract::Rating::from_sum(self.rating_sum, self.rating_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    #[test]
    fn stored_words_are_the_contract_words() {
        for r in Role::iter() {
            assert_eq!(r.as_str(), ContractRole::from(r).as_str());
            assert_eq!(Role::from(ContractRole::from(r)), r);
        }
    }
}
