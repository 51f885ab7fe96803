use sea_orm::entity::prelude::*;

/// A notification for one user, made from one event of the log. `(source_event_id,
/// recipient_id)` is unique, so handling an event twice makes one notification.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient_id: Uuid,
    /// The name of the event that caused it.
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: Json,
    pub read_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// The id of that event in the log.
    pub source_event_id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn to_api(&self) -> catalog::contract::Notification {
        catalog::contract::Notification {
            id: self.id,
            recipient_id: self.recipient_id,
            kind: self.kind.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            data: self.data.clone(),
            read_at: self.read_at,
            created_at: self.created_at,
        }
    }
}
