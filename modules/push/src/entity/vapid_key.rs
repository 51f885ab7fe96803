use sea_orm::entity::prelude::*;

/// The server's VAPID key when `VAPID_PRIVATE_KEY` is not set: one row (`id` 1), made by the
/// first node that needed it, read by every other.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "push_vapid_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The P-256 private scalar, base64url without padding.
    pub private_key: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
