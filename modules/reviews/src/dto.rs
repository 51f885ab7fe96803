//! What comes in and goes out of the reviews routes.

use catalog::contract::{Rating, Review};
use kernel::Result;
use kernel::pagination::PageParams;
use kernel::validate::Fields;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The longest `comment`, in characters.
pub const COMMENT_MAX: usize = 2000;

/// `POST /api/requests/{id}/reviews`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateReviewBody {
    /// A whole number from 1 to 5.
    #[schema(minimum = 1, maximum = 5, example = 5)]
    pub rating: i64,
    /// Up to 2000 characters; empty (once trimmed) is the same as none.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        example = "Exactly as described, shipped the next day."
    )]
    pub comment: Option<String>,
}

/// A checked new review: what the service is allowed to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReview {
    /// 1 to 5.
    pub rating: u8,
    pub comment: Option<String>,
}

impl NewReview {
    /// Checks every field at once; 422 lists all that are wrong.
    pub fn parse(body: CreateReviewBody) -> Result<NewReview> {
        let mut f = Fields::new();
        let rating = match u8::try_from(body.rating) {
            Ok(r) if (1..=5).contains(&r) => r,
            _ => {
                f.push("rating", "must be a whole number from 1 to 5");
                0
            }
        };
        let comment = body
            .comment
            .as_deref()
            .map(|c| f.text("comment", c, 0, COMMENT_MAX))
            .filter(|c| !c.is_empty());
        f.finish()?;
        Ok(NewReview { rating, comment })
    }
}

/// `GET /api/users/{id}/reviews`: the published reviews about a user, newest first, and
/// the user's rating over all of them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewPage {
    pub items: Vec<Review>,
    /// Opaque; pass it back as `?cursor=` for the next page. `null` on the last page.
    pub next_cursor: Option<String>,
    /// `{ average, count }` over every published review about the user (not only this page).
    pub summary: Rating,
}

/// `?limit=&cursor=` of the review lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListReviewsQuery {
    /// Items per page: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListReviewsQuery {
    pub fn page(self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rating: i64, comment: Option<&str>) -> CreateReviewBody {
        CreateReviewBody {
            rating,
            comment: comment.map(str::to_owned),
        }
    }

    #[test]
    fn ratings_are_whole_numbers_from_one_to_five_and_comments_are_text() {
        for ok in 1..=5 {
            assert_eq!(NewReview::parse(body(ok, None)).unwrap().rating, ok as u8);
        }
        for bad in [0, 6, -1, 256, i64::MAX] {
            assert!(NewReview::parse(body(bad, None)).is_err(), "{bad}");
        }
        assert_eq!(
            NewReview::parse(body(4, Some("  fine  ")))
                .unwrap()
                .comment
                .as_deref(),
            Some("fine")
        );
        assert_eq!(
            NewReview::parse(body(4, Some(" \u{200B} ")))
                .unwrap()
                .comment,
            None
        );
        assert!(NewReview::parse(body(4, Some(&"x".repeat(COMMENT_MAX)))).is_ok());
        assert!(NewReview::parse(body(4, Some(&"x".repeat(COMMENT_MAX + 1)))).is_err());
        assert!(NewReview::parse(body(4, Some("a\u{202E}b"))).is_err());
    }
}
