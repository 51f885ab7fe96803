//! What comes in and goes out of the requests routes.

use catalog::contract::{Money, MoneyInput, RequestStatus};
use kernel::pagination::PageParams;
use kernel::validate::Fields;
use kernel::{ApiError, Result};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::search::{self, Search, Sort, TextQuery};

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
#[serde(rename_all = "camelCase")]
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
    /// Full-text search over title and description, in web-search syntax: words (all must
    /// match, English stemming: `bikes` finds `bike`; stop words such as `the` are ignored),
    /// `"a phrase"`, `-excluded` (also `-"a phrase"`), and `or` between alternatives
    /// (`road bike or scooter`). Other punctuation separates words; an unbalanced quote is
    /// ignored. A query with nothing left to look for (only stop words or exclusions)
    /// matches nothing. At most 300 characters. Sees exactly what the list without `q` sees.
    #[param(max_length = 300, example = "\"road bike\" -carbon")]
    pub q: Option<String>,
    /// Only requests whose budget is at least this (a decimal string, compared with the
    /// budget's amount in the budget's own currency; pick one with `currency`). Requests
    /// without a budget are left out. Empty: no bound.
    #[param(pattern = r"^([0-9]+(\.[0-9]+)?)?$", max_length = 40, example = "100")]
    pub min_budget: Option<String>,
    /// Only requests whose budget is at most this (as `minBudget`).
    #[param(
        pattern = r"^([0-9]+(\.[0-9]+)?)?$",
        max_length = 40,
        example = "500.00"
    )]
    pub max_budget: Option<String>,
    /// Only requests with a budget in this ISO 4217 currency (`USD`, `EUR`, ...).
    #[param(example = "USD")]
    pub currency: Option<String>,
    /// `relevance` (best match first; needs `q`, and is the default with it), `newest`
    /// (the default without `q`) or `budget` (highest budget first, requests without a
    /// budget last). Ties go newest first.
    #[param(value_type = Option<RequestSort>, inline)]
    pub sort: Option<String>,
    /// Items per page: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page (of the same query and sort).
    pub cursor: Option<String>,
}

/// The orders of a request list: the OpenAPI enum of `sort` (the parameter is read as text and
/// checked in [`crate::search`], so the variants themselves are never built).
#[expect(
    dead_code,
    reason = "a schema-only type: `sort` is parsed in crate::search"
)]
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RequestSort {
    Relevance,
    Newest,
    Budget,
}

/// The checked filter of a request list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub category: Option<String>,
    pub mine: bool,
    /// Text, budget and sort; the default is the plain newest-first list.
    pub search: Search,
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
        let text = kernel::validate::query_text("q", self.q.as_deref(), search::Q_MAX_CHARS)?
            .map(|q| TextQuery::parse(&q));
        let mut fields = Fields::new();
        let min_budget = fields.absorb(search::budget_bound(
            "minBudget",
            self.min_budget.as_deref(),
            true,
        ));
        let max_budget = fields.absorb(search::budget_bound(
            "maxBudget",
            self.max_budget.as_deref(),
            false,
        ));
        let currency = fields.absorb(search::currency(self.currency.as_deref()));
        let sort = fields.absorb(Sort::parse(self.sort.as_deref(), text.is_some()));
        if let (Some(Some(min)), Some(Some(max))) = (min_budget, max_budget)
            && min > max
        {
            fields.push("minBudget", "must not be more than maxBudget");
        }
        fields.finish()?;
        Ok((
            RequestFilter {
                status,
                category,
                mine: self.mine.unwrap_or(false),
                search: Search {
                    text,
                    min_budget: min_budget.flatten(),
                    max_budget: max_budget.flatten(),
                    currency: currency.flatten(),
                    sort: sort.unwrap_or_default(),
                },
            },
            PageParams {
                limit: self.limit,
                cursor: self.cursor,
            },
        ))
    }
}
