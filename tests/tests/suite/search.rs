//! Search of purchase requests (`GET /api/requests?q=&minBudget=&maxBudget=&currency=&sort=`):
//! the web-search syntax (words with English stemming, phrases, exclusions, `or`), budget
//! filters in the budget's currency, the three sorts and their pages, malformed input that is
//! never a 500, findability right after the 201, and the list's visibility rules. Every
//! expected set is exact, so the same test passing on SQLite (FTS5) and PostgreSQL
//! (`websearch_to_tsquery`) shows both engines give the same matches for this corpus.

use std::collections::BTreeSet;

use marketplace_tests::{TestApp, TestUser};
use serde_json::{Value, json};

/// A request of the corpus: title, description, budget as (amount, currency).
type Seed = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

/// The corpus. Titles are unique and name the requests in the assertions.
const CORPUS: &[Seed] = &[
    (
        "Used road bike",
        "Aluminium frame, 56 cm, good for running errands in town.",
        Some(("450.00", "USD")),
    ),
    (
        "Carbon road bike",
        "Light carbon frame for racing.",
        Some(("2000.00", "USD")),
    ),
    (
        "Kids bikes",
        "Two small bikes for children aged 5 and 7.",
        Some(("120.00", "EUR")),
    ),
    (
        "Running shoes",
        "Size 42, for trail running.",
        Some(("80.00", "USD")),
    ),
    (
        "Electric scooter",
        "Foldable, a range of at least 20 km.",
        None,
    ),
    (
        "Vintage camera",
        "A film camera from the seventies with a working shutter.",
        Some(("30000", "JPY")),
    ),
    (
        "Mountain bike",
        "Full suspension; a flat tyre is fine.",
        Some(("900.00", "EUR")),
    ),
    (
        "Bike helmet",
        "A helmet for a road bike rider, size M.",
        Some(("60.00", "USD")),
    ),
    (
        "Strong lock",
        "A lock that fits any bike.",
        Some(("25.50", "USD")),
    ),
];

/// Every corpus request that mentions a bike (`bike` or `bikes`), in title or description.
const BIKES: &[&str] = &[
    "Used road bike",
    "Carbon road bike",
    "Kids bikes",
    "Mountain bike",
    "Bike helmet",
    "Strong lock",
];

struct Corpus {
    app: TestApp,
    buyer: TestUser,
    seller: TestUser,
    /// Request ids by title.
    ids: Vec<(String, String)>,
}

impl Corpus {
    /// A fresh app where one buyer posted [`CORPUS`], in order, and a seller who searches.
    async fn new() -> Corpus {
        let app = TestApp::spawn().await;
        let buyer = app.buyer().await;
        let seller = app.seller().await;
        let mut ids = Vec::new();
        for (title, description, budget) in CORPUS {
            let mut body =
                json!({ "title": title, "description": description, "category": "misc" });
            if let Some((amount, currency)) = budget {
                body["budget"] = json!({ "amount": amount, "currency": currency });
            }
            let created = app.post_request(&buyer, body).await;
            ids.push((
                (*title).to_owned(),
                created["id"].as_str().expect("id").to_owned(),
            ));
        }
        Corpus {
            app,
            buyer,
            seller,
            ids,
        }
    }

    fn id(&self, title: &str) -> &str {
        &self
            .ids
            .iter()
            .find(|(t, _)| t == title)
            .expect("a corpus title")
            .1
    }
}

/// `GET /api/requests` with these query parameters as `user`.
async fn list(app: &TestApp, user: &TestUser, params: &[(&str, &str)]) -> marketplace_tests::Resp {
    let url = reqwest::Url::parse_with_params(&app.url("/api/requests"), params).expect("a url");
    app.send(app.http.get(url).bearer_auth(&user.token)).await
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|r| r["title"].as_str().expect("title").to_owned())
        .collect()
}

