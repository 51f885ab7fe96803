//! Search over purchase requests: the web-search query language of `q`, read once in Rust
//! into [`TextQuery`] and then written out for each engine — an FTS5 `MATCH` expression on
//! SQLite, a canonical `websearch_to_tsquery` text on PostgreSQL — so that both engines
//! answer the same matches, and no input can reach either engine's parser as anything but
//! quoted words. Plus budget filters, the three sorts and their cursors.
//!
//! The language (what `websearch_to_tsquery` reads, made exact):
//! - words are ANDed: `road bike`; case, English stemming (`bikes` finds `bike`, `running`
//!   finds `run`) and English stop words (`the`, `of`, ...: ignored) as PostgreSQL's
//!   `english` configuration does;
//! - `"a phrase"`: the words in this order, next to each other; a quote without its
//!   closing quote is ignored and what follows it is read as words;
//! - `-word` or `-"a phrase"` excludes; a `-` not touching a word is ignored;
//! - `or` between two parts matches either (`road bike or scooter` = (road AND bike) OR
//!   scooter); a part made only of exclusions is ignored;
//! - anything that is not a letter or a digit separates words (`e-mail` is the phrase
//!   `"e mail"`), so FTS5 operators (`NEAR`, `*`, `^`, `:`, parentheses) are plain text.
//!
//! A query with nothing left to look for (`the`, `-bike`, `-`) matches nothing.

use catalog::contract::{CURRENCIES, Page, PurchaseRequest};
use kernel::pagination::{PageParams, page};
use kernel::{ApiError, Result};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, NullOrdering, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, FromQueryResult, Iterable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entity::request;

/// The longest `q`, in characters.
pub const Q_MAX_CHARS: usize = 300;

/// PostgreSQL's English stop words (`tsearch_data/english.stop`, the Snowball list): the
/// `english` configuration drops them from documents and queries. FTS5 keeps every word, so
/// the same words are dropped from the FTS5 query, and both engines match alike.
const STOP_WORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
];

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// One thing to look for: a word (one entry) or a phrase (several, in order). Every entry
/// is a lower-case run of letters and digits.
type Term = Vec<String>;

/// Terms that must all be there, and terms none of which may be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Group {
    include: Vec<Term>,
    exclude: Vec<Term>,
}

/// A parsed `q`: its `or`-separated parts, each with at least one term to look for. Empty
/// when nothing is left to look for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextQuery {
    groups: Vec<Group>,
}

/// The runs of letters and digits of `text`, lower-cased: how both engines cut words.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `words` without the stop words PostgreSQL would drop: a word that is one, and a
/// phrase's leading and trailing ones (inner ones stay: they keep the phrase's gaps).
fn without_stop_words(mut words: Vec<String>) -> Option<Term> {
    while words.first().is_some_and(|w| is_stop_word(w)) {
        words.remove(0);
    }
    while words.last().is_some_and(|w| is_stop_word(w)) {
        words.pop();
    }
    (!words.is_empty()).then_some(words)
}

impl TextQuery {
    /// Reads `q` in web-search syntax. Never fails: whatever is not understood is read as
    /// words or ignored (see the module's documentation).
    pub fn parse(q: &str) -> TextQuery {
        let chars: Vec<char> = q.chars().collect();
        let mut groups = Vec::new();
        let mut current = Group::default();
        let mut negate = false;
        let mut i = 0;
        let add = |current: &mut Group, text: String, negate: bool| {
            if let Some(term) = without_stop_words(words(&text)) {
                if negate {
                    current.exclude.push(term);
                } else {
                    current.include.push(term);
                }
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                negate = false;
                i += 1;
            } else if c == '"' {
                match chars[i + 1..].iter().position(|&c| c == '"') {
                    Some(len) => {
                        let text: String = chars[i + 1..i + 1 + len].iter().collect();
                        add(&mut current, text, negate);
                        negate = false;
                        i += len + 2;
                    }
                    // Unbalanced: the quote is dropped, the rest read as words.
                    None => i += 1,
                }
            } else if c == '-' && !negate {
                negate = true;
                i += 1;
            } else {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if !negate && text.eq_ignore_ascii_case("or") {
                    if current != Group::default() {
                        groups.push(std::mem::take(&mut current));
                    }
                } else {
                    add(&mut current, text, negate);
                }
                negate = false;
            }
        }
        groups.push(current);
        groups.retain(|g| !g.include.is_empty());
        TextQuery { groups }
    }

