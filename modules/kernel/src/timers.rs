//! Durable timers: the one mechanism for work that must happen later (email digests, push
//! retries, the automatic completion of delivered requests, review deadlines, upload cleanup).
//!
//! A job is a row of the `timers` table: a `kind` (which handler runs it), a `key` unique per
//! kind (so the same job is never scheduled twice), a JSON `payload` and a `run_at`. It is
//! scheduled with [`schedule`] on any connection, most usefully inside the [`crate::Tx`] of
//! the change that calls for it, so the job exists if and only if the change does.
//!
//! Every node runs [`start`] with the handlers its modules registered ([`crate::Module::timers`]).
//! A due job is claimed with one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` on
//! PostgreSQL (several nodes claim disjoint jobs; SQLite serializes writers by itself), which
//! gives it a lease (`locked_until`, renewed while the handler runs). A node killed mid-job
//! stops renewing, and the job is claimed again once the lease has run out: handlers must
//! therefore be idempotent (they run at least once; a handler that does its work in one
//! transaction can make it exactly once with [`Job::complete_in`]).
//!
//! What a handler answers:
//! - [`Outcome::Done`]: the row is deleted (unless the job was scheduled again meanwhile: then
//!   it runs again, see [`schedule`]).
//! - [`Outcome::At`]: run again at that time (not a failure; attempts start over).
//! - [`Outcome::Retry`] or an error (or a panic): retried after a pause that grows with each
//!   attempt ([`TimerHandler::backoff`]); after [`TimerHandler::max_attempts`] the row is kept
//!   as failed (`failed_at`), logged, listed by [`failed`] and retried only when asked
//!   ([`retry_failed`]) or when the same job is scheduled again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, Statement,
};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::error::ApiError;
use catalog::contract::{Timestamp, new_id, now};

/// The `timers` table. Created by the `migrations` crate.
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "timers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub kind: String,
        /// Unique per kind: scheduling an existing (kind, key) changes that row (see
        /// [`super::schedule`]).
        pub key: String,
        pub payload: Json,
        pub run_at: DateTimeUtc,
        /// Attempts so far in the current series (a claim counts as one; an
        /// [`super::Outcome::At`] starts a new series).
        pub attempts: i32,
        pub last_error: Option<String>,
        /// Set while a node runs the job; another node may take it once this has passed.
        pub locked_until: Option<DateTimeUtc>,
        /// Which claim holds the lease: only that claim may finish or release the job.
        pub lease_id: Option<Uuid>,
        /// Bumped by every [`super::schedule`] of this (kind, key): a job scheduled again while
        /// it runs is not deleted by that run.
        pub generation: i64,
        /// Set when the last attempt failed: the job waits for an admin or a new schedule.
        pub failed_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::Model as Row;

/// A job to schedule.
#[derive(Debug, Clone)]
pub struct NewTimer {
    /// Which handler runs it ([`TimerHandler::kind`]).
    pub kind: &'static str,
    /// Unique per kind (at most 255 characters): what makes two schedules the same job.
    pub key: String,
    pub payload: Value,
    pub run_at: Timestamp,
}

/// Schedules a job on `conn` (a [`crate::Tx`]'s connection to make it part of a change).
///
/// When a job with the same kind and key exists already, no second row is made: the existing
/// one keeps its payload and runs at the earlier of the two times, and it is marked as
/// scheduled again (its generation grows), so a run in progress at this moment does not
/// delete it when it finishes: it runs once more (at that time) and sees whatever this
/// schedule was for. A failed job scheduled again is revived with fresh attempts.
pub async fn schedule<C: ConnectionTrait>(conn: &C, timer: NewTimer) -> Result<(), ApiError> {
    let backend = conn.get_database_backend();
    let at = now();
    let sql = "INSERT INTO timers (id, kind, key, payload, run_at, attempts, generation, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6) \
               ON CONFLICT (kind, key) DO UPDATE SET \
                 run_at = CASE WHEN timers.failed_at IS NOT NULL OR excluded.run_at < timers.run_at \
                               THEN excluded.run_at ELSE timers.run_at END, \
                 attempts = CASE WHEN timers.failed_at IS NOT NULL THEN 0 ELSE timers.attempts END, \
                 failed_at = NULL, \
                 generation = timers.generation + 1, \
                 updated_at = excluded.updated_at";
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        cast_json(backend, sql),
        [
            new_id().into(),
            timer.kind.into(),
            timer.key.into(),
            timer.payload.into(),
            timer.run_at.into(),
            at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// PostgreSQL needs the JSON parameter typed.
fn cast_json(backend: DatabaseBackend, sql: &str) -> String {
    if backend == DatabaseBackend::Postgres {
        sql.replacen("$4,", "$4::json,", 1)
    } else {
        sql.to_owned()
    }
}

/// Removes a pending job (one not running now) of `kind` with `key`, if there is one.
/// Answers whether a row was removed.
pub async fn cancel<C: ConnectionTrait>(conn: &C, kind: &str, key: &str) -> Result<bool, ApiError> {
    let backend = conn.get_database_backend();
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "DELETE FROM timers WHERE kind = $1 AND key = $2 AND (locked_until IS NULL OR locked_until < $3)",
            [kind.into(), key.into(), now().into()],
        ))
        .await?;
    Ok(result.rows_affected() > 0)
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub key: String,
    pub payload: Value,
    /// When it was due.
    pub run_at: Timestamp,
    /// This attempt's number in the current series, from 1.
    pub attempt: u32,
    lease_id: Uuid,
    generation: i64,
}

