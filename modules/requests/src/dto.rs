//! What comes in and goes out of the requests routes.

use catalog::contract::{Money, MoneyInput, RequestStatus};
use kernel::pagination::PageParams;
use kernel::validate::Fields;
use kernel::{ApiError, Result};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/requests`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRequestBody {
    /// 1 to 200 characters (trimmed).
    #[schema(
        example = "Used road bike, 56 cm frame",
        min_length = 1,
        max_length = 200
    )]
    pub title: String,
    /// 1 to 5000 characters (trimmed).
    #[schema(min_length = 1, max_length = 5000)]
    pub description: String,
    /// 1 to 100 characters (trimmed); lists filter on it exactly.
    #[schema(example = "bikes", min_length = 1, max_length = 100)]
    pub category: String,
    /// What the buyer means to spend; optional.
    #[serde(default)]
    pub budget: Option<MoneyInput>,
}

/// A checked new request: what the service is allowed to store.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub title: String,
    pub description: String,
    pub category: String,
    pub budget: Option<Money>,
}

impl NewRequest {
    /// Checks every field at once; 422 lists all that are wrong.
    pub fn parse(body: CreateRequestBody) -> Result<NewRequest> {
        let mut f = Fields::new();
        let title = f.text("title", &body.title, 1, 200);
        let description = f.text("description", &body.description, 1, 5000);
        let category = f.text("category", &body.category, 1, 100);
        let budget = match &body.budget {
            Some(b) => f.absorb(Money::parse("budget", b)),
            None => None,
        };
        f.finish()?;
        Ok(NewRequest {
            title,
            description,
            category,
            budget,
        })
    }
}

/// `GET /api/requests` query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRequestsQuery {
    /// `open`, `accepted`, `paid`, `delivered`, `completed`, `cancelled`, `disputed` or
    /// `refunded`.
    /// Sellers and admins see `open` when it is absent; buyers see all of theirs.
    /// A seller asking for another status sees only requests it made an offer on.
    pub status: Option<String>,
    /// Exact category.
    pub category: Option<String>,
    /// `true`: only requests you are a party to (a buyer's own; a seller's, those it made
    /// an offer on, in any status).
    pub mine: Option<bool>,
    /// Items per page: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// The checked filter of a request list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub category: Option<String>,
    pub mine: bool,
}

impl ListRequestsQuery {
    /// Splits the query into its filter and page, 422 for an unknown status.
    pub fn parse(self) -> Result<(RequestFilter, PageParams)> {
        let status = match self
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(RequestStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "must be one of open, accepted, paid, delivered, completed, cancelled, disputed, refunded",
                )
            })?),
        };
        let category = kernel::validate::query_text("category", self.category.as_deref(), 100)?;
        Ok((
            RequestFilter {
                status,
                category,
                mine: self.mine.unwrap_or(false),
            },
            PageParams {
                limit: self.limit,
                cursor: self.cursor,
            },
        ))
    }
}
