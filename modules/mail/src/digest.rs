//! The digest rules: when a user's unread notifications are mailed, which ones, and what a
//! relay's answer does (see the crate docs for the whole story).

use std::sync::Arc;
use std::time::Duration;

use catalog::Role;
use catalog::contract::{Notification, Page, Timestamp, new_id, now};
use catalog::events::{EventName, NotificationReceived};
use kernel::AuthUser;
use kernel::pagination::{PageParams, page};
use kernel::ports::Presence;
use kernel::timers::{self, Job, NewTimer, Outcome, TimerHandler};
use kernel::{ApiError, AppState, EventBus, Result, StoredEvent, Subscriber};
use lettre::message::Mailbox;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::entity::{Status, digest, item};
use crate::render;
use crate::smtp::{Mailer, SendError};
use crate::{EMAILS_TOTAL, MailConfig};

/// The timer kind of a user's digest; its key is the user id.
pub const KIND: &str = "mail.digest";

/// The durable cursor name of the scheduler. Never rename it.
pub const SCHEDULER: &str = "mail.digest-scheduler";

/// The most notifications one email lists (more due at once go in the next one).
const MAX_ITEMS: u64 = 200;

/// How long to wait before asking again when presence is unknown (Redis does not answer).
const PRESENCE_RETRY: Duration = Duration::from_secs(10);

fn count(outcome: &'static str) {
    metrics::counter!(EMAILS_TOTAL, "outcome" => outcome).increment(1);
}

/// `mail.digest-scheduler`: every `notification:received` (re)schedules its recipient's digest
/// timer at the notification's time plus the delay; a pending timer keeps the earlier time.
/// Without `SMTP_URL` it does nothing (its cursor still moves, so turning email on later does
/// not mail the past). Users with email off or an undeliverable address get no timer.
pub fn scheduler(state: &AppState, enabled: bool, delay: Duration) -> Arc<dyn Subscriber> {
    let bus = state.bus.clone();
    kernel::subscriber(
        SCHEDULER,
        &[EventName::NotificationReceived],
        move |event: StoredEvent| {
            let bus = bus.clone();
            async move {
                if !enabled {
                    return Ok(());
                }
                let Some(NotificationReceived(n)) = event.decode::<NotificationReceived>() else {
                    return Ok(());
                };
                let settings = notifications::settings_of(bus.db(), n.recipient_id).await?;
                if !settings.mails(&n.kind) {
                    return Ok(());
                }
                timers::schedule(
                    bus.db(),
                    NewTimer {
                        kind: KIND,
                        key: n.recipient_id.to_string(),
                        payload: serde_json::json!({ "userId": n.recipient_id }),
                        run_at: n.created_at + chrono_of(delay),
                    },
                )
                .await
            }
        },
    )
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Runs a user's digest timer.
pub struct DigestHandler {
    pub bus: EventBus,
    pub config: MailConfig,
    pub presence: Arc<dyn Presence>,
    pub mailer: Mailer,
}

#[async_trait::async_trait]
impl TimerHandler for DigestHandler {
    fn kind(&self) -> &'static str {
        KIND
    }
    /// 5 s, doubling, at most 5 minutes apart: the first retry within 10 s.
    fn backoff(&self, attempt: u32) -> Duration {
        timers::backoff(Duration::from_secs(5), Duration::from_secs(300), attempt)
    }
    async fn run(&self, job: &Job) -> Result<Outcome> {
        let Ok(user_id) = Uuid::parse_str(&job.key) else {
            tracing::error!(key = %job.key, "digest timer with a key that is not a user id; dropped");
            return Ok(Outcome::Done);
        };
        // A digest recorded before a crash or a temporary failure goes out first, as recorded.
        if let Some(pending) = self.pending_of(user_id).await? {
            match self.send(&pending).await? {
                Sent::Yes => {}
                Sent::Later(error) => return Ok(Outcome::Retry { after: None, error }),
            }
        }
        self.next(user_id).await
    }
}

