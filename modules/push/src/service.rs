//! The rules of web push: subscriptions (one user's browsers), and deliveries (one push of
//! one notification to one subscription, sent once).
//!
//! A notification for a user with push on, the kind not muted and no socket connected on
//! any node becomes one `push_deliveries` row per subscription and, in the same transaction,
//! one durable timer job (`push.deliver`) per row, due at once. The job sends; the row's
//! `state` is written before (`sending`) and after (`sent`, `failed`; a `gone` subscription
//! is deleted with its rows) the request, so a job that runs again (a retry, or after a
//! crash once its lease ran out) never sends a delivered push twice. The one window left is
//! a crash after the push service accepted and before `sent` was written: that push is sent
//! again, and its `Topic` makes the push service replace the first copy if the device has
//! not fetched it yet. 429 and 5xx answers are retried through the same job with growing
//! pauses, never shorter than the service's `Retry-After`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use catalog::Role;
use catalog::contract::{Notification, Page, new_id, now};
use kernel::pagination::{PageParams, page};
use kernel::ports::Presence;
use kernel::timers::{self, Job, NewTimer, Outcome};
use kernel::{ApiError, AuthUser, EventBus, Result};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
};
use serde_json::json;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::PushConfig;
use crate::dto::{PushFailure, PushSubscription, SubscribeBody};
use crate::entity::{delivery, subscription};
use crate::guard::Guard;
use crate::message::{self, Message, Urgency};
use crate::sender::{BadKey, Keys, Sender, Sent, TTL_SECS};
use crate::vapid::Vapid;

/// The timer kind that makes each attempt of a delivery. Never rename it.
pub const DELIVER: &str = "push.deliver";

/// Attempts of one delivery before it is given up as `failed`.
pub const MAX_ATTEMPTS: u32 = 8;

/// The timer kind that removes settled deliveries once they can no longer matter.
pub const PRUNE: &str = "push.prune";

/// How long a settled delivery is kept. A notification older than the push `TTL` is never
/// pushed (see [`PushService::on_notification`]), so a week leaves a wide margin for the
/// row's only job: making a second handling of the same notification send nothing.
pub const KEEP_DELIVERIES: Duration = Duration::from_secs(7 * 86_400);

/// Subscriptions kept per user; subscribing another browser beyond it drops the oldest.
pub const MAX_SUBSCRIPTIONS_PER_USER: u64 = 20;

/// `marketplace_pushes_total{outcome}`.
pub const PUSHES: &str = "marketplace_pushes_total";
/// Every outcome of a push attempt: accepted by the push service, to be tried again, the
/// subscription gone (deleted), or given up.
pub const OUTCOMES: [&str; 4] = ["sent", "retried", "gone", "failed"];

/// The state of a delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Made, its first attempt not started.
    Pending,
    /// An attempt is under way (or its node died during it).
    Sending,
    /// Waiting for a retry.
    Retrying,
    Sent,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Retrying => "retrying",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    fn is_final(s: &str) -> bool {
        s == Self::Sent.as_str() || s == Self::Failed.as_str()
    }
}

fn count(outcome: &'static str) {
    metrics::counter!(PUSHES, "outcome" => outcome).increment(1);
}

/// Everything web push needs at run time, shared by the routes, the bus subscriber and the
/// timer handler.
pub struct PushService {
    db: DatabaseConnection,
    bus: EventBus,
    config: PushConfig,
    guard: Guard,
    sender: Sender,
    presence: Arc<dyn Presence>,
    vapid: OnceCell<Arc<Vapid>>,
}

impl PushService {
    pub fn new(bus: EventBus, config: PushConfig, presence: Arc<dyn Presence>) -> Self {
        let guard = Guard {
            allow_http: config.allow_http_endpoints,
        };
        Self {
            db: bus.db().clone(),
            bus,
            sender: Sender::new(guard),
            guard,
            config,
            presence,
            vapid: OnceCell::new(),
        }
    }

