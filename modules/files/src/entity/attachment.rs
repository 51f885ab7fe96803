use sea_orm::entity::prelude::*;

/// One uploaded file. Private to `uploader_id` until attached (`attached_kind` set); then also
/// visible to `party_a`, `party_b` and, when `admins_see`, to admins.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub uploader_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub storage_key: String,
    pub thumbnail_key: Option<String>,
    pub thumbnail_content_type: Option<String>,
    /// `message` or `evidence`; `None` while unattached.
    pub attached_kind: Option<String>,
    /// The message or evidence id.
    pub attached_to: Option<Uuid>,
    /// Its place among the files of that message or evidence.
    pub position: i32,
    pub party_a: Option<Uuid>,
    pub party_b: Option<Uuid>,
    pub admins_see: bool,
    pub created_at: DateTimeUtc,
    pub attached_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
