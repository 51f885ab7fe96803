//! The typed event bus with a durable event log (a transactional outbox).
//!
//! A service opens a [`Tx`], writes its change, calls [`Tx::publish`] for each catalog event,
//! and commits: the events are inserted into the `events` table inside that same transaction,
//! so they exist if and only if the change does. After the commit every subscriber task is
//! woken; each reads the log from its own durable cursor (`subscriber_cursors`), in id order,
//! and advances the cursor after handling. A crash between commit and delivery therefore loses
//! nothing (the cursor is behind), and a slow subscriber never skips (it reads the log, not a
//! bounded channel). Delivery is at-least-once across crashes, so handlers are idempotent.
//!
//! Ids are handed out in commit order: on PostgreSQL the insert of a transaction's events takes
//! a transaction-scoped advisory lock held until commit, so a reader that has seen id N has
//! seen every smaller id that will ever commit. SQLite serializes writers by itself.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
    sea_query::OnConflict,
};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::contract::{Timestamp, now};
use crate::error::ApiError;
use crate::events::{Audience, CatalogEvent, EventName};

/// Tables of the event log. Created by the `migrations` crate.
pub mod entity {
    pub mod event {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "events")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i64,
            pub name: String,
            pub payload: Json,
            pub audience: Json,
            pub created_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod subscriber_cursor {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "subscriber_cursors")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub name: String,
            pub last_event_id: i64,
            pub updated_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{event, subscriber_cursor};

/// An event as stored in the log and handed to subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub name: EventName,
    /// Exactly what clients receive as the first argument.
    pub payload: serde_json::Value,
    pub audience: Audience,
    pub at: Timestamp,
}

impl StoredEvent {
    /// The typed payload when this is an `E`. Routing-only fields (`#[serde(skip)]`) come back
    /// as their defaults: read them from [`StoredEvent::audience`].
    pub fn decode<E: CatalogEvent + DeserializeOwned>(&self) -> Option<E> {
        if self.name != E::NAME {
            return None;
        }
        serde_json::from_value(self.payload.clone()).ok()
    }

    fn from_row(row: event::Model) -> Option<Self> {
        let Some(name) = EventName::parse(&row.name) else {
            tracing::error!(id = row.id, name = %row.name, "event log holds an unknown event name; skipped");
            return None;
        };
        let audience = serde_json::from_value(row.audience).unwrap_or_default();
        Some(Self {
            id: row.id,
            name,
            payload: row.payload,
            audience,
            at: row.created_at,
        })
    }
}

struct PendingEvent {
    name: EventName,
    payload: serde_json::Value,
    audience: Audience,
}

/// A write transaction that carries the events of its change. Dropping it without
/// [`Tx::commit`] rolls back the change and its events together.
pub struct Tx {
    txn: DatabaseTransaction,
    events: Vec<PendingEvent>,
    bus: EventBus,
}

impl Tx {
    /// The connection to run this transaction's statements on.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Records a catalog event; it is written with the change and delivered after commit.
    pub fn publish<E: CatalogEvent>(&mut self, event: E) {
        let payload = match serde_json::to_value(&event) {
            Ok(v) => v,
            // Catalog types are plain data; this cannot fail for them. Keep the change honest
            // anyway: an event that cannot be written must not vanish silently.
            Err(e) => {
                tracing::error!(event = %E::NAME, error = %e, "catalog event failed to serialize");
                serde_json::Value::Null
            }
        };
        self.events.push(PendingEvent {
            name: E::NAME,
            payload,
            audience: event.audience(),
        });
    }