/// What became of one send.
enum Sent {
    /// Accepted, refused for good, or nobody to send to: either way this digest is over.
    Yes,
    /// A temporary failure: try again later.
    Later(String),
}

impl DigestHandler {
    async fn pending_of(&self, user_id: Uuid) -> Result<Option<digest::Model>> {
        Ok(digest::Entity::find()
            .filter(digest::Column::UserId.eq(user_id))
            .filter(digest::Column::Status.eq(Status::Pending.as_str()))
            .order_by_asc(digest::Column::CreatedAt)
            .one(self.bus.db())
            .await?)
    }

    /// Looks at what is unread: records and sends the digest that is due, and answers when
    /// to look again.
    async fn next(&self, user_id: Uuid) -> Result<Outcome> {
        let at = now();
        let delay = chrono_of(self.config.delay);
        let settings = notifications::settings_of(self.bus.db(), user_id).await?;
        let unread = notifications::unread_until(self.bus.db(), user_id, at, MAX_ITEMS * 4).await?;
        let mailed = self.already_in_digests(&unread).await?;
        let candidates: Vec<Notification> = unread
            .into_iter()
            .filter(|n| !mailed.contains(&n.id) && !settings.is_muted(&n.kind))
            .collect();
        let Some(plan) = plan(&candidates, at, delay) else {
            return Ok(Outcome::Done);
        };
        let (due, after) = match plan {
            Plan::Wait(until) => return Ok(Outcome::At(until)),
            Plan::Send { due, then } => (due, then),
        };
        let due: Vec<Notification> = due.into_iter().take(MAX_ITEMS as usize).collect();
        let next = match after {
            Some(at) => Outcome::At(at),
            None => Outcome::Done,
        };
        let suppressed = if !settings.email || settings.email_undeliverable {
            true
        } else {
            match self.presence.is_connected(user_id).await {
                Ok(connected) => connected,
                Err(e) => {
                    tracing::debug!(error = %e, %user_id, "presence unknown; the digest waits");
                    return Ok(Outcome::At(now() + chrono_of(PRESENCE_RETRY)));
                }
            }
        };
        let status = if suppressed {
            Status::Suppressed
        } else {
            Status::Pending
        };
        let Some(recorded) = self.record(user_id, &due, status).await? else {
            // Another run recorded them meanwhile (a lost lease): look again.
            return Ok(Outcome::At(now()));
        };
        if suppressed {
            count("suppressed");
            return Ok(next);
        }
        match self.send(&recorded).await? {
            Sent::Yes => Ok(next),
            Sent::Later(error) => Ok(Outcome::Retry { after: None, error }),
        }
    }

    async fn already_in_digests(&self, unread: &[Notification]) -> Result<Vec<Uuid>> {
        if unread.is_empty() {
            return Ok(Vec::new());
        }
        Ok(item::Entity::find()
            .filter(item::Column::NotificationId.is_in(unread.iter().map(|n| n.id)))
            .all(self.bus.db())
            .await?
            .into_iter()
            .map(|i| i.notification_id)
            .collect())
    }

