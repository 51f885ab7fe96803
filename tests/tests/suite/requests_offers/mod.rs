//! Purchase requests and offers: the buyer/seller story, visibility, every 4xx of both
//! sections, the accept race, pagination under inserts, and the events in the durable log.
//! Split along the story: [`requests`] (creating, seeing, listing, cancelling and completing
//! a request), [`offers`] (offers, negotiation, accepting) and [`log`] (what the durable log
//! holds after each change); the helpers they share are here.

use std::collections::HashSet;
use std::time::Duration;

use marketplace_tests::{OFFER_MESSAGE, TestApp, TestUser, eventually};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

mod log;
mod offers;
mod requests;

fn request_body(title: &str) -> Value {
    json!({
        "title": title,
        "description": "A used road bike in good shape, 56 cm frame.",
        "category": "bikes",
        "budget": { "amount": "450.00", "currency": "USD" }
    })
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect()
}

/// Sets a request's status behind the API's back, for the one state the API never reaches:
/// a cancelled request whose offer is still pending (cancelling rejects pending offers).
async fn force_status(app: &TestApp, request_id: &str, status: &str) {
    let db = app.db().await;
    let stmt = Query::update()
        .table(Alias::new("purchase_requests"))
        .value(Alias::new("status"), status)
        .and_where(Expr::col(Alias::new("id")).eq(Uuid::parse_str(request_id).expect("uuid")))
        .to_owned();
    let res = db.execute(&stmt).await.expect("update");
    assert_eq!(res.rows_affected(), 1);
}

/// Every durable event in the log, oldest first: (name, payload, audience).
async fn events(app: &TestApp) -> Vec<(String, Value, Value)> {
    use kernel::bus::entity::event;
    let db = app.db().await;
    let rows = event::Entity::find()
        .order_by_asc(event::Column::Id)
        .all(&db)
        .await
        .expect("events");
    rows.into_iter()
        .map(|r| (r.name, r.payload, r.audience))
        .collect()
}
