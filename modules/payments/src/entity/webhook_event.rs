//! `webhook_events`: every authenticated callback, stored before it is answered.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `payment` or `payout`.
    pub kind: String,
    pub external_id: Option<String>,
    /// The provider's status word (`PAID`, `PARTIAL`, `unconfirmed`, `SUCCESS`, ...).
    pub provider_status: Option<String>,
    /// The triggering transaction id, when the callback names one.
    pub txid: Option<String>,
    /// `received` (being applied), `applied`, `duplicate`, `unmatched` or `rejected`.
    pub outcome: String,
    /// How it was authenticated: `signature`, `legacy_api_key` or `sandbox`.
    pub auth: String,
    /// Why it was rejected or left unmatched, for admins.
    pub detail: Option<String>,
    /// Set when the callback claimed more than it paid: `underpaid` (a `PAID` short of the
    /// invoice, kept `partially_paid`) or `other_currency` (a `PAID` in another fiat currency
    /// or crypto, rejected). Listed for admins under money that needs attention.
    pub claim_mismatch: Option<String>,
    /// The raw body as received (lossy UTF-8).
    pub body: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
