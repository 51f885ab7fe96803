//! Dead letters: an event a [`Delivery::OncePerCluster`](super::Delivery) subscriber still
//! failed on after its retries. It is kept (one row per subscriber and event), retried by the
//! lease holder with pauses that double from `dead_letter_backoff` up to
//! `dead_letter_backoff_max` (at most 10 minutes) until it succeeds, and the subscriber's cursor
//! moves on so later events keep flowing. An admin can ask for a retry now
//! ([`EventBus::retry_dead_letter`]); it still runs on the lease holder.

use crate::error::ErrorCode;
use std::time::Duration;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::time::Instant;
use uuid::Uuid;

use super::entity::{dead_letter, event};
use super::{DEAD_LETTERS_CHANNEL, DispatchOptions, EventBus, StoredEvent, Subscriber};
use crate::error::ApiError;
use catalog::contract::{Timestamp, now};

/// Dead letters retried per look; more due ones are taken on the next loop.
const RETRY_BATCH: u64 = 20;

/// What an admin's "retry now" came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The handler succeeded; the dead letter is resolved.
    Succeeded,
    /// The handler failed again (the error); the next automatic retry is scheduled.
    Failed(String),
    /// No node holding the subscriber's lease ran it within the wait; it is due now and will
    /// run as soon as one does.
    Pending,
}

/// The pause before the next retry of a dead letter that has had `attempts` attempts.
fn pause(attempts: i32, options: &DispatchOptions) -> Duration {
    let retries = (attempts.max(0) as u32).saturating_sub(options.max_attempts.max(1));
    let cap = options
        .dead_letter_backoff_max
        .min(Duration::from_secs(600))
        .max(options.dead_letter_backoff);
    options
        .dead_letter_backoff
        .saturating_mul(2u32.saturating_pow(retries.min(30)))
        .min(cap)
}

fn later(after: Duration) -> Timestamp {
    now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX)
}