    /// Writes the recorded events, commits, and wakes the subscribers.
    pub async fn commit(self) -> Result<(), ApiError> {
        let Tx { txn, events, bus } = self;
        if !events.is_empty() {
            if txn.get_database_backend() == DatabaseBackend::Postgres {
                txn.execute_raw(Statement::from_string(
                    DatabaseBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(7242001)".to_owned(),
                ))
                .await?;
            }
            let at = now();
            let names: Vec<EventName> = events.iter().map(|e| e.name).collect();
            let rows = events.into_iter().map(|e| event::ActiveModel {
                id: NotSet,
                name: Set(e.name.as_str().to_owned()),
                payload: Set(e.payload),
                audience: Set(serde_json::to_value(e.audience).unwrap_or_default()),
                created_at: Set(at),
            });
            event::Entity::insert_many(rows).exec(&txn).await?;
            txn.commit().await?;
            for name in names {
                metrics::counter!(crate::monitor::EVENTS_PUBLISHED, "event" => name.as_str())
                    .increment(1);
            }
            bus.wake();
        } else {
            txn.commit().await?;
        }
        Ok(())
    }
}

/// A named subscriber. Its name is its durable cursor's key: never rename a live one.
#[async_trait::async_trait]
pub trait Subscriber: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Handles one event. Must be idempotent: after a crash an event can come again.
    /// An error is retried with backoff; the subscriber does not move past the event until
    /// it succeeds or the retries run out (which is logged as an error with the event id).
    async fn handle(&self, event: &StoredEvent) -> Result<(), ApiError>;
}

/// How the dispatcher behaves. Defaults suit production.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// How often subscribers look at the log without a wake-up (events committed by another
    /// process, e.g. `marketplace create-admin`, or a wake-up lost in a crash).
    pub poll_interval: Duration,
    pub batch_size: u64,
    pub max_attempts: u32,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch_size: 256,
            max_attempts: 8,
        }
    }
}

struct BusInner {
    db: DatabaseConnection,
    wake: watch::Sender<u64>,
}