/// The titles `user` finds with these parameters (one page of 100), in order.
async fn found(app: &TestApp, user: &TestUser, params: &[(&str, &str)]) -> Vec<String> {
    let mut all = params.to_vec();
    all.push(("limit", "100"));
    let page = list(app, user, &all).await.expect(200);
    assert!(page["nextCursor"].is_null(), "one page: {page}");
    titles(&page)
}

/// The titles the corpus's seller finds for `q`, as a set.
async fn matches(c: &Corpus, q: &str) -> BTreeSet<String> {
    found(&c.app, &c.seller, &[("q", q)])
        .await
        .into_iter()
        .collect()
}

fn set(titles: &[&str]) -> BTreeSet<String> {
    titles.iter().map(|t| (*t).to_owned()).collect()
}

/// Every page of a list, following `nextCursor`, `limit` at a time.
async fn all_pages(
    app: &TestApp,
    user: &TestUser,
    params: &[(&str, &str)],
    limit: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let mut p = params.to_vec();
        p.push(("limit", limit));
        if let Some(c) = &cursor {
            p.push(("cursor", c));
        }
        let page = list(app, user, &p).await.expect(200);
        out.extend(titles(&page));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
    panic!("more than 50 pages");
}

#[track_caller]
fn refused(resp: marketplace_tests::Resp, field: &str) {
    assert_eq!(resp.status, 422, "{}", resp.body);
    assert!(
        resp.content_type.starts_with("application/problem+json"),
        "{}",
        resp.content_type
    );
    let fields: Vec<&str> = resp.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&field), "expected {field} in {}", resp.body);
}

#[tokio::test]
async fn words_match_with_english_stemming_whatever_their_case() {
    let c = Corpus::new().await;
    for q in ["bike", "bikes", "BIKE", "Bikes"] {
        assert_eq!(matches(&c, q).await, set(BIKES), "q={q}");
    }
    for q in ["running", "run", "runs"] {
        assert_eq!(
            matches(&c, q).await,
            set(&["Used road bike", "Running shoes"]),
            "q={q}"
        );
    }
    // Every word must be there, in title or description.
    assert_eq!(
        matches(&c, "frame bike").await,
        set(&["Used road bike", "Carbon road bike"])
    );
    assert_eq!(
        matches(&c, "camera shutter").await,
        set(&["Vintage camera"])
    );
    assert_eq!(matches(&c, "camera bike").await, set(&[]));
}

#[tokio::test]
async fn stop_words_are_ignored_and_a_query_of_only_stop_words_finds_nothing() {
    let c = Corpus::new().await;
    assert_eq!(matches(&c, "the bikes of a").await, set(BIKES));
    for q in ["the", "of a", "and or not"] {
        assert_eq!(matches(&c, q).await, set(&[]), "q={q}");
    }
}

#[tokio::test]
async fn a_quoted_phrase_matches_its_words_next_to_each_other_in_order() {
    let c = Corpus::new().await;
    assert_eq!(
        matches(&c, "\"road bike\"").await,
        set(&["Used road bike", "Carbon road bike", "Bike helmet"])
    );
    assert_eq!(matches(&c, "\"bike road\"").await, set(&[]));
    assert_eq!(
        matches(&c, "\"carbon frame\"").await,
        set(&["Carbon road bike"])
    );
    // Stemmed inside phrases too.
    assert_eq!(
        matches(&c, "\"running errand\"").await,
        set(&["Used road bike"])
    );
}

#[tokio::test]
async fn excluded_words_and_phrases_are_left_out() {
    let c = Corpus::new().await;
    assert_eq!(
        matches(&c, "bike -carbon").await,
        set(&[
            "Used road bike",
            "Kids bikes",
            "Mountain bike",
            "Bike helmet",
            "Strong lock"
        ])
    );
    assert_eq!(
        matches(&c, "road bike -\"carbon frame\" -helmets").await,
        set(&["Used road bike"])
    );
}