    /// The server's VAPID key, loaded (or made and stored) on first use.
    pub async fn vapid(&self) -> Result<Arc<Vapid>> {
        self.vapid
            .get_or_try_init(|| async {
                let configured = self
                    .config
                    .vapid_private_key
                    .as_ref()
                    .map(secrecy::ExposeSecret::expose_secret);
                Vapid::load(&self.db, configured, &self.config.vapid_subject)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// Adds (or refreshes) a browser subscription of `caller`. Answers it and whether it is
    /// new (201) or was the caller's already (200). An endpoint that another user had
    /// subscribed moves to the caller: a browser's endpoint reaches whoever uses it now.
    #[tracing::instrument(skip_all, fields(user_id = %caller.id))]
    pub async fn subscribe(
        &self,
        caller: AuthUser,
        body: SubscribeBody,
    ) -> Result<(PushSubscription, bool)> {
        let keys = Keys::decode(&body.keys.p256dh, &body.keys.auth).map_err(|e| {
            let field = match e {
                BadKey::P256dh => "keys.p256dh",
                BadKey::Auth => "keys.auth",
            };
            ApiError::invalid(field, e.to_string())
        })?;
        self.guard
            .check(&body.endpoint)
            .await
            .map_err(|refused| ApiError::invalid("endpoint", refused.to_string()))?;
        // Kept as given (push services compare it byte for byte); keys in one spelling.
        let (p256dh, auth) = keys.encode();
        // A concurrent subscribe of the same endpoint may win the insert: then look again.
        for _ in 0..2 {
            if let Some(done) = self
                .try_subscribe(caller, &body.endpoint, &p256dh, &auth)
                .await?
            {
                return Ok(done);
            }
        }
        Err(ApiError::Unavailable {
            code: kernel::error::ErrorCode::Busy,
            detail: "this endpoint is being subscribed by another request; retry".into(),
        })
    }

    /// One try of [`PushService::subscribe`]; `None` when another request inserted the same
    /// endpoint meanwhile.
    async fn try_subscribe(
        &self,
        caller: AuthUser,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<Option<(PushSubscription, bool)>> {
        let tx = self.bus.begin().await?;
        let existing = subscription::Entity::find()
            .filter(subscription::Column::Endpoint.eq(endpoint))
            .one(tx.conn())
            .await?;
        if let Some(row) = &existing
            && row.user_id == caller.id
        {
            if row.p256dh != p256dh || row.auth != auth {
                // The browser renewed its keys for the same endpoint.
                subscription::Entity::update(subscription::ActiveModel {
                    id: Set(row.id),
                    p256dh: Set(p256dh.to_owned()),
                    auth: Set(auth.to_owned()),
                    ..Default::default()
                })
                .exec(tx.conn())
                .await?;
            }
            tx.commit().await?;
            return Ok(Some((PushSubscription::from(row), false)));
        }
        if let Some(row) = existing {
            subscription::Entity::delete_by_id(row.id)
                .exec(tx.conn())
                .await?;
        }
        let row = subscription::Model {
            id: new_id(),
            user_id: caller.id,
            endpoint: endpoint.to_owned(),
            p256dh: p256dh.to_owned(),
            auth: auth.to_owned(),
            created_at: now(),
        };
        let inserted = subscription::Entity::insert(subscription::ActiveModel::from(row.clone()))
            .on_conflict(
                OnConflict::column(subscription::Column::Endpoint)
                    .do_nothing()
                    .to_owned(),
            )
            .try_insert()
            .exec_without_returning(tx.conn())
            .await?;
        if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
            return Ok(None);
        }
        let held = subscription::Entity::find()
            .filter(subscription::Column::UserId.eq(caller.id))
            .count(tx.conn())
            .await?;
        if held > MAX_SUBSCRIPTIONS_PER_USER {
            let oldest: Vec<Uuid> = subscription::Entity::find()
                .select_only()
                .column(subscription::Column::Id)
                .filter(subscription::Column::UserId.eq(caller.id))
                .order_by_asc(subscription::Column::Id)
                .limit(held - MAX_SUBSCRIPTIONS_PER_USER)
                .into_tuple()
                .all(tx.conn())
                .await?;
            subscription::Entity::delete_many()
                .filter(subscription::Column::Id.is_in(oldest))
                .exec(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(Some((PushSubscription::from(&row), true)))
    }

    /// The caller's subscriptions, newest first.
    pub async fn list(
        &self,
        caller: AuthUser,
        params: &PageParams,
    ) -> Result<Page<PushSubscription>> {
        let limit = params.limit()?;
        let cursor: Option<Uuid> = params.cursor()?;
        let mut query =
            subscription::Entity::find().filter(subscription::Column::UserId.eq(caller.id));
        if let Some(before) = cursor {
            query = query.filter(subscription::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(subscription::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let rows = page(rows, limit, |s| s.id);
        Ok(Page {
            items: rows.items.iter().map(PushSubscription::from).collect(),
            next_cursor: rows.next_cursor,
        })
    }

    /// Pushes that failed for good or are failing now (admins), newest first: what the
    /// admin console's "Mail and push failures" panel lists. Only the endpoint's origin is
    /// shown (its path is the subscription's secret).
    pub async fn failures(
        &self,
        caller: AuthUser,
        params: &PageParams,
    ) -> Result<Page<PushFailure>> {
        caller.require(&[Role::Admin])?;
        let limit = params.limit()?;
        let cursor: Option<Uuid> = params.cursor()?;
        let mut query = delivery::Entity::find().filter(
            delivery::Column::State.is_in([State::Failed.as_str(), State::Retrying.as_str()]),
        );
        if let Some(before) = cursor {
            query = query.filter(delivery::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(delivery::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let rows = page(rows, limit, |d| d.id);
        let subscriptions: HashMap<Uuid, subscription::Model> = subscription::Entity::find()
            .filter(
                subscription::Column::Id.is_in(
                    rows.items
                        .iter()
                        .map(|d| d.subscription_id)
                        .collect::<Vec<_>>(),
                ),
            )
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        Ok(Page {
            items: rows
                .items
                .into_iter()
                .filter_map(|d| {
                    let sub = subscriptions.get(&d.subscription_id)?;
                    Some(PushFailure {
                        id: d.id,
                        notification_id: d.notification_id,
                        user_id: sub.user_id,
                        subscription_id: sub.id,
                        endpoint_origin: url::Url::parse(&sub.endpoint)
                            .map(|u| u.origin().ascii_serialization())
                            .unwrap_or_default(),
                        state: d.state,
                        attempts: d.attempts,
                        last_error: d.last_error,
                        next_attempt_at: d.next_attempt_at,
                        updated_at: d.updated_at,
                    })
                })
                .collect(),
            next_cursor: rows.next_cursor,
        })
    }

    /// Removes one of the caller's subscriptions; someone else's or an unknown id is a 404.
    pub async fn unsubscribe(&self, caller: AuthUser, id: Uuid) -> Result<()> {
        let removed = subscription::Entity::delete_many()
            .filter(subscription::Column::Id.eq(id))
            .filter(subscription::Column::UserId.eq(caller.id))
            .exec(&self.db)
            .await?
            .rows_affected;
        if removed == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    /// A notification was created: when its recipient wants it pushed and is not connected
    /// anywhere, makes one delivery (and its job) per subscription. Idempotent: handling it
    /// again makes nothing new.
    #[tracing::instrument(skip_all, fields(notification_id = %n.id, user_id = %n.recipient_id))]
    pub async fn on_notification(&self, n: &Notification) -> Result<usize> {
        // Handled again long after (a dead letter retried days later): the push would be
        // stale, and its delivery rows may have been pruned.
        let age = (now() - n.created_at).to_std().unwrap_or_default();
        if age > Duration::from_secs(TTL_SECS) {
            return Ok(0);
        }
        let settings = notifications::settings_of(&self.db, n.recipient_id).await?;
        if !settings.pushes(&n.kind) {
            return Ok(0);
        }
        match self.presence.is_connected(n.recipient_id).await {
            Ok(true) => return Ok(0),
            Ok(false) => {}
            // Unknown (Redis did not answer): push. A push to someone who turns out to be
            // connected elsewhere is a duplicate alert; no push to someone who is not is a
            // lost one.
            Err(e) => tracing::warn!(error = %e, "presence unknown; pushing"),
        }
        let subs = subscription::Entity::find()
            .filter(subscription::Column::UserId.eq(n.recipient_id))
            .all(&self.db)
            .await?;
        if subs.is_empty() {
            return Ok(0);
        }
        let Message {
            payload,
            urgency,
            topic,
        } = message::message(n, &self.config.app_url);
        let tx = self.bus.begin().await?;
        let mut made = 0;
        for sub in subs {
            let at = now();
            let row = delivery::Model {
                id: new_id(),
                notification_id: n.id,
                subscription_id: sub.id,
                state: State::Pending.as_str().to_owned(),
                payload: payload.clone(),
                urgency: urgency.as_str().to_owned(),
                topic: topic.clone(),
                attempts: 0,
                last_error: None,
                next_attempt_at: None,
                created_at: at,
                updated_at: at,
            };
            let inserted = delivery::Entity::insert(delivery::ActiveModel::from(row.clone()))
                .on_conflict(
                    OnConflict::columns([
                        delivery::Column::NotificationId,
                        delivery::Column::SubscriptionId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .try_insert()
                .exec_without_returning(tx.conn())
                .await?;
            if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
                timers::schedule(
                    tx.conn(),
                    NewTimer {
                        kind: DELIVER,
                        key: row.id.to_string(),
                        payload: json!({ "deliveryId": row.id }),
                        run_at: at,
                    },
                )
                .await?;
                made += 1;
            }
        }
        tx.commit().await?;
        Ok(made)
    }

    /// One attempt of a delivery (the `push.deliver` job).
    #[tracing::instrument(skip_all, fields(job = %job.key, attempt = job.attempt))]
    pub async fn deliver(&self, job: &Job) -> Result<Outcome> {
        let Some(id) = job
            .payload
            .get("deliveryId")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            tracing::error!(payload = %job.payload, "push job without a delivery id; dropped");
            return Ok(Outcome::Done);
        };
        // Gone with its subscription, or settled by an earlier run of this job.
        let Some(row) = delivery::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(Outcome::Done);
        };
        if State::is_final(&row.state) {
            return Ok(Outcome::Done);
        }
        let Some(sub) = subscription::Entity::find_by_id(row.subscription_id)
            .one(&self.db)
            .await?
        else {
            return Ok(Outcome::Done);
        };
        let keys = match Keys::decode(&sub.p256dh, &sub.auth) {
            Ok(keys) => keys,
            Err(e) => {
                self.settle(id, State::Failed, Some(e.to_string()), None)
                    .await?;
                count("failed");
                return Ok(Outcome::Done);
            }
        };
        let vapid = self.vapid().await?;
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                Expr::value(State::Sending.as_str()),
            )
            .col_expr(
                delivery::Column::Attempts,
                Expr::col(delivery::Column::Attempts).add(1),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now()))
            .filter(delivery::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        let message = Message {
            payload: row.payload.clone(),
            urgency: Urgency::parse(&row.urgency),
            topic: row.topic.clone(),
        };
        match self
            .sender
            .send(&vapid, &sub.endpoint, &keys, &message)
            .await
        {
            Sent::Accepted => {
                self.settle(id, State::Sent, None, None).await?;
                count("sent");
                Ok(Outcome::Done)
            }
            Sent::Gone => {
                // Its deliveries go with it (foreign key, on delete cascade).
                subscription::Entity::delete_by_id(sub.id)
                    .exec(&self.db)
                    .await?;
                count("gone");
                tracing::info!(subscription_id = %sub.id, "push subscription gone; deleted");
                Ok(Outcome::Done)
            }
            Sent::Failed(error) => {
                tracing::warn!(%error, "push failed; not retried");
                self.settle(id, State::Failed, Some(error), None).await?;
                count("failed");
                Ok(Outcome::Done)
            }
            Sent::Retry { retry_after, error } => {
                let pause = retry_pause(job.attempt, retry_after);
                match pause {
                    Some(pause) if job.attempt < MAX_ATTEMPTS => {
                        let at = now() + chrono::Duration::from_std(pause).unwrap_or_default();
                        self.settle(id, State::Retrying, Some(error.clone()), Some(at))
                            .await?;
                        count("retried");
                        Ok(Outcome::Retry {
                            after: Some(pause),
                            error,
                        })
                    }
                    _ => {
                        tracing::warn!(%error, "push failed after its retries");
                        self.settle(id, State::Failed, Some(error), None).await?;
                        count("failed");
                        Ok(Outcome::Done)
                    }
                }
            }
        }
    }

    /// Makes sure the pruning job exists (one row cluster-wide: its key is fixed).
    pub async fn schedule_pruning(&self) -> Result<()> {
        timers::schedule(
            &self.db,
            NewTimer {
                kind: PRUNE,
                key: PRUNE.to_owned(),
                payload: json!({}),
                run_at: now() + chrono::Duration::hours(1),
            },
        )
        .await
    }

    /// Removes settled deliveries older than [`KEEP_DELIVERIES`]; runs again in an hour.
    pub async fn prune(&self) -> Result<Outcome> {
        let before = now() - chrono::Duration::from_std(KEEP_DELIVERIES).unwrap_or_default();
        let removed = delivery::Entity::delete_many()
            .filter(delivery::Column::State.is_in([State::Sent.as_str(), State::Failed.as_str()]))
            .filter(delivery::Column::UpdatedAt.lt(before))
            .exec(&self.db)
            .await?
            .rows_affected;
        if removed > 0 {
            tracing::info!(removed, "pruned settled push deliveries");
        }
        Ok(Outcome::At(now() + chrono::Duration::hours(1)))
    }

    async fn settle(
        &self,
        id: Uuid,
        state: State,
        error: Option<String>,
        next_attempt_at: Option<catalog::contract::Timestamp>,
    ) -> Result<()> {
        let error = error.map(|e| e.chars().take(1000).collect::<String>());
        delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(state.as_str()))
            .col_expr(delivery::Column::LastError, Expr::value(error))
            .col_expr(
                delivery::Column::NextAttemptAt,
                Expr::value(next_attempt_at),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now()))
            .filter(delivery::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// The pause before attempt `attempt + 1`: 5 s doubling (at most 5 minutes apart), never
/// shorter than the service's `Retry-After`. `None` when that is longer than the push's
/// `TTL`: by then it would be stale.
pub fn retry_pause(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    let ours = timers::backoff(Duration::from_secs(5), Duration::from_secs(300), attempt);
    let pause = ours.max(retry_after.unwrap_or_default());
    (pause <= Duration::from_secs(TTL_SECS)).then_some(pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_and_honour_retry_after() {
        assert_eq!(retry_pause(1, None), Some(Duration::from_secs(5)));
        assert_eq!(retry_pause(2, None), Some(Duration::from_secs(10)));
        assert_eq!(retry_pause(12, None), Some(Duration::from_secs(300)));
        assert_eq!(
            retry_pause(1, Some(Duration::from_secs(90))),
            Some(Duration::from_secs(90))
        );
        assert_eq!(retry_pause(1, Some(Duration::from_secs(2 * 86_400))), None);
    }
}