/// The `Instant` of a database time (now when it is past).
fn instant_of(at: Timestamp) -> Instant {
    let wait = (at - now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + wait
}

impl EventBus {
    /// Stores (or re-opens) the dead letter of `subscriber` for `event`; returns when it is
    /// due for its first retry.
    pub(super) async fn record_dead_letter(
        &self,
        subscriber: &str,
        event: &StoredEvent,
        attempts: u32,
        error: &str,
        options: &DispatchOptions,
    ) -> Result<Instant, ApiError> {
        let db = self.db();
        let at = now();
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        let existing = dead_letter::Entity::find()
            .filter(dead_letter::Column::Subscriber.eq(subscriber))
            .filter(dead_letter::Column::EventId.eq(event.id))
            .one(db)
            .await?;
        let next = later(options.dead_letter_backoff);
        match existing {
            Some(row) => {
                let mut row = row.into_active_model();
                let total = row.attempts.as_ref().saturating_add(attempts);
                row.attempts = Set(total);
                row.last_error = Set(error.to_owned());
                row.last_failed_at = Set(at);
                row.next_retry_at = Set(Some(next));
                row.resolved_at = Set(None);
                row.update(db).await?;
            }
            None => {
                dead_letter::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    subscriber: Set(subscriber.to_owned()),
                    event_id: Set(event.id),
                    event_name: Set(event.name.as_str().to_owned()),
                    attempts: Set(attempts),
                    last_error: Set(error.to_owned()),
                    first_failed_at: Set(at),
                    last_failed_at: Set(at),
                    next_retry_at: Set(Some(next)),
                    resolved_at: Set(None),
                }
                .insert(db)
                .await?;
            }
        }
        tracing::warn!(
            subscriber, event_id = event.id, event = %event.name,
            "event kept as a dead letter; later events keep flowing"
        );
        Ok(instant_of(next))
    }

    /// Retries the due dead letters of `sub` once each; returns when the next one is due
    /// (`None`: there is none). A database error postpones the look by `poll_interval`.
    pub(super) async fn retry_due_dead_letters(
        &self,
        sub: &dyn Subscriber,
        options: &DispatchOptions,
    ) -> Option<Instant> {
        match self.retry_due(sub, options).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(subscriber = sub.name(), error = %e, "cannot retry dead letters now");
                Some(Instant::now() + options.poll_interval)
            }
        }
    }

    async fn retry_due(
        &self,
        sub: &dyn Subscriber,
        options: &DispatchOptions,
    ) -> Result<Option<Instant>, ApiError> {
        let db = self.db();
        let name = sub.name();
        let due = dead_letter::Entity::find()
            .filter(dead_letter::Column::Subscriber.eq(name))
            .filter(dead_letter::Column::ResolvedAt.is_null())
            .filter(dead_letter::Column::NextRetryAt.lte(now()))
            .order_by_asc(dead_letter::Column::NextRetryAt)
            .limit(RETRY_BATCH)
            .all(db)
            .await?;
        for row in due {
            let stored = event::Entity::find_by_id(row.event_id)
                .one(db)
                .await?
                .and_then(StoredEvent::from_row);
            let result = match &stored {
                Some(e) => super::attempt_once(sub, e).await,
                None => Err("the event is no longer in the event log".to_owned()),
            };
            let attempts = row.attempts.saturating_add(1);
            let (id, event_id) = (row.id, row.event_id);
            let mut row = row.into_active_model();
            row.attempts = Set(attempts);
            match result {
                Ok(()) => {
                    row.next_retry_at = Set(None);
                    row.resolved_at = Set(Some(now()));
                    tracing::info!(subscriber = name, event_id, %id, "dead letter handled on retry");
                }
                Err(error) => {
                    let next = pause(attempts, options);
                    tracing::warn!(subscriber = name, event_id, %id, error = %error, next_in_secs = next.as_secs(),
                        "dead letter failed again");
                    row.last_error = Set(error);
                    row.last_failed_at = Set(now());
                    row.next_retry_at = Set(Some(later(next)));
                }
            }
            row.update(db).await?;
        }
        let next: Option<Option<Timestamp>> = dead_letter::Entity::find()
            .select_only()
            .column_as(dead_letter::Column::NextRetryAt.min(), "next")
            .filter(dead_letter::Column::Subscriber.eq(name))
            .filter(dead_letter::Column::ResolvedAt.is_null())
            .into_tuple()
            .one(db)
            .await?;
        Ok(next.flatten().map(instant_of))
    }

    /// Asks the holder of the subscriber's lease (this node or another) to retry one dead
    /// letter now, and waits up to `wait` for the attempt. 404 for an unknown id, 409
    /// `dead_letter_resolved` when it needs no retry.
    pub async fn retry_dead_letter(
        &self,
        id: Uuid,
        wait: Duration,
    ) -> Result<(RetryOutcome, dead_letter::Model), ApiError> {
        let db = self.db();
        let row = dead_letter::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(ApiError::NotFound)?;
        if row.resolved_at.is_some() {
            return Err(ApiError::conflict(
                ErrorCode::DeadLetterResolved,
                "this dead letter was handled already",
            ));
        }
        let before = row.attempts;
        dead_letter::Entity::update_many()
            .col_expr(dead_letter::Column::NextRetryAt, Expr::value(now()))
            .filter(dead_letter::Column::Id.eq(id))
            .filter(dead_letter::Column::ResolvedAt.is_null())
            .exec(db)
            .await?;
        self.wake_dead_letters();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [DEAD_LETTERS_CHANNEL.into(), row.subscriber.clone().into()],
            ))
            .await?;
        }
        let deadline = Instant::now() + wait;
        let mut latest = row;
        loop {
            if latest.resolved_at.is_some() {
                return Ok((RetryOutcome::Succeeded, latest));
            }
            if latest.attempts > before {
                return Ok((RetryOutcome::Failed(latest.last_error.clone()), latest));
            }
            if Instant::now() >= deadline {
                return Ok((RetryOutcome::Pending, latest));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            latest = dead_letter::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(ApiError::NotFound)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_the_first_and_stop_at_the_cap() {
        let o = DispatchOptions {
            max_attempts: 3,
            dead_letter_backoff: Duration::from_secs(10),
            dead_letter_backoff_max: Duration::from_secs(600),
            ..Default::default()
        };
        assert_eq!(pause(3, &o), Duration::from_secs(10));
        assert_eq!(pause(4, &o), Duration::from_secs(20));
        assert_eq!(pause(6, &o), Duration::from_secs(80));
        assert_eq!(pause(1000, &o), Duration::from_secs(600));
        let wild = DispatchOptions {
            dead_letter_backoff_max: Duration::from_secs(100_000),
            ..o
        };
        assert_eq!(
            pause(1000, &wild),
            Duration::from_secs(600),
            "never beyond 10 minutes"
        );
    }
}