#[tokio::test]
async fn or_matches_either_side_and_binds_looser_than_the_words_around_it() {
    let c = Corpus::new().await;
    assert_eq!(
        matches(&c, "scooter or camera").await,
        set(&["Electric scooter", "Vintage camera"])
    );
    assert_eq!(
        matches(&c, "scooter OR camera").await,
        set(&["Electric scooter", "Vintage camera"])
    );
    // (carbon) OR (mountain AND bike)
    assert_eq!(
        matches(&c, "carbon or mountain bike").await,
        set(&["Carbon road bike", "Mountain bike"])
    );
    // (mountain AND bike) OR (helmet AND NOT road): a part's exclusions stay in that part.
    assert_eq!(
        matches(&c, "mountain bike or helmet -road").await,
        set(&["Mountain bike"])
    );
}

#[tokio::test]
async fn budget_filters_compare_the_amount_in_the_budgets_own_currency() {
    let c = Corpus::new().await;
    let by = async |p: &[(&str, &str)]| -> BTreeSet<String> {
        found(&c.app, &c.seller, p).await.into_iter().collect()
    };
    assert_eq!(
        by(&[("minBudget", "100")]).await,
        set(&[
            "Used road bike",
            "Carbon road bike",
            "Kids bikes",
            "Vintage camera",
            "Mountain bike"
        ]),
        "120 EUR and 30000 JPY count, requests without a budget do not"
    );
    assert_eq!(
        by(&[("minBudget", "100"), ("maxBudget", "1000")]).await,
        set(&["Used road bike", "Kids bikes", "Mountain bike"])
    );
    assert_eq!(
        by(&[("maxBudget", "80")]).await,
        set(&["Running shoes", "Bike helmet", "Strong lock"]),
        "bounds are inclusive"
    );
    assert_eq!(
        by(&[("minBudget", "25.5"), ("maxBudget", "25.50")]).await,
        set(&["Strong lock"])
    );
    assert!(!by(&[("minBudget", "25.501")]).await.contains("Strong lock"));
    assert_eq!(
        by(&[("currency", "USD"), ("minBudget", "100")]).await,
        set(&["Used road bike", "Carbon road bike"])
    );
    assert_eq!(
        by(&[("currency", "eur")]).await,
        set(&["Kids bikes", "Mountain bike"]),
        "currency alone keeps the budgets in it"
    );
    assert_eq!(
        by(&[("q", "bike"), ("currency", "USD"), ("maxBudget", "500")]).await,
        set(&["Used road bike", "Bike helmet", "Strong lock"])
    );
    assert!(
        !by(&[("minBudget", "0")]).await.contains("Electric scooter"),
        "no budget is left out as soon as a bound is given"
    );
}

#[tokio::test]
async fn sort_by_budget_puts_the_highest_first_and_requests_without_one_last() {
    let c = Corpus::new().await;
    // A second request without a budget: those come newest first.
    c.app
        .post_request(
            &c.buyer,
            json!({ "title": "Old radio", "description": "Any working radio.", "category": "misc" }),
        )
        .await;
    let expected = [
        "Vintage camera",   // 30000 JPY
        "Carbon road bike", // 2000 USD
        "Mountain bike",    // 900 EUR
        "Used road bike",   // 450 USD
        "Kids bikes",       // 120 EUR
        "Running shoes",    // 80 USD
        "Bike helmet",      // 60 USD
        "Strong lock",      // 25.50 USD
        "Old radio",        // none, newer
        "Electric scooter", // none
    ];
    assert_eq!(
        found(&c.app, &c.seller, &[("sort", "budget")]).await,
        expected
    );
    for limit in ["1", "3", "4"] {
        assert_eq!(
            all_pages(&c.app, &c.seller, &[("sort", "budget")], limit).await,
            expected,
            "pages of {limit}"
        );
    }
    assert_eq!(
        found(&c.app, &c.seller, &[("q", "bike"), ("sort", "budget")]).await,
        [
            "Carbon road bike",
            "Mountain bike",
            "Used road bike",
            "Kids bikes",
            "Bike helmet",
            "Strong lock"
        ]
    );
}