    /// Writes the digest and its items in one transaction. `None` when one of them is in a
    /// digest already (the items' key refused it): nothing is written then.
    async fn record(
        &self,
        user_id: Uuid,
        due: &[Notification],
        status: Status,
    ) -> Result<Option<digest::Model>> {
        let tx = self.bus.begin().await?;
        let row = digest::Model {
            id: new_id(),
            user_id,
            status: status.as_str().to_owned(),
            attempts: 0,
            last_error: None,
            created_at: now(),
            sent_at: None,
        };
        digest::Entity::insert(digest::ActiveModel::from(row.clone()))
            .exec_without_returning(tx.conn())
            .await?;
        let items = due.iter().map(|n| item::ActiveModel {
            notification_id: Set(n.id),
            digest_id: Set(row.id),
        });
        match item::Entity::insert_many(items)
            .exec_without_returning(tx.conn())
            .await
        {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Sends a recorded digest and stores what became of it.
    async fn send(&self, row: &digest::Model) -> Result<Sent> {
        let db = self.bus.db();
        let ids: Vec<Uuid> = item::Entity::find()
            .filter(item::Column::DigestId.eq(row.id))
            .all(db)
            .await?
            .into_iter()
            .map(|i| i.notification_id)
            .collect();
        let listed = notifications::by_ids(db, row.user_id, &ids).await?;
        let user = auth::user(db, row.user_id).await?;
        let to = user
            .as_ref()
            .and_then(|u| u.email.parse::<lettre::Address>().ok().map(|a| (u, a)));
        let Some((user, address)) = to.filter(|_| !listed.is_empty()) else {
            self.finish(row.id, Status::Suppressed, None).await?;
            count("suppressed");
            return Ok(Sent::Yes);
        };
        let items: Vec<render::Item> = listed
            .iter()
            .map(|n| render::Item {
                title: n.title.clone(),
                body: n.body.clone(),
                url: render::link(&self.config.app_url, n),
            })
            .collect();
        let unsubscribe = format!(
            "{}/api/email/unsubscribe?token={}",
            self.config.public_url,
            self.config.signer.token(row.user_id)
        );
        let message = render::message(
            &self.mailer.from,
            Mailbox::new(Some(user.name.clone()), address),
            &items,
            &format!("{}/notifications", self.config.app_url),
            &unsubscribe,
        )
        .map_err(|e| ApiError::Internal(format!("digest email not built: {e}")))?;
        match self.mailer.send(message).await {
            Ok(()) => {
                self.finish(row.id, Status::Sent, None).await?;
                count("sent");
                Ok(Sent::Yes)
            }
            Err(SendError::Permanent(error)) => {
                tracing::warn!(user_id = %row.user_id, %error, "the relay refused the address for good; no more email to it");
                notifications::mark_email_undeliverable(db, row.user_id).await?;
                self.finish(row.id, Status::Bounced, Some(error)).await?;
                count("bounced");
                Ok(Sent::Yes)
            }
            Err(SendError::Temporary(error)) => {
                tracing::warn!(user_id = %row.user_id, %error, "digest not sent; retried later");
                digest::Entity::update_many()
                    .col_expr(
                        digest::Column::Attempts,
                        Expr::col(digest::Column::Attempts).add(1),
                    )
                    .col_expr(digest::Column::LastError, Expr::value(error.clone()))
                    .filter(digest::Column::Id.eq(row.id))
                    .exec(db)
                    .await?;
                count("retried");
                Ok(Sent::Later(error))
            }
        }
    }

    async fn finish(&self, id: Uuid, status: Status, error: Option<String>) -> Result<()> {
        let sent_at: Option<Timestamp> = (status == Status::Sent).then(now);
        digest::Entity::update_many()
            .col_expr(digest::Column::Status, Expr::value(status.as_str()))
            .col_expr(digest::Column::SentAt, Expr::value(sent_at))
            .col_expr(digest::Column::LastError, Expr::value(error))
            .col_expr(
                digest::Column::Attempts,
                Expr::col(digest::Column::Attempts).add(1),
            )
            .filter(digest::Column::Id.eq(id))
            .exec(self.bus.db())
            .await?;
        Ok(())
    }
}

/// What to do with a user's candidates (unread, not mailed, not muted; oldest first).
#[derive(Debug, PartialEq)]
enum Plan {
    /// Nothing due yet, or the window of the earliest due one is still open: look at this time.
    Wait(Timestamp),
    /// Mail these now; look again at `then` for the rest.
    Send {
        due: Vec<Notification>,
        then: Option<Timestamp>,
    },
}

/// The digest rule. A notification is due `delay` after it was created. The earliest due one
/// opens a window of one delay: everything created within it goes in the same email, so the
/// email waits until the last of those is due too. `None` when there is nothing at all.
fn plan(candidates: &[Notification], at: Timestamp, delay: chrono::Duration) -> Option<Plan> {
    let earliest = candidates.iter().map(|n| n.created_at).min()?;
    if earliest + delay > at {
        return Some(Plan::Wait(earliest + delay));
    }
    let window_end = earliest + delay;
    let last_in_window = candidates
        .iter()
        .map(|n| n.created_at)
        .filter(|c| *c <= window_end)
        .max()
        .unwrap_or(earliest);
    if last_in_window + delay > at {
        return Some(Plan::Wait(last_in_window + delay));
    }
    let (due, rest): (Vec<&Notification>, Vec<&Notification>) =
        candidates.iter().partition(|n| n.created_at + delay <= at);
    Some(Plan::Send {
        due: due.into_iter().cloned().collect(),
        then: rest.iter().map(|n| n.created_at + delay).min(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(created_secs: i64) -> Notification {
        Notification {
            id: new_id(),
            recipient_id: Uuid::nil(),
            kind: "offer:accepted".into(),
            title: "t".into(),
            body: "b".into(),
            data: serde_json::json!({}),
            read_at: None,
            created_at: chrono::DateTime::from_timestamp(1_000_000 + created_secs, 0).unwrap(),
        }
    }

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn nothing_is_due_before_the_delay() {
        let d = chrono::Duration::seconds(900);
        assert_eq!(plan(&[], at(0), d), None);
        assert_eq!(plan(&[n(0)], at(899), d), Some(Plan::Wait(at(900))));
    }

    #[test]
    fn notifications_within_one_delay_of_the_first_go_in_one_email() {
        let d = chrono::Duration::seconds(900);
        let all = [n(0), n(300), n(900), n(1000)];
        // At 900 the first is due, but the ones at 300 and 900 are in its window.
        assert_eq!(plan(&all, at(900), d), Some(Plan::Wait(at(1800))));
        match plan(&all, at(1800), d) {
            Some(Plan::Send { due, then }) => {
                assert_eq!(due.len(), 3);
                assert_eq!(then, Some(at(1900)));
            }
            other => panic!("{other:?}"),
        }
    }
}

/// An email that failed, for admins.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailFailure {
    /// The digest.
    pub id: Uuid,
    pub user_id: Uuid,
    /// The recipient's address (`null` when the account is gone).
    pub email: Option<String>,
    /// `bounced` (refused for good: the address is undeliverable) or `failing` (temporary
    /// failures so far; retried).
    #[schema(example = "bounced")]
    pub state: String,
    pub attempts: i32,
    /// The relay's answer or the connection error of the last attempt.
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Bounced digests and digests failing now, newest first (admins).
pub async fn failures(
    db: &DatabaseConnection,
    caller: AuthUser,
    params: &PageParams,
) -> Result<Page<MailFailure>> {
    caller.require(&[Role::Admin])?;
    let limit = params.limit()?;
    let cursor: Option<Uuid> = params.cursor()?;
    let mut query = digest::Entity::find().filter(
        Condition::any()
            .add(digest::Column::Status.eq(Status::Bounced.as_str()))
            .add(
                Condition::all()
                    .add(digest::Column::Status.eq(Status::Pending.as_str()))
                    .add(digest::Column::Attempts.gt(0)),
            ),
    );
    if let Some(before) = cursor {
        query = query.filter(digest::Column::Id.lt(before));
    }
    let rows = query
        .order_by_desc(digest::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let rows = page(rows, limit, |d| d.id);
    let users = auth::users(db, rows.items.iter().map(|d| d.user_id)).await?;
    Ok(Page {
        items: rows
            .items
            .into_iter()
            .map(|d| MailFailure {
                id: d.id,
                user_id: d.user_id,
                email: users.get(&d.user_id).map(|u| u.email.clone()),
                state: if d.status == Status::Bounced.as_str() {
                    "bounced"
                } else {
                    "failing"
                }
                .to_owned(),
                attempts: d.attempts,
                last_error: d.last_error,
                created_at: d.created_at,
            })
            .collect(),
        next_cursor: rows.next_cursor,
    })
}
