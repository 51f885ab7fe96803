use sea_orm::entity::prelude::*;

/// One push of one notification to one subscription. `(notification_id, subscription_id)`
/// is unique, so however often the notification is handled (again after a crash, or by
/// another node) there is one row, and its `state` says whether to send.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "push_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub notification_id: Uuid,
    pub subscription_id: Uuid,
    /// See [`crate::service::State`].
    pub state: String,
    /// The plaintext JSON pushed (encrypted afresh for every attempt).
    pub payload: String,
    /// `high` or `normal`.
    pub urgency: String,
    pub topic: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When a retry is due (state `retrying`).
    pub next_attempt_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
