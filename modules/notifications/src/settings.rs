//! Per-user notification settings: whether a user is mailed and pushed, which kinds they
//! muted, and whether their address refused mail for good. The email and push modules ask
//! [`settings_of`] before reaching a user who is not connected; a muted kind is still stored
//! and delivered live, only never mailed or pushed.

use catalog::contract::now;
use catalog::events::EventName;
use kernel::{ApiError, Result};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::entity::notification_setting as row;
use crate::subscribers::KINDS;

/// One user's notification settings. A user who never changed them has
/// [`Settings::default`]: email and push on, nothing muted, the address deliverable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Mail digests of what stayed unread (`PATCH` or one-click unsubscribe turn it off).
    pub email: bool,
    /// Web push to the user's subscriptions.
    pub push: bool,
    /// Kinds never mailed or pushed, in catalog order, without duplicates.
    pub muted_kinds: Vec<EventName>,
    /// The mail relay refused the address for good: never mail it again.
    pub email_undeliverable: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            email: true,
            push: true,
            muted_kinds: Vec::new(),
            email_undeliverable: false,
        }
    }
}

impl Settings {
    /// Did the user mute notifications of this kind (an event name such as
    /// `chat:new-message`)? An unknown kind is not muted.
    pub fn is_muted(&self, kind: &str) -> bool {
        self.muted_kinds.iter().any(|k| k.as_str() == kind)
    }

    /// May a notification of `kind` be mailed: email on, the address deliverable, the kind
    /// not muted.
    pub fn mails(&self, kind: &str) -> bool {
        self.email && !self.email_undeliverable && !self.is_muted(kind)
    }

    /// May a notification of `kind` be pushed: push on and the kind not muted.
    pub fn pushes(&self, kind: &str) -> bool {
        self.push && !self.is_muted(kind)
    }

    fn from_row(r: row::Model) -> Self {
        Self {
            email: r.email,
            push: r.push,
            muted_kinds: kinds_from_json(&r.muted_kinds),
            email_undeliverable: r.email_undeliverable,
        }
    }
}

/// A change of settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub email: Option<bool>,
    pub push: Option<bool>,
    /// Replaces the muted kinds.
    pub muted_kinds: Option<Vec<EventName>>,
}

/// Reads `values` as notification kinds, in catalog order without duplicates. A value that is
/// not a kind is a 422 naming `field`.
pub fn parse_kinds(field: &str, values: &[String]) -> Result<Vec<EventName>> {
    let mut kinds = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match KINDS.iter().find(|k| k.as_str() == value) {
            Some(kind) => kinds.push(*kind),
            None => {
                let allowed: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
                return Err(ApiError::invalid(
                    field,
                    format!(
                        "item {i} ({value:?}) is not a notification kind; expected one of: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(in_catalog_order(kinds))
}

fn in_catalog_order(kinds: Vec<EventName>) -> Vec<EventName> {
    KINDS.into_iter().filter(|k| kinds.contains(k)).collect()
}

/// The stored array, read leniently: a name that is no longer a kind (an event retired by a
/// later version) is dropped rather than failing every read.
fn kinds_from_json(value: &serde_json::Value) -> Vec<EventName> {
    let kinds = value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str())
                .filter_map(|s| KINDS.iter().find(|k| k.as_str() == s).copied())
                .collect()
        })
        .unwrap_or_default();
    in_catalog_order(kinds)
}

fn kinds_to_json(kinds: &[EventName]) -> serde_json::Value {
    serde_json::Value::from(kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>())
}

/// The settings of `user_id`: its row, or the defaults when it has none. Works on a pool or
/// inside a transaction.
pub async fn settings_of<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Settings> {
    Ok(row::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(Settings::from_row)
        .unwrap_or_default())
}

/// Applies `changes` to the settings of `user_id` (creating its row from the defaults when
/// it has none) in one statement, and answers the settings as they are now. Nothing to
/// change writes nothing.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    changes: Changes,
) -> Result<Settings> {
    let mut columns = Vec::new();
    let mut fresh = Settings::default();
    if let Some(email) = changes.email {
        fresh.email = email;
        columns.push(row::Column::Email);
    }
    if let Some(push) = changes.push {
        fresh.push = push;
        columns.push(row::Column::Push);
    }
    if let Some(kinds) = changes.muted_kinds {
        fresh.muted_kinds = in_catalog_order(kinds);
        columns.push(row::Column::MutedKinds);
    }
    if columns.is_empty() {
        return settings_of(db, user_id).await;
    }
    upsert(db, user_id, fresh, columns).await?;
    settings_of(db, user_id).await
}

/// Turns email off for `user_id` (one-click unsubscribe). Idempotent. `user_id` must be an
/// existing user (the row references `users`).
pub async fn set_email_off<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<()> {
    let fresh = Settings {
        email: false,
        ..Settings::default()
    };
    upsert(db, user_id, fresh, vec![row::Column::Email]).await
}

/// Marks the address of `user_id` undeliverable (the relay refused it for good): no more
/// email until it changes. Idempotent. `user_id` must be an existing user.
pub async fn mark_email_undeliverable<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<()> {
    let fresh = Settings {
        email_undeliverable: true,
        ..Settings::default()
    };
    upsert(db, user_id, fresh, vec![row::Column::EmailUndeliverable]).await
}

/// Inserts `fresh` as the row of `user_id`, or, when it has one, sets only `columns` (and
/// `updated_at`) from `fresh`: one statement, so concurrent changes of different fields
/// never undo each other.
async fn upsert<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    fresh: Settings,
    mut columns: Vec<row::Column>,
) -> Result<()> {
    columns.push(row::Column::UpdatedAt);
    let model = row::ActiveModel {
        user_id: Set(user_id),
        email: Set(fresh.email),
        push: Set(fresh.push),
        muted_kinds: Set(kinds_to_json(&fresh.muted_kinds)),
        email_undeliverable: Set(fresh.email_undeliverable),
        updated_at: Set(now()),
    };
    row::Entity::insert(model)
        .on_conflict(
            OnConflict::column(row::Column::UserId)
                .update_columns(columns)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_checked_collapsed_and_kept_in_catalog_order() {
        let got = parse_kinds(
            "mutedKinds",
            &[
                "dispute:opened".into(),
                "chat:new-message".into(),
                "dispute:opened".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![EventName::ChatNewMessage, EventName::DisputeOpened]
        );
        let err = parse_kinds("mutedKinds", &["request:created".into()]).unwrap_err();
        assert!(
            matches!(err, ApiError::Validation { ref errors, .. } if errors[0].field == "mutedKinds")
        );
    }

    #[test]
    fn stored_kinds_that_are_no_longer_kinds_are_dropped() {
        let stored = serde_json::json!(["offer:accepted", "gone:event", 3]);
        assert_eq!(kinds_from_json(&stored), vec![EventName::OfferAccepted]);
    }

    #[test]
    fn muted_kinds_are_neither_mailed_nor_pushed() {
        let s = Settings {
            muted_kinds: vec![EventName::ChatNewMessage],
            ..Settings::default()
        };
        assert!(!s.mails("chat:new-message") && !s.pushes("chat:new-message"));
        assert!(s.mails("offer:accepted") && s.pushes("offer:accepted"));
        let bounced = Settings {
            email_undeliverable: true,
            ..Settings::default()
        };
        assert!(!bounced.mails("offer:accepted") && bounced.pushes("offer:accepted"));
    }
}