#[tokio::test]
async fn sort_by_newest_is_the_default_without_q_and_can_be_asked_for_with_it() {
    let c = Corpus::new().await;
    let newest_first: Vec<String> = CORPUS.iter().rev().map(|r| r.0.to_owned()).collect();
    assert_eq!(found(&c.app, &c.seller, &[]).await, newest_first);
    assert_eq!(
        found(&c.app, &c.seller, &[("sort", "newest")]).await,
        newest_first
    );
    let bikes_newest_first: Vec<String> = newest_first
        .iter()
        .filter(|t| BIKES.contains(&t.as_str()))
        .cloned()
        .collect();
    assert_eq!(
        found(&c.app, &c.seller, &[("q", "bike"), ("sort", "newest")]).await,
        bikes_newest_first
    );
    assert_eq!(
        all_pages(&c.app, &c.seller, &[("q", "bike"), ("sort", "newest")], "2").await,
        bikes_newest_first
    );
}

#[tokio::test]
async fn sort_by_relevance_is_the_default_with_q_and_ranks_title_matches_first() {
    let c = Corpus::new().await;
    let ranked = found(&c.app, &c.seller, &[("q", "bike")]).await;
    assert_eq!(
        ranked,
        found(&c.app, &c.seller, &[("q", "bike"), ("sort", "relevance")]).await
    );
    assert_eq!(ranked.iter().collect::<BTreeSet<_>>().len(), BIKES.len());
    // "Strong lock" mentions a bike only in its description: it comes last.
    assert_eq!(
        ranked.last().map(String::as_str),
        Some("Strong lock"),
        "{ranked:?}"
    );
    // "Bike helmet" has it in the title and the description: before the description-only one.
    let pos = |t: &str| ranked.iter().position(|r| r == t).expect("ranked");
    assert!(pos("Bike helmet") < pos("Strong lock"), "{ranked:?}");
    // Paging by relevance gives the same order, each request once.
    for limit in ["1", "2", "4"] {
        assert_eq!(
            all_pages(&c.app, &c.seller, &[("q", "bike")], limit).await,
            ranked,
            "pages of {limit}"
        );
    }
}

