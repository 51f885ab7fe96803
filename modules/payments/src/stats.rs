//! Counts for operations (`marketplace_payouts{status}` and the admin console).

use std::collections::BTreeMap;

use catalog::contract::PayoutStatus;
use kernel::Result;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{DatabaseConnection, EntityTrait, QuerySelect};

use crate::entity::payout;

/// Every payout status, as stored.
pub const PAYOUT_STATUSES: [PayoutStatus; 4] = [
    PayoutStatus::Pending,
    PayoutStatus::Processing,
    PayoutStatus::Completed,
    PayoutStatus::Failed,
];

/// A payout status as stored and as the `status` label of `marketplace_payouts`.
pub fn status_name(status: PayoutStatus) -> &'static str {
    payout::status_str(status)
}

/// How many payouts are in each status (every status present, 0 when none).
///
/// Fails only when the database does.
pub async fn payouts_by_status(db: &DatabaseConnection) -> Result<BTreeMap<String, i64>> {
    let mut counts: BTreeMap<String, i64> = PAYOUT_STATUSES
        .iter()
        .map(|s| (status_name(*s).to_owned(), 0))
        .collect();
    let rows: Vec<(String, i64)> = payout::Entity::find()
        .select_only()
        .column(payout::Column::Status)
        .column_as(Expr::col(payout::Column::Id).count(), "n")
        .group_by(payout::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    for (status, n) in rows {
        counts.insert(status, n);
    }
    Ok(counts)
}