    /// Whether nothing is left to look for (such a query matches nothing).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The query as an FTS5 `MATCH` expression: every term a quoted string (so FTS5 reads
    /// no operator, column filter or prefix in it), joined by `AND`, `NOT` and `OR` with
    /// full parentheses. Only meaningful when not [`TextQuery::is_empty`].
    pub fn to_fts5(&self) -> String {
        fn quoted(term: &Term) -> String {
            format!("\"{}\"", term.join(" ").replace('"', "\"\""))
        }
        fn all(terms: &[Term], op: &str) -> String {
            let parts: Vec<String> = terms.iter().map(quoted).collect();
            format!("({})", parts.join(op))
        }
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                if g.exclude.is_empty() {
                    all(&g.include, " AND ")
                } else {
                    format!(
                        "({} NOT {})",
                        all(&g.include, " AND "),
                        all(&g.exclude, " OR ")
                    )
                }
            })
            .collect();
        groups.join(" OR ")
    }

    /// The query as canonical web-search text for `websearch_to_tsquery`: words bare,
    /// phrases quoted, exclusions with `-`, parts joined by ` or ` (which PostgreSQL reads
    /// as `(a & b) | (c & d)`). Its words hold only letters and digits, so PostgreSQL reads
    /// exactly the structure above.
    pub fn to_websearch(&self) -> String {
        fn term(t: &Term) -> String {
            if t.len() == 1 {
                t[0].clone()
            } else {
                format!("\"{}\"", t.join(" "))
            }
        }
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                g.include
                    .iter()
                    .map(term)
                    .chain(g.exclude.iter().map(|t| format!("-{}", term(t))))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        groups.join(" or ")
    }
}

/// How a request list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best match first (needs `q`); ties newest first.
    Relevance,
    /// Newest first.
    #[default]
    Newest,
    /// Highest budget first, requests without a budget last; ties newest first.
    Budget,
}

impl Sort {
    /// The sort asked for: `relevance`, `newest` or `budget`; without one, `relevance` when
    /// there is a `q`, else `newest`. 422 naming `sort` for anything else, and for
    /// `relevance` without `q`.
    pub fn parse(value: Option<&str>, has_text: bool) -> Result<Sort> {
        match value {
            None if has_text => Ok(Sort::Relevance),
            None => Ok(Sort::Newest),
            Some("relevance") if has_text => Ok(Sort::Relevance),
            Some("relevance") => Err(ApiError::invalid(
                "sort",
                "relevance needs a search text (q)",
            )),
            Some("newest") => Ok(Sort::Newest),
            Some("budget") => Ok(Sort::Budget),
            Some(_) => Err(ApiError::invalid(
                "sort",
                "must be one of relevance, newest, budget",
            )),
        }
    }
}

/// The largest budget bound that means anything, in hundredths: budgets are at most 10^12.
const BUDGET_BOUND_MAX: i64 = 100_000_000_000_000_000;

/// A budget bound (`minBudget`, `maxBudget`): a non-negative decimal string (`100`,
/// `99.5`), in hundredths of the budget's currency — rounded up for a minimum, down for a
/// maximum, so `minBudget=10.001` leaves out a budget of `10.00`. Empty is no bound;
/// anything else (spaces included: exactly what the OpenAPI pattern says) is a 422 naming
/// `field`.
pub fn budget_bound(field: &str, value: Option<&str>, is_min: bool) -> Result<Option<i64>> {
    let Some(text) = value.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let well_formed = text.len() <= 40
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.matches('.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    let bad = || {
        ApiError::invalid(
            field,
            "must be a non-negative decimal string such as \"100\" or \"99.50\"",
        )
    };
    if !well_formed {
        return Err(bad());
    }
    // Digits beyond what a decimal holds name a bound far above any budget.
    let Ok(amount) = text.parse::<Decimal>() else {
        return Ok(Some(BUDGET_BOUND_MAX));
    };
    let hundredths = amount
        .checked_mul(Decimal::ONE_HUNDRED)
        .map(|h| if is_min { h.ceil() } else { h.floor() })
        .and_then(|h| h.to_i64())
        .unwrap_or(BUDGET_BOUND_MAX);
    Ok(Some(Ord::min(hundredths, BUDGET_BOUND_MAX)))
}