#[tokio::test]
async fn bad_sort_budget_currency_and_cursor_are_422_naming_the_parameter() {
    let c = Corpus::new().await;
    let (a, s) = (&c.app, &c.seller);
    refused(list(a, s, &[("sort", "relevance")]).await, "sort");
    refused(
        list(a, s, &[("sort", "relevance"), ("q", "  ")]).await,
        "sort",
    );
    refused(list(a, s, &[("sort", "price")]).await, "sort");
    // Exactly the OpenAPI document's values: no empty sort, no padded numbers.
    refused(list(a, s, &[("sort", "")]).await, "sort");
    refused(list(a, s, &[("sort", " budget")]).await, "sort");
    for bad in [
        "-1", "1e3", "ten", "1.2.3", ".5", "5.", "NaN", "0x10", "1,5", "Infinity", " 5", "5 ",
    ] {
        refused(list(a, s, &[("minBudget", bad)]).await, "minBudget");
        refused(list(a, s, &[("maxBudget", bad)]).await, "maxBudget");
    }
    refused(
        list(a, s, &[("minBudget", "500"), ("maxBudget", "100")]).await,
        "minBudget",
    );
    refused(list(a, s, &[("currency", "XYZ")]).await, "currency");
    refused(list(a, s, &[("currency", "US")]).await, "currency");
    // An empty bound is no bound.
    assert_eq!(
        found(a, s, &[("minBudget", ""), ("maxBudget", "")])
            .await
            .len(),
        CORPUS.len()
    );
    // A cursor of one sort is no cursor of another.
    let page = list(a, s, &[("sort", "budget"), ("limit", "1")])
        .await
        .expect(200);
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    refused(list(a, s, &[("cursor", &cursor)]).await, "cursor");
    refused(
        list(a, s, &[("cursor", &cursor), ("q", "bike")]).await,
        "cursor",
    );
    list(a, s, &[("cursor", &cursor), ("sort", "budget")])
        .await
        .expect(200);
    // Huge numbers are bounds above every budget, not errors.
    assert_eq!(
        found(a, s, &[("minBudget", "99999999999999999999999999999999")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(a, s, &[("maxBudget", "99999999999999999999999999999999")])
            .await
            .len(),
        CORPUS.iter().filter(|r| r.2.is_some()).count()
    );
}

#[tokio::test]
async fn a_q_too_long_or_with_control_characters_is_422_naming_q() {
    let c = Corpus::new().await;
    let (a, s) = (&c.app, &c.seller);
    refused(list(a, s, &[("q", &"bike ".repeat(61))]).await, "q");
    refused(list(a, s, &[("q", &"\"".repeat(5_000))]).await, "q");
    refused(list(a, s, &[("q", "bike\0")]).await, "q");
    refused(list(a, s, &[("q", "\u{202E}bike")]).await, "q");
    // 300 characters are fine.
    assert_eq!(
        matches(&c, &format!("{}bike", "the ".repeat(74))).await,
        set(BIKES)
    );
}

#[tokio::test]
async fn malformed_queries_are_read_as_words_and_never_fail() {
    let c = Corpus::new().await;
    let (a, s) = (&c.app, &c.seller);
    let nasty = [
        "\"",
        "\"\"",
        "\"\"\"",
        "-",
        "--",
        "- -",
        "-\"",
        "\"-",
        "or",
        "OR OR",
        "or bike or",
        "AND",
        "NOT bike",
        "bike NOT",
        "NEAR(bike road)",
        "NEAR(bike road, 2)",
        "bike*",
        "*",
        "^bike",
        "bike^",
        "title:bike",
        "description:bike",
        "{title description}:bike",
        "(bike",
        "bike)",
        "()",
        "'",
        "''",
        "\\",
        "\\\"",
        "%",
        "_",
        "%bike%",
        "bike;",
        ";--",
        "'; DROP TABLE purchase_requests; --",
        "\u{1F6B2} bike",
        "\u{1F6B2}",
        "ö",
        "日本語",
        "bike\tbike",
        "bike\nroad",
        "+bike",
        "bike & road",
        "bike | road",
        "!bike",
        "bike <-> road",
        "bike:*",
        "bike:A",
        "a:b:c",
        "\"road bike",
        "road bike\"",
        "\"road\" \"bike",
        "-\"road bike",
        "-(bike)",
        "@",
        "#",
        "$",
        "`",
        "~bike",
        "bike~2",
    ];
    for q in nasty {
        let resp = list(a, s, &[("q", q), ("limit", "100")]).await;
        assert_eq!(resp.status, 200, "q={q:?}: {}", resp.body);
    }
    // What some of them mean.
    let road_bikes = set(&["Used road bike", "Carbon road bike", "Bike helmet"]);
    assert_eq!(
        matches(&c, "\"road bike").await,
        road_bikes,
        "unbalanced: words"
    );
    assert_eq!(matches(&c, "road bike\"").await, road_bikes);
    assert_eq!(matches(&c, "bike*").await, set(BIKES));
    assert_eq!(
        matches(&c, "NEAR(bike road)").await,
        set(&[]),
        "a phrase \"near bike\""
    );
    assert_eq!(
        matches(&c, "title:bike").await,
        set(&[]),
        "a phrase \"title bike\""
    );
    assert_eq!(matches(&c, "-").await, set(&[]));
    assert_eq!(
        matches(&c, "-bike").await,
        set(&[]),
        "only exclusions: nothing to look for"
    );
    assert_eq!(
        matches(&c, "bike - carbon").await,
        set(&["Carbon road bike"]),
        "a lone - is ignored"
    );
    assert_eq!(
        matches(&c, "'; DROP TABLE purchase_requests; --").await,
        set(&[])
    );
    // Still all there.
    assert_eq!(found(a, s, &[]).await.len(), CORPUS.len());
}

#[tokio::test]
async fn a_request_is_findable_as_soon_as_its_201_is_answered() {
    let app = TestApp::spawn().await;
    let buyer = app.buyer().await;
    let seller = app.seller().await;
    for i in 0..5 {
        let word = format!("zebracorn{i}");
        let created = app
            .post_request(
                &buyer,
                json!({ "title": format!("A {word} lamp"), "description": "Brass, working.", "category": "home" }),
            )
            .await;
        let page = list(&app, &seller, &[("q", &word)]).await.expect(200);
        assert_eq!(page["items"][0]["id"], created["id"], "q={word}: {page}");
        let page = list(&app, &buyer, &[("q", "brass"), ("sort", "newest")])
            .await
            .expect(200);
        assert_eq!(page["items"][0]["id"], created["id"], "{page}");
    }
}

#[tokio::test]
async fn buyers_find_only_their_own_requests() {
    let c = Corpus::new().await;
    let other = c.app.buyer().await;
    let theirs = c
        .app
        .post_request(
            &other,
            json!({ "title": "Folding bike", "description": "For the train.", "category": "misc", "budget": { "amount": "300.00", "currency": "USD" } }),
        )
        .await;
    assert_eq!(
        found(&c.app, &other, &[("q", "bike")]).await,
        ["Folding bike"]
    );
    assert_eq!(
        found(&c.app, &other, &[("minBudget", "1"), ("sort", "budget")]).await,
        ["Folding bike"]
    );
    let mine = found(&c.app, &c.buyer, &[("q", "bike")]).await;
    assert_eq!(mine.into_iter().collect::<BTreeSet<_>>(), set(BIKES));
    assert!(
        !found(&c.app, &c.buyer, &[("q", "folding")])
            .await
            .contains(&"Folding bike".to_owned()),
        "another buyer's request {} stays hidden",
        theirs["id"]
    );
    // The seller sees both buyers' open requests.
    assert!(
        found(&c.app, &c.seller, &[("q", "folding")])
            .await
            .contains(&"Folding bike".to_owned())
    );
}

#[tokio::test]
async fn sellers_find_only_open_requests_unless_they_made_an_offer() {
    let c = Corpus::new().await;
    c.app.cancel_request(&c.buyer, c.id("Mountain bike")).await;
    let bikes_but_mountain: BTreeSet<String> = set(BIKES)
        .into_iter()
        .filter(|t| t != "Mountain bike")
        .collect();
    assert_eq!(matches(&c, "bike").await, bikes_but_mountain);
    assert_eq!(
        found(
            &c.app,
            &c.seller,
            &[("q", "mountain"), ("status", "cancelled")]
        )
        .await,
        Vec::<String>::new(),
        "a cancelled request the seller never offered on stays hidden"
    );
    // Its buyer still finds it.
    assert!(
        found(&c.app, &c.buyer, &[("q", "mountain")])
            .await
            .contains(&"Mountain bike".to_owned())
    );
    // Admins search the open ones, or the status they ask for.
    let admin = c.app.admin().await;
    assert_eq!(
        found(
            &c.app,
            &admin,
            &[("q", "mountain"), ("status", "cancelled")]
        )
        .await,
        ["Mountain bike"]
    );
    assert_eq!(
        found(&c.app, &admin, &[("q", "mountain")]).await,
        Vec::<String>::new()
    );
}