/// The event bus: opens transactions that carry events, reads the log, runs subscribers.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl EventBus {
    pub fn new(db: DatabaseConnection) -> Self {
        let (wake, _) = watch::channel(0);
        Self {
            inner: Arc::new(BusInner { db, wake }),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so concurrent writers queue
    /// instead of failing on a stale snapshot).
    pub async fn begin(&self) -> Result<Tx, ApiError> {
        let txn = self
            .inner
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok(Tx {
            txn,
            events: Vec::new(),
            bus: self.clone(),
        })
    }

    /// Tells every subscriber that new events may be in the log.
    pub fn wake(&self) {
        self.inner.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Events with an id above `after`, oldest first.
    pub async fn read_after(&self, after: i64, limit: u64) -> Result<Vec<StoredEvent>, ApiError> {
        Ok(self.read_batch(after, limit).await?.0)
    }

    /// Like [`EventBus::read_after`], plus the id of the last row read: a row this binary
    /// cannot decode (an event name from a newer version) is skipped, not stuck on.
    async fn read_batch(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<(Vec<StoredEvent>, Option<i64>), ApiError> {
        use sea_orm::ColumnTrait;
        let rows = event::Entity::find()
            .filter(event::Column::Id.gt(after))
            .order_by_asc(event::Column::Id)
            .limit(limit)
            .all(&self.inner.db)
            .await?;
        let last = rows.last().map(|r| r.id);
        Ok((
            rows.into_iter().filter_map(StoredEvent::from_row).collect(),
            last,
        ))
    }

    /// The id of the newest event, 0 when the log is empty.
    pub async fn latest_id(&self) -> Result<i64, ApiError> {
        let row = event::Entity::find()
            .order_by_desc(event::Column::Id)
            .one(&self.inner.db)
            .await?;
        Ok(row.map(|r| r.id).unwrap_or(0))
    }

    /// Starts one task per subscriber. Each stops when `cancel` fires, after a last pass over
    /// what is already in the log (bounded by `drain_timeout`).
    pub fn start(
        &self,
        subscribers: Vec<Arc<dyn Subscriber>>,
        options: DispatchOptions,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let mut seen = std::collections::HashSet::new();
        for sub in subscribers {
            if !seen.insert(sub.name()) {
                tracing::error!(
                    subscriber = sub.name(),
                    "two subscribers share a name; the second is not started"
                );
                continue;
            }
            let bus = self.clone();
            let options = options.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move { bus.run_subscriber(sub, options, cancel).await });
        }
    }

    async fn run_subscriber(
        self,
        sub: Arc<dyn Subscriber>,
        options: DispatchOptions,
        cancel: CancellationToken,
    ) {
        let name = sub.name();
        let mut wake = self.inner.wake.subscribe();
        let mut cursor = loop {
            match self.load_cursor(name).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(subscriber = name, error = %e, "cannot read subscriber cursor; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        tracing::debug!(subscriber = name, cursor, "subscriber started");
        loop {
            let stopping = cancel.is_cancelled();
            wake.borrow_and_update();
            match self.read_batch(cursor, options.batch_size).await {
                Ok((batch, Some(last))) => {
                    for event in &batch {
                        self.deliver(&*sub, event, &options).await;
                    }
                    cursor = last;
                    if let Err(e) = self.save_cursor(name, cursor).await {
                        tracing::warn!(subscriber = name, cursor, error = %e, "cannot save subscriber cursor");
                    }
                    continue;
                }
                Ok(_) => {
                    if stopping {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(subscriber = name, error = %e, "cannot read the event log");
                    if stopping {
                        return;
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = wake.changed() => {}
                _ = tokio::time::sleep(options.poll_interval) => {}
            }
        }
    }

    async fn deliver(&self, sub: &dyn Subscriber, event: &StoredEvent, options: &DispatchOptions) {
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=options.max_attempts {
            match sub.handle(event).await {
                Ok(()) => return,
                Err(e) if attempt < options.max_attempts => {
                    tracing::warn!(subscriber = sub.name(), event_id = event.id, attempt, error = %e, "subscriber failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(
                        subscriber = sub.name(), event_id = event.id, event = %event.name, error = %e,
                        "subscriber gave up on event after all retries"
                    );
                }
            }
        }
    }

    async fn load_cursor(&self, name: &str) -> Result<i64, ApiError> {
        if let Some(row) = subscriber_cursor::Entity::find_by_id(name.to_owned())
            .one(&self.inner.db)
            .await?
        {
            return Ok(row.last_event_id);
        }
        let row = subscriber_cursor::ActiveModel {
            name: Set(name.to_owned()),
            last_event_id: Set(0),
            updated_at: Set(now()),
        };
        subscriber_cursor::Entity::insert(row)
            .on_conflict(
                OnConflict::column(subscriber_cursor::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .try_insert()
            .exec(&self.inner.db)
            .await?;
        let row = subscriber_cursor::Entity::find_by_id(name.to_owned())
            .one(&self.inner.db)
            .await?;
        Ok(row.map(|r| r.last_event_id).unwrap_or(0))
    }

    async fn save_cursor(&self, name: &str, cursor: i64) -> Result<(), ApiError> {
        let row = subscriber_cursor::ActiveModel {
            name: Set(name.to_owned()),
            last_event_id: Set(cursor),
            updated_at: Set(now()),
        };
        subscriber_cursor::Entity::update(row)
            .exec(&self.inner.db)
            .await?;
        Ok(())
    }
}

/// A subscriber made from a name and an async function, for the common case.
pub struct FnSubscriber<F> {
    name: &'static str,
    f: F,
}

/// Builds a [`Subscriber`] from a stable name and a handler function.
pub fn subscriber<F, Fut>(name: &'static str, f: F) -> Arc<dyn Subscriber>
where
    F: Fn(StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    Arc::new(FnSubscriber { name, f })
}

#[async_trait::async_trait]
impl<F, Fut> Subscriber for FnSubscriber<F>
where
    F: Fn(StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }
    async fn handle(&self, event: &StoredEvent) -> Result<(), ApiError> {
        (self.f)(event.clone()).await
    }
}