/// `currency=`: an ISO 4217 code this API knows (upper-cased), or 422 naming `currency`.
pub fn currency(value: Option<&str>) -> Result<Option<String>> {
    let Some(text) = value.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let code = text.to_ascii_uppercase();
    if CURRENCIES.contains(&code.as_str()) {
        Ok(Some(code))
    } else {
        Err(ApiError::invalid(
            "currency",
            "must be an ISO 4217 code such as USD",
        ))
    }
}

/// What a search adds to a request list. [`Search::default`] is the plain list.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The parsed `q`, when one was given.
    pub text: Option<TextQuery>,
    /// Inclusive bounds, in hundredths of the budget's currency.
    pub min_budget: Option<i64>,
    pub max_budget: Option<i64>,
    pub currency: Option<String>,
    pub sort: Sort,
}

impl Search {
    /// Whether this is more than the plain newest-first list.
    pub fn is_active(&self) -> bool {
        self.text.is_some()
            || self.min_budget.is_some()
            || self.max_budget.is_some()
            || self.currency.is_some()
            || self.sort != Sort::Newest
    }
}

/// Where a page sorted by budget ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetCursor {
    b: Option<i64>,
    id: Uuid,
}

/// Where a page sorted by relevance ended: the score's exact bits, so the next page starts
/// exactly after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreCursor {
    s: u64,
    id: Uuid,
}

/// The position of a row in its sort.
#[derive(Clone)]
enum Position {
    Newest(Uuid),
    Budget(BudgetCursor),
    Score(ScoreCursor),
}

impl Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Position::Newest(id) => id.serialize(s),
            Position::Budget(c) => c.serialize(s),
            Position::Score(c) => c.serialize(s),
        }
    }
}

const FTS_TABLE: &str = "purchase_requests_fts";
const BUDGET_COLUMN: &str = "budget_hundredths";
/// SQLite: FTS5's BM25, negated so that higher is better as on PostgreSQL; a title word
/// weighs ten times a description word (the first, unindexed column weighs nothing).
const SQLITE_SCORE: &str = "-bm25(purchase_requests_fts, 0.0, 10.0, 1.0)";

fn budget_col() -> Expr {
    Expr::col((request::Entity, Alias::new(BUDGET_COLUMN)))
}

fn id_col() -> Expr {
    Expr::col((request::Entity, request::Column::Id))
}

