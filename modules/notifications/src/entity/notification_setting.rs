use sea_orm::entity::prelude::*;

/// One user's notification settings. No row means the defaults (see
/// [`crate::settings::Settings::default`]).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub email: bool,
    pub push: bool,
    /// A JSON array of notification kinds (event names) never mailed or pushed.
    pub muted_kinds: Json,
    /// Set when the mail relay refused the user's address for good: no more email.
    pub email_undeliverable: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