impl Job {
    /// Deletes the job inside the handler's own transaction on `conn` (usually a
    /// [`crate::Tx`]), so the handler's change and the job's end commit together: a crash
    /// after the commit cannot run it again. Answers `false` (and deletes nothing) when the job
    /// was scheduled again while it ran, or when this node's lease was lost; the runner then
    /// does what it does after any [`Outcome::Done`].
    pub async fn complete_in<C: ConnectionTrait>(&self, conn: &C) -> Result<bool, ApiError> {
        let backend = conn.get_database_backend();
        let result = conn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM timers WHERE id = $1 AND lease_id = $2 AND generation = $3",
                [self.id.into(), self.lease_id.into(), self.generation.into()],
            ))
            .await?;
        Ok(result.rows_affected() > 0)
    }
}

/// What became of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished: the job is deleted.
    Done,
    /// Not yet: run again at this time (not counted as a failure).
    At(Timestamp),
    /// A failure worth another try: after `after`, or the handler's
    /// [`TimerHandler::backoff`] when `None`.
    Retry {
        after: Option<Duration>,
        error: String,
    },
}

/// Runs the jobs of one kind. Registered by a module through [`crate::Module::timers`].
#[async_trait::async_trait]
pub trait TimerHandler: Send + Sync + 'static {
    /// The kind it runs: stable, like a subscriber's name (rows in the table carry it).
    fn kind(&self) -> &'static str;
    /// Attempts in a series before the job is kept as failed.
    fn max_attempts(&self) -> u32 {
        20
    }
    /// The pause after failed attempt number `attempt` (from 1): 5 s, doubling, at most 5
    /// minutes apart.
    fn backoff(&self, attempt: u32) -> Duration {
        backoff(Duration::from_secs(5), Duration::from_secs(300), attempt)
    }
    /// Does the job's work. Must be idempotent (after a crash or a lost lease it runs again).
    async fn run(&self, job: &Job) -> Result<Outcome, ApiError>;
}

/// `first`, doubling with every further attempt, at most `max`.
pub fn backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)))
        .min(max)
}

/// A handler made from a kind and an async function.
pub fn handler<F, Fut>(kind: &'static str, f: F) -> Arc<dyn TimerHandler>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Outcome, ApiError>> + Send + 'static,
{
    struct FnHandler<F> {
        kind: &'static str,
        f: F,
    }
    #[async_trait::async_trait]
    impl<F, Fut> TimerHandler for FnHandler<F>
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Outcome, ApiError>> + Send + 'static,
    {
        fn kind(&self) -> &'static str {
            self.kind
        }
        async fn run(&self, job: &Job) -> Result<Outcome, ApiError> {
            (self.f)(job.clone()).await
        }
    }
    Arc::new(FnHandler { kind, f })
}

/// How the runner behaves. Defaults suit production.
#[derive(Debug, Clone)]
pub struct TimerOptions {
    /// How often the table is looked at for due jobs.
    pub poll_interval: Duration,
    /// How long a claim holds a job before another node may take it. Renewed every third of
    /// it while the handler runs, so only a node that died (or hangs) loses its jobs.
    pub lease: Duration,
    /// Jobs run at once on this node.
    pub concurrency: usize,
}

impl Default for TimerOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            concurrency: 32,
        }
    }
}

