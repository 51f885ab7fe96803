use catalog::contract::Review;
use kernel::ApiError;
use sea_orm::entity::prelude::*;

/// One review: one per (request, author), enforced by a unique index.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub request_id: Uuid,
    pub author_id: Uuid,
    pub subject_id: Uuid,
    /// 1 to 5.
    pub rating: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    pub created_at: DateTimeUtc,
    /// `None` while hidden.
    pub published_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The review as the API shows it. A stored rating outside 1 to 5 fails to load (a 500,
    /// logged), never reads as some other rating.
    pub fn to_api(&self) -> Result<Review, ApiError> {
        let rating = u8::try_from(self.rating)
            .ok()
            .filter(|r| (1..=5).contains(r))
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "review {} holds the rating {}, not 1 to 5",
                    self.id, self.rating
                ))
            })?;
        Ok(Review {
            id: self.id,
            request_id: self.request_id,
            author_id: self.author_id,
            subject_id: self.subject_id,
            rating,
            comment: self.comment.clone(),
            created_at: self.created_at,
            published_at: self.published_at,
        })
    }
}