/// A page of the requests that `visibility` lets the caller see, filtered and ordered by
/// `search`. Pages are cut on the sort key and the id (keyset), like the plain list. On
/// SQLite a relevance score also depends on the other requests (BM25 weighs rare words
/// higher), so requests written between two pages may move a request across the cut.
pub(crate) async fn page_of<C: ConnectionTrait>(
    conn: &C,
    visibility: Condition,
    search: &Search,
    params: &PageParams,
) -> Result<Page<PurchaseRequest>> {
    let limit = params.limit()?;
    let after = match search.sort {
        Sort::Newest => params.cursor::<Uuid>()?.map(Position::Newest),
        Sort::Budget => params.cursor::<BudgetCursor>()?.map(Position::Budget),
        Sort::Relevance => params.cursor::<ScoreCursor>()?.map(Position::Score),
    };
    if search.text.as_ref().is_some_and(TextQuery::is_empty) {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    let backend = conn.get_database_backend();
    let mut select = Query::select();
    select
        .columns(request::Column::iter().map(|c| (request::Entity, c)))
        .expr_as(budget_col(), Alias::new(BUDGET_COLUMN));
    let mut cond = visibility;
    let mut score: Option<Expr> = None;
    match (&search.text, backend) {
        (Some(text), DatabaseBackend::Sqlite) => {
            // The FTS table drives (SQLite never reorders a CROSS JOIN): each match looks
            // its request up by primary key.
            let fts = Alias::new(FTS_TABLE);
            select.from(fts.clone()).cross_join(request::Entity);
            cond = cond
                .add(
                    Expr::col((request::Entity, request::Column::Id))
                        .equals((fts, Alias::new("request_id"))),
                )
                .add(Expr::cust_with_values(
                    format!("{FTS_TABLE} MATCH ?"),
                    [text.to_fts5()],
                ));
            score = Some(Expr::cust(SQLITE_SCORE));
        }
        (Some(text), _) => {
            // sea-query's PostgreSQL builder reads `$1` (not `?`) as this expression's value.
            let tsquery = "websearch_to_tsquery('english', $1)";
            let words = text.to_websearch();
            select.from(request::Entity);
            cond = cond.add(Expr::cust_with_values(
                format!("purchase_requests.search_vector @@ {tsquery}"),
                [words.clone()],
            ));
            score = Some(Expr::cust_with_values(
                format!(
                    "CAST(ts_rank(purchase_requests.search_vector, {tsquery}) AS DOUBLE PRECISION)"
                ),
                [words],
            ));
        }
        (None, _) => {
            select.from(request::Entity);
        }
    }
    // Budget as the filters read it. When SQLite walks the FTS matches, a unary `+` keeps
    // it from using the budget index for the per-match look-up (without statistics it
    // would rather scan a budget range for every match than fetch the match by its key).
    let budget = if search.text.is_some() && backend == DatabaseBackend::Sqlite {
        Expr::cust(format!("+\"purchase_requests\".\"{BUDGET_COLUMN}\""))
    } else {
        budget_col()
    };
    if let Some(min) = search.min_budget {
        cond = cond.add(budget.clone().gte(min));
    }
    if let Some(max) = search.max_budget {
        cond = cond.add(budget.clone().lte(max));
    }
    if let Some(currency) = &search.currency {
        cond = cond.add(request::Column::BudgetCurrency.eq(currency.as_str()));
    }
    match (search.sort, &score) {
        (Sort::Relevance, Some(score)) => {
            select.expr_as(score.clone(), Alias::new("score"));
            if let Some(Position::Score(c)) = &after {
                let s = f64::from_bits(c.s);
                cond = cond.add(
                    Condition::any().add(score.clone().lt(s)).add(
                        Condition::all()
                            .add(score.clone().eq(s))
                            .add(id_col().lt(c.id)),
                    ),
                );
            }
            select
                .order_by_expr(score.clone(), Order::Desc)
                .order_by_expr(id_col(), Order::Desc);
        }
        (Sort::Relevance, None) => {
            return Err(ApiError::invalid(
                "sort",
                "relevance needs a search text (q)",
            ));
        }
        (Sort::Budget, _) => {
            if let Some(Position::Budget(c)) = &after {
                cond = cond.add(match c.b {
                    Some(b) => Condition::any()
                        .add(budget.clone().lt(b))
                        .add(
                            Condition::all()
                                .add(budget.clone().eq(b))
                                .add(id_col().lt(c.id)),
                        )
                        .add(budget.clone().is_null()),
                    None => Condition::all()
                        .add(budget.clone().is_null())
                        .add(id_col().lt(c.id)),
                });
            }
            // SQLite sorts NULL lowest, so DESC already puts them last (and matches the
            // index); PostgreSQL must be told.
            if backend == DatabaseBackend::Postgres {
                select.order_by_expr_with_nulls(budget_col(), Order::Desc, NullOrdering::Last);
            } else {
                select.order_by_expr(budget_col(), Order::Desc);
            }
            select.order_by_expr(id_col(), Order::Desc);
        }
        (Sort::Newest, _) => {
            if let Some(Position::Newest(id)) = &after {
                cond = cond.add(id_col().lt(*id));
            }
            select.order_by_expr(id_col(), Order::Desc);
        }
    }
    select.cond_where(cond).limit(limit + 1);

    let rows = conn.query_all(&select).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let model = request::Model::from_query_result(row, "")?;
        let position = match search.sort {
            Sort::Newest => Position::Newest(model.id),
            Sort::Budget => Position::Budget(BudgetCursor {
                b: row.try_get::<Option<i64>>("", BUDGET_COLUMN)?,
                id: model.id,
            }),
            Sort::Relevance => Position::Score(ScoreCursor {
                s: row.try_get::<f64>("", "score")?.to_bits(),
                id: model.id,
            }),
        };
        items.push((model.to_api(), position));
    }
    let cut = page(items, limit, |(_, position)| position.clone());
    Ok(Page {
        items: cut.items.into_iter().map(|(r, _)| r).collect(),
        next_cursor: cut.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fts(q: &str) -> String {
        TextQuery::parse(q).to_fts5()
    }
    fn web(q: &str) -> String {
        TextQuery::parse(q).to_websearch()
    }

    #[test]
    fn words_are_anded_and_stop_words_dropped() {
        assert_eq!(fts("Road the BIKES"), r#"("road" AND "bikes")"#);
        assert_eq!(web("Road the BIKES"), "road bikes");
    }

    #[test]
    fn phrases_keep_inner_stop_words_and_lose_outer_ones() {
        assert_eq!(fts(r#""the bike of john""#), r#"("bike of john")"#);
        assert_eq!(web(r#""the bike of john""#), r#""bike of john""#);
        assert!(TextQuery::parse(r#""of the""#).is_empty());
    }

    #[test]
    fn exclusions_and_or_make_groups() {
        assert_eq!(
            fts(r#"road bike -carbon -"flat tyre" or scooter"#),
            r#"(("road" AND "bike") NOT ("carbon" OR "flat tyre")) OR ("scooter")"#
        );
        assert_eq!(
            web(r#"road bike -carbon -"flat tyre" OR scooter"#),
            r#"road bike -carbon -"flat tyre" or scooter"#
        );
    }

    #[test]
    fn a_part_with_only_exclusions_is_ignored_and_nothing_left_matches_nothing() {
        assert_eq!(web("bike or -car"), "bike");
        for q in [
            "-bike", "-", "the", "or", "\"", "- - -", "or or", "*", "^:()",
        ] {
            assert!(TextQuery::parse(q).is_empty(), "{q:?}");
        }
    }

    #[test]
    fn unbalanced_quotes_are_read_as_words() {
        assert_eq!(fts(r#""road bike"#), r#"("road" AND "bike")"#);
        assert_eq!(
            fts(r#"road "bike" "cheap"#),
            r#"("road" AND "bike" AND "cheap")"#
        );
    }

    #[test]
    fn fts5_syntax_is_plain_text() {
        assert_eq!(fts("NEAR(bike road)"), r#"("near bike" AND "road")"#);
        assert_eq!(
            fts("bike* ^road title:car"),
            r#"("bike" AND "road" AND "title car")"#
        );
        assert_eq!(fts("bike AND car"), r#"("bike" AND "car")"#);
        assert!(TextQuery::parse("AND OR NOT").is_empty());
    }

    #[test]
    fn a_lone_dash_is_ignored_and_words_with_inner_punctuation_are_phrases() {
        assert_eq!(fts("bike - car"), r#"("bike" AND "car")"#);
        assert_eq!(fts("e-mail"), r#"("e mail")"#);
        assert_eq!(web("e-mail"), r#""e mail""#);
        assert_eq!(fts("--bike car"), r#"(("car") NOT ("bike"))"#);
    }

    #[test]
    fn sort_defaults_and_refusals() {
        assert_eq!(Sort::parse(None, true).unwrap(), Sort::Relevance);
        assert_eq!(Sort::parse(None, false).unwrap(), Sort::Newest);
        assert!(Sort::parse(Some("relevance"), false).is_err());
        assert!(Sort::parse(Some("price"), true).is_err());
        assert!(
            Sort::parse(Some(""), false).is_err(),
            "the OpenAPI enum has no empty value"
        );
        assert!(Sort::parse(Some(" budget"), false).is_err());
        assert_eq!(Sort::parse(Some("budget"), true).unwrap(), Sort::Budget);
    }

    #[test]
    fn budget_bounds_round_towards_the_inside() {
        assert_eq!(
            budget_bound("minBudget", Some("10.001"), true).unwrap(),
            Some(1001)
        );
        assert_eq!(
            budget_bound("maxBudget", Some("10.009"), false).unwrap(),
            Some(1000)
        );
        assert_eq!(budget_bound("minBudget", Some("0"), true).unwrap(), Some(0));
        assert_eq!(budget_bound("minBudget", Some(""), true).unwrap(), None);
        assert!(budget_bound("minBudget", Some(" 5"), true).is_err());
        assert_eq!(
            budget_bound("maxBudget", Some("99999999999999999999999999999999"), false).unwrap(),
            Some(BUDGET_BOUND_MAX)
        );
        for bad in ["-1", "1e3", "abc", "1.2.3", ".5", "5.", "NaN", "１"] {
            assert!(budget_bound("minBudget", Some(bad), true).is_err(), "{bad}");
        }
    }
}