/// Starts this node's runner for `handlers` on `tracker`; it stops claiming when `cancel`
/// fires and waits for the jobs it runs (their leases bring back any it cannot finish).
pub fn start(
    db: DatabaseConnection,
    handlers: Vec<Arc<dyn TimerHandler>>,
    options: TimerOptions,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    if handlers.is_empty() {
        return;
    }
    let mut kinds = std::collections::HashMap::new();
    for h in handlers {
        if kinds.insert(h.kind(), h.clone()).is_some() {
            tracing::error!(
                kind = h.kind(),
                "two timer handlers share a kind; the last wins"
            );
        }
    }
    let runner = Arc::new(Runner {
        db,
        handlers: kinds,
        options,
    });
    let jobs = tracker.clone();
    tracker.spawn(async move { runner.run(cancel, jobs).await });
}

struct Runner {
    db: DatabaseConnection,
    handlers: std::collections::HashMap<&'static str, Arc<dyn TimerHandler>>,
    options: TimerOptions,
}

impl Runner {
    async fn run(self: Arc<Self>, cancel: CancellationToken, jobs: TaskTracker) {
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self.claim(free).await {
                    Ok(rows) => {
                        claimed = rows.len();
                        for row in rows {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                return;
                            };
                            let runner = self.clone();
                            jobs.spawn(async move {
                                runner.execute(row).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim due timers"),
                }
            }
            if claimed > 0 && claimed == free {
                // Maybe more are due: look again as soon as a slot is free.
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    permit = slots.acquire() => drop(permit),
                }
                continue;
            }
            if claimed > 0 {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
    }

    /// Takes up to `limit` due jobs of the kinds this node runs, under a new lease.
    async fn claim(&self, limit: usize) -> Result<Vec<Row>, ApiError> {
        let backend = self.db.get_database_backend();
        let at = now();
        let until = at + chrono_of(self.options.lease);
        let kinds: Vec<&'static str> = self.handlers.keys().copied().collect();
        let mut values: Vec<sea_orm::Value> = vec![
            until.into(),
            new_id().into(),
            at.into(),
            (limit as i64).into(),
        ];
        let placeholders: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                values.push((*k).into());
                format!("${}", i + 5)
            })
            .collect();
        let lock = if backend == DatabaseBackend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE timers SET locked_until = $1, lease_id = $2, attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM timers \
                          WHERE run_at <= $3 AND failed_at IS NULL \
                            AND (locked_until IS NULL OR locked_until < $3) \
                            AND kind IN ({}) \
                          ORDER BY run_at LIMIT $4{lock}) \
             RETURNING *",
            placeholders.join(", ")
        );
        let rows = Row::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(&self.db)
            .await?;
        Ok(rows)
    }

    /// Runs one claimed job to its outcome, renewing its lease meanwhile.
    async fn execute(&self, row: Row) {
        let Some(handler) = self.handlers.get(row.kind.as_str()).cloned() else {
            return;
        };
        let Some(lease_id) = row.lease_id else {
            return;
        };
        let job = Job {
            id: row.id,
            kind: row.kind.clone(),
            key: row.key.clone(),
            payload: row.payload.clone(),
            run_at: row.run_at,
            attempt: u32::try_from(row.attempts.max(1)).unwrap_or(1),
            lease_id,
            generation: row.generation,
        };
        let renewing = CancellationToken::new();
        let renew = {
            let (db, stop, lease) = (self.db.clone(), renewing.clone(), self.options.lease);
            let (id, kind) = (job.id, job.kind.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(lease / 3) => {}
                    }
                    match renew_lease(&db, id, lease_id, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(%kind, %id, "timer lease lost while its handler runs");
                            return;
                        }
                        Err(e) => tracing::warn!(%kind, %id, error = %e, "timer lease not renewed"),
                    }
                }
            })
        };
        let result = match AssertUnwindSafe(handler.run(&job)).catch_unwind().await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::Retry {
                after: None,
                error: e.to_string(),
            },
            Err(panic) => Outcome::Retry {
                after: None,
                error: format!("handler panicked: {}", panic_message(&panic)),
            },
        };
        renewing.cancel();
        let _ = renew.await;
        if let Err(e) = self.settle(&*handler, &job, result).await {
            tracing::warn!(kind = %job.kind, id = %job.id, error = %e,
                "timer outcome not stored; the job runs again after its lease");
        }
    }

    async fn settle(
        &self,
        handler: &dyn TimerHandler,
        job: &Job,
        outcome: Outcome,
    ) -> Result<(), ApiError> {
        let at = now();
        match outcome {
            Outcome::Done => {
                if job.complete_in(&self.db).await? {
                    return Ok(());
                }

                // Scheduled again while it ran (or already deleted by the handler's own
                // transaction, or the lease was lost): release it to run at its time.
                self.exec(
                    "UPDATE timers SET locked_until = NULL, lease_id = NULL, attempts = 0, \
                     last_error = NULL, updated_at = $3 WHERE id = $1 AND lease_id = $2",
                    vec![job.id.into(), job.lease_id.into(), at.into()],
                )
                .await
            }
            Outcome::At(when) => {
                self.exec(
                    "UPDATE timers SET run_at = CASE WHEN generation = $4 OR $3 < run_at THEN $3 ELSE run_at END, \
                     locked_until = NULL, lease_id = NULL, attempts = 0, last_error = NULL, updated_at = $5 \
                     WHERE id = $1 AND lease_id = $2",
                    vec![
                        job.id.into(),
                        job.lease_id.into(),
                        when.into(),
                        job.generation.into(),
                        at.into(),
                    ],
                )
                .await
            }
            Outcome::Retry { after, error } => {
                let error: String = error.chars().take(2000).collect();
                if job.attempt >= handler.max_attempts().max(1) {
                    tracing::error!(kind = %job.kind, id = %job.id, key = %job.key, attempts = job.attempt, %error,
                        "timer still fails after its last attempt; kept as failed");
                    return self
                        .exec(
                            "UPDATE timers SET failed_at = $3, last_error = $4, locked_until = NULL, \
                             lease_id = NULL, updated_at = $3 WHERE id = $1 AND lease_id = $2",
                            vec![job.id.into(), job.lease_id.into(), at.into(), error.into()],
                        )
                        .await;
                }
                let pause = after.unwrap_or_else(|| handler.backoff(job.attempt));
                tracing::warn!(kind = %job.kind, id = %job.id, attempt = job.attempt, retry_in_ms = pause.as_millis() as u64, %error,
                    "timer failed; retrying");
                self.exec(
                    "UPDATE timers SET run_at = $3, last_error = $4, locked_until = NULL, \
                     lease_id = NULL, updated_at = $5 WHERE id = $1 AND lease_id = $2",
                    vec![
                        job.id.into(),
                        job.lease_id.into(),
                        (at + chrono_of(pause)).into(),
                        error.into(),
                        at.into(),
                    ],
                )
                .await
            }
        }
    }

    async fn exec(&self, sql: &str, values: Vec<sea_orm::Value>) -> Result<(), ApiError> {
        let backend = self.db.get_database_backend();
        self.db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        Ok(())
    }
}

async fn renew_lease(
    db: &DatabaseConnection,
    id: Uuid,
    lease_id: Uuid,
    lease: Duration,
) -> Result<bool, ApiError> {
    let backend = db.get_database_backend();
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE timers SET locked_until = $1 WHERE id = $2 AND lease_id = $3",
            [
                (now() + chrono_of(lease)).into(),
                id.into(),
                lease_id.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() > 0)
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// Jobs kept as failed after their last attempt, oldest failure first (at most `limit`).
pub async fn failed<C: ConnectionTrait>(conn: &C, limit: u64) -> Result<Vec<Row>, ApiError> {
    use sea_orm::{ColumnTrait, QuerySelect};
    Ok(entity::Entity::find()
        .filter(entity::Column::FailedAt.is_not_null())
        .order_by_asc(entity::Column::FailedAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Makes a failed job due now with fresh attempts. Answers whether there was such a job.
pub async fn retry_failed<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<bool, ApiError> {
    let backend = conn.get_database_backend();
    let at = now();
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE timers SET failed_at = NULL, attempts = 0, run_at = $2, updated_at = $2 \
             WHERE id = $1 AND failed_at IS NOT NULL",
            [id.into(), at.into()],
        ))
        .await?;
    Ok(result.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause_up_to_the_cap() {
        let b = |n| backoff(Duration::from_secs(5), Duration::from_secs(300), n);
        assert_eq!(b(1), Duration::from_secs(5));
        assert_eq!(b(2), Duration::from_secs(10));
        assert_eq!(b(4), Duration::from_secs(40));
        assert_eq!(b(7), Duration::from_secs(300));
        assert_eq!(b(u32::MAX), Duration::from_secs(300));
    }
}
