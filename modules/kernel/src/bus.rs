//! The typed event bus with a durable event log (a transactional outbox).
//!
//! A service opens a [`Tx`], writes its change, calls [`Tx::publish`] for each catalog event,
//! and commits: the events exist if and only if the change does. Each subscriber reads the log
//! from its own durable cursor, in id order, at least once, so handlers are idempotent.
//!
//! Why ids come in commit order, and how the bus behaves on several nodes and under faults
//! (the wake-up through `LISTEN/NOTIFY` in `listen.rs`, the [`Delivery::OncePerCluster`] leases
//! in `lease.rs`, the dead letters in `dead_letter.rs`, [`Delivery::PerNode`] socket delivery,
//! the log's own pool, shutdown) is told once, in `docs/bus.md`.

mod dead_letter;
mod lease;
mod listen;

pub use dead_letter::RetryOutcome;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

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

use crate::error::ApiError;
use catalog::contract::{Timestamp, now};
use catalog::events::{Audience, CatalogEvent, EventName};

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

    /// An event a subscriber still failed on after its retries (see the module docs).
    pub mod dead_letter {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "dead_letters")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub subscriber: String,
            pub event_id: i64,
            pub event_name: String,
            /// Every attempt so far, the first retries included.
            pub attempts: i32,
            pub last_error: String,
            pub first_failed_at: DateTimeUtc,
            pub last_failed_at: DateTimeUtc,
            /// `None` once resolved.
            pub next_retry_at: Option<DateTimeUtc>,
            pub resolved_at: Option<DateTimeUtc>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{event, subscriber_cursor};

/// The `NOTIFY` channel a commit of events signals on.
const EVENTS_CHANNEL: &str = "marketplace_events";
/// The `NOTIFY` channel an admin's "retry this dead letter now" signals on.
const DEAD_LETTERS_CHANNEL: &str = "marketplace_dead_letters";

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
    /// Run once the commit succeeded (never after a rollback or a failed commit).
    after_commit: Vec<Box<dyn FnOnce() + Send + Sync>>,
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

    /// Runs `f` once this transaction has committed; dropped with the transaction when it
    /// rolls back or its commit fails. For in-process reactions that must see the change
    /// (waking a worker that reads it), not for work that must survive a crash: that belongs
    /// in an event or a durable timer written inside the transaction.
    pub fn after_commit(&mut self, f: impl FnOnce() + Send + Sync + 'static) {
        self.after_commit.push(Box::new(f));
    }

    /// Wakes the waiters of this node's [`EventBus::signal`] `name` once this transaction
    /// has committed (a worker woken earlier would not find the change yet).
    pub fn signal_after_commit(&mut self, name: &'static str) {
        let signal = self.bus.signal(name);
        self.after_commit(move || signal.notify_one());
    }

    /// Writes the recorded events, commits, and wakes the subscribers (on PostgreSQL those of
    /// every node, through `NOTIFY`, which is sent only if the commit succeeds); then runs the
    /// [`Tx::after_commit`] hooks.
    pub async fn commit(self) -> Result<(), ApiError> {
        let Tx {
            txn,
            events,
            bus,
            after_commit,
        } = self;
        if !events.is_empty() {
            let at = now();
            let names: Vec<EventName> = events.iter().map(|e| e.name).collect();
            if txn.get_database_backend() == DatabaseBackend::Postgres {
                insert_in_commit_order(&txn, events, at).await?;
            } else {
                let rows = events.into_iter().map(|e| event::ActiveModel {
                    id: NotSet,
                    name: Set(e.name.as_str().to_owned()),
                    payload: Set(e.payload),
                    audience: Set(serde_json::to_value(e.audience).unwrap_or_default()),
                    created_at: Set(at),
                });
                event::Entity::insert_many(rows).exec(&txn).await?;
            }
            txn.commit().await?;
            for name in names {
                metrics::counter!(crate::monitor::EVENTS_PUBLISHED, "event" => name.as_str())
                    .increment(1);
            }
            bus.wake();
        } else {
            txn.commit().await?;
        }
        for hook in after_commit {
            hook();
        }
        Ok(())
    }
}

/// The transaction-scoped advisory lock that keeps event ids in commit order on PostgreSQL.
const COMMIT_ORDER_LOCK: i64 = 7242001;

/// PostgreSQL: takes [`COMMIT_ORDER_LOCK`] (held until the commit), inserts the events in
/// publish order and queues the `NOTIFY`, all in one statement. The ids come from the
/// sequence only after the lock is held, so they are handed out in commit order; doing it in
/// one round trip instead of three keeps the lock, which serializes every event-writing
/// commit, held as briefly as the commit itself allows (docs/benchmarks.md, "REST → socket
/// latency and event-writing throughput").
async fn insert_in_commit_order(
    txn: &DatabaseTransaction,
    events: Vec<PendingEvent>,
    at: Timestamp,
) -> Result<(), ApiError> {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(events.len() * 3 + 1);
    let mut rows = Vec::with_capacity(events.len());
    values.push(at.into());
    for (ord, e) in events.into_iter().enumerate() {
        let n = values.len();
        rows.push(format!(
            "(${}, ${}::json, ${}::json, {ord})",
            n + 1,
            n + 2,
            n + 3
        ));
        values.push(e.name.as_str().into());
        values.push(e.payload.into());
        values.push(serde_json::to_value(e.audience).unwrap_or_default().into());
    }
    // The events come out of the sort in publish order and take their ids (the column's
    // default, evaluated by the insert above the sort) one by one, after the lock: a CTE
    // with a volatile function is evaluated once, before the join yields its first row.
    let sql = format!(
        "WITH commit_order AS (SELECT pg_advisory_xact_lock({COMMIT_ORDER_LOCK})), \
              wake AS (SELECT pg_notify('{EVENTS_CHANNEL}', '')) \
         INSERT INTO events (name, payload, audience, created_at) \
         SELECT e.name, e.payload, e.audience, $1 \
         FROM (VALUES {}) AS e (name, payload, audience, ord), commit_order, wake \
         ORDER BY e.ord",
        rows.join(", ")
    );
    txn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        values,
    ))
    .await?;
    Ok(())
}

/// Where a subscriber runs when several nodes share one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Side effects (notifications, payouts, offer rejection, ...): each event is handled
    /// once across the cluster. On PostgreSQL one node at a time holds the subscriber's lease
    /// (a session advisory lock on a dedicated connection) and the others stand by, retrying
    /// every [`DispatchOptions::lease_retry`]; the holder continues from the durable cursor.
    /// An event that still fails after the retries becomes a dead letter (retried later).
    OncePerCluster,
    /// Node-local work (delivery of the log to this node's own sockets): runs on every node.
    /// Its cursor row is shared by name and only ever moves forward (the furthest any node got);
    /// each node starts from it (or from [`Subscriber::resume_after`]) and then keeps its own
    /// position in memory, across restarts of the task. A client whose node died reconnects
    /// elsewhere with `lastEventId` and replays, so nothing it missed is lost. Failures after
    /// the retries are logged, not dead-lettered: re-emitting an old event later would reach
    /// clients out of order, and replay already covers them.
    PerNode,
}

/// A named subscriber. Its name is its durable cursor's key: never rename a live one.
#[async_trait::async_trait]
pub trait Subscriber: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The events it handles, declared beside the handler (like Medusa's
    /// `SubscriberConfig.event`), so a search for an event name finds every reaction to it.
    /// The bus hands it only these; its cursor still moves over the others.
    /// `&EventName::ALL` for a subscriber that sees everything (socket delivery).
    fn events(&self) -> &'static [EventName];
    /// Where it runs in a cluster. Side effects keep the default.
    fn delivery(&self) -> Delivery {
        Delivery::OncePerCluster
    }
    /// For [`Delivery::PerNode`] subscribers: called before reading the log with the position
    /// the bus would start after (the stored cursor, or this node's own position after a
    /// restart of the task); returns the position to start after. The default keeps it.
    async fn resume_after(&self, position: i64) -> i64 {
        position
    }
    /// Handles one event. Must be idempotent: after a crash an event can come again.
    /// An error (or a panic, which is caught) is retried with backoff; after
    /// [`DispatchOptions::max_attempts`] the event becomes a dead letter of this subscriber
    /// and the events after it keep flowing.
    async fn handle(&self, event: &StoredEvent) -> Result<(), ApiError>;
}

/// How the dispatcher behaves. Defaults suit production.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// How often subscribers look at the log without a wake-up (a lost notification, or
    /// events committed while the listener was reconnecting).
    pub poll_interval: Duration,
    pub batch_size: u64,
    /// Attempts per event before it becomes a dead letter (at least 1).
    pub max_attempts: u32,
    /// The pause after the first failed attempt; it doubles up to 5 s.
    pub retry_backoff: Duration,
    /// The pause before a new dead letter is retried; it doubles with every failed retry.
    pub dead_letter_backoff: Duration,
    /// The longest pause between two retries of a dead letter (at most 10 minutes).
    pub dead_letter_backoff_max: Duration,
    /// How often a node without a subscriber's lease tries to take it (PostgreSQL).
    pub lease_retry: Duration,
    /// The pause before a subscriber task that ended (a panic in the dispatcher, a lost
    /// lease) is started again.
    pub restart_pause: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch_size: 256,
            max_attempts: 8,
            retry_backoff: Duration::from_millis(50),
            dead_letter_backoff: Duration::from_secs(10),
            dead_letter_backoff_max: Duration::from_secs(600),
            lease_retry: Duration::from_secs(3),
            restart_pause: Duration::from_secs(1),
        }
    }
}

/// What became of one event after its attempts.
enum Outcome {
    Done,
    Failed {
        error: String,
        attempts: u32,
    },
    /// The dispatcher is stopping; the event stays unhandled for the next run.
    Stopped,
}

struct BusInner {
    db: DatabaseConnection,
    /// Where the log is read and per-node cursors are written: on PostgreSQL a small pool of
    /// its own, so that delivery to sockets (and replay) never queues behind REST requests
    /// for a connection of the main pool; elsewhere the main pool.
    log: DatabaseConnection,
    wake: watch::Sender<u64>,
    /// Wakes the holders of leases to look at their dead letters (an admin's "retry now").
    dead_wake: watch::Sender<u64>,
    /// Where this node's lease connection is found (PostgreSQL only).
    leases: Option<lease::LeaseHome>,
    /// In-process wake-ups by name ([`EventBus::signal`]).
    signals: std::sync::Mutex<std::collections::HashMap<&'static str, Arc<tokio::sync::Notify>>>,
}

/// Connections of the event log's own pool on PostgreSQL (see [`EventBus::new`]): the
/// subscribers read in turns and a read takes milliseconds.
pub const LOG_CONNECTIONS: u32 = 2;

/// The event bus: opens transactions that carry events, reads the log, runs subscribers.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl EventBus {
    /// A bus over `db`. On PostgreSQL it opens (lazily) a pool of [`LOG_CONNECTIONS`]
    /// connections of its own for reading the log: under a burst of writes the main pool is
    /// busy with requests waiting for the commit-order lock, and the readers that would
    /// deliver those commits must not wait behind them.
    pub fn new(db: DatabaseConnection) -> Self {
        let (wake, _) = watch::channel(0);
        let (dead_wake, _) = watch::channel(0);
        let postgres = db.get_database_backend() == DatabaseBackend::Postgres;
        let leases = postgres.then(|| lease::LeaseHome::new(&db));
        let log = if postgres {
            let pool = sea_orm::sqlx::postgres::PgPoolOptions::new()
                .max_connections(LOG_CONNECTIONS)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(lease::dedicated_options(&db, "marketplace event log"));
            sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        } else {
            db.clone()
        };
        Self {
            inner: Arc::new(BusInner {
                db,
                log,
                wake,
                dead_wake,
                leases,
                signals: Default::default(),
            }),
        }
    }

    /// This node's wake-up named `name` (made on first use): a worker waits on it, and a
    /// transaction wakes it after its commit with [`Tx::signal_after_commit`].
    pub fn signal(&self, name: &'static str) -> Arc<tokio::sync::Notify> {
        let mut signals = self
            .inner
            .signals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        signals.entry(name).or_default().clone()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    fn is_postgres(&self) -> bool {
        self.inner.db.get_database_backend() == DatabaseBackend::Postgres
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
            after_commit: Vec::new(),
        })
    }

    /// Tells every subscriber of this process that new events may be in the log. (Other
    /// nodes hear of a commit through PostgreSQL `NOTIFY`.)
    pub fn wake(&self) {
        self.inner.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn wake_dead_letters(&self) {
        self.inner.dead_wake.send_modify(|v| *v = v.wrapping_add(1));
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
            .all(&self.inner.log)
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
            .one(&self.inner.log)
            .await?;
        Ok(row.map(|r| r.id).unwrap_or(0))
    }

    /// Starts one supervised task per subscriber (and, on PostgreSQL, the `LISTEN` task that
    /// wakes them when any node commits events). When `cancel` fires, the side-effect
    /// subscribers make a last pass over what is in the log and stop; then the per-node
    /// subscribers make theirs (so the events those side effects wrote still reach this
    /// node's sockets) and stop. Every task is on `tracker`: wait on it to know the last
    /// delivery pass is done.
    pub fn start(
        &self,
        subscribers: Vec<Arc<dyn Subscriber>>,
        options: DispatchOptions,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let once = TaskTracker::new();
        let node_stop = CancellationToken::new();
        {
            let (cancel, once, node_stop) = (cancel.clone(), once.clone(), node_stop.clone());
            tracker.spawn(async move {
                cancel.cancelled().await;
                once.close();
                once.wait().await;
                node_stop.cancel();
            });
        }
        if self.is_postgres() {
            tracker.spawn(listen::run(self.clone(), cancel.clone()));
        }
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
            match sub.delivery() {
                Delivery::OncePerCluster => {
                    let run = bus.supervise(sub, options, cancel.clone());
                    tracker.spawn(once.track_future(run));
                }
                Delivery::PerNode => {
                    tracker.spawn(bus.supervise(sub, options, node_stop.clone()));
                }
            }
        }
    }

    /// Runs a subscriber until `stop`, starting it again (after a pause) whenever its task
    /// ends for another reason: a panic outside a handler, or a lost lease.
    async fn supervise(
        self,
        sub: Arc<dyn Subscriber>,
        options: DispatchOptions,
        stop: CancellationToken,
    ) {
        let name = sub.name();
        // A per-node subscriber's own position, kept across restarts of its task.
        let position = Arc::new(AtomicI64::new(-1));
        loop {
            let leg = tokio::spawn(self.clone().run_leg(
                sub.clone(),
                options.clone(),
                stop.clone(),
                position.clone(),
            ));
            match leg.await {
                Ok(()) if stop.is_cancelled() => return,
                Ok(()) => {
                    tracing::warn!(subscriber = name, "subscriber stopped; starting it again")
                }
                Err(e) => {
                    tracing::error!(subscriber = name, error = %e, "subscriber task failed; starting it again")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(options.restart_pause) => {}
            }
        }
    }

    /// One run of a subscriber: take its lease when it needs one, then handle events until
    /// `stop` (after a last pass) or until the lease is lost (at once).
    async fn run_leg(
        self,
        sub: Arc<dyn Subscriber>,
        options: DispatchOptions,
        stop: CancellationToken,
        position: Arc<AtomicI64>,
    ) {
        let leases = match (&self.inner.leases, sub.delivery()) {
            (Some(home), Delivery::OncePerCluster) => home.leases(),
            _ => {
                self.work(&*sub, &options, &stop, None, &position).await;
                return;
            }
        };
        let Some(lease) = leases.acquire(sub.name(), options.lease_retry, &stop).await else {
            return;
        };
        let lost = lease.lost();
        tokio::select! {
            biased;
            _ = lost.cancelled() => {
                tracing::warn!(subscriber = sub.name(), "lost the subscriber's lease; stopped handling");
            }
            _ = self.work(&*sub, &options, &stop, Some(&lease), &position) => {}
        }
        lease.release().await;
    }

    async fn work(
        &self,
        sub: &dyn Subscriber,
        options: &DispatchOptions,
        stop: &CancellationToken,
        lease: Option<&lease::Lease>,
        position: &AtomicI64,
    ) {
        let name = sub.name();
        let once = sub.delivery() == Delivery::OncePerCluster;
        let mut wake = self.inner.wake.subscribe();
        let mut dead_wake = self.inner.dead_wake.subscribe();
        let stored = loop {
            match self.load_cursor(name).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(subscriber = name, error = %e, "cannot read subscriber cursor; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        let mut cursor = if once {
            stored
        } else {
            let own = position.load(Ordering::Acquire);
            sub.resume_after(if own >= 0 { own } else { stored }).await
        };
        position.store(cursor, Ordering::Release);
        tracing::debug!(subscriber = name, cursor, "subscriber started");
        // When this subscriber's next dead letter is due (checked once at start).
        let mut dead_due = once.then(Instant::now);
        loop {
            let stopping = stop.is_cancelled();
            wake.borrow_and_update();
            if !stopping && dead_due.is_some_and(|due| due <= Instant::now()) {
                dead_due = self.retry_due_dead_letters(sub, options).await;
            }
            match self.read_batch(cursor, options.batch_size).await {
                Ok((batch, Some(last))) => {
                    let mut interrupted = false;
                    let handles = sub.events();
                    for event in &batch {
                        if !handles.contains(&event.name) {
                            cursor = event.id;
                            continue;
                        }
                        match self.deliver(sub, event, options, stop).await {
                            Outcome::Done => {}
                            Outcome::Failed { error, attempts } if once => {
                                match self
                                    .record_dead_letter(name, event, attempts, &error, options)
                                    .await
                                {
                                    Ok(due) => {
                                        dead_due = Some(dead_due.map_or(due, |d| d.min(due)));
                                    }
                                    Err(e) => {
                                        tracing::error!(subscriber = name, event_id = event.id, error = %e,
                                            "cannot record a dead letter; the event is tried again later");
                                        interrupted = true;
                                        break;
                                    }
                                }
                            }
                            Outcome::Failed { error, .. } => {
                                tracing::error!(subscriber = name, event_id = event.id, event = %event.name, error = %error,
                                    "per-node subscriber gave up on an event after all retries (clients recover it by replay)");
                            }
                            Outcome::Stopped => {
                                interrupted = true;
                                break;
                            }
                        }
                        cursor = event.id;
                    }
                    if !interrupted {
                        cursor = cursor.max(last);
                    }
                    position.store(cursor, Ordering::Release);
                    if let Err(e) = self.save_cursor(name, cursor, once, lease).await {
                        tracing::warn!(subscriber = name, cursor, error = %e, "cannot save subscriber cursor");
                    }
                    if !interrupted {
                        continue;
                    }
                    if stop.is_cancelled() {
                        return;
                    }
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
            let pause = dead_due
                .map(|d| d.saturating_duration_since(Instant::now()))
                .map_or(options.poll_interval, |d| d.min(options.poll_interval));
            tokio::select! {
                _ = stop.cancelled(), if !stopping => {}
                _ = wake.changed() => {}
                _ = dead_wake.changed() => {
                    if once {
                        dead_due = Some(Instant::now());
                    }
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Runs the handler up to `max_attempts` times with growing pauses; a panic counts as a
    /// failed attempt.
    async fn deliver(
        &self,
        sub: &dyn Subscriber,
        event: &StoredEvent,
        options: &DispatchOptions,
        stop: &CancellationToken,
    ) -> Outcome {
        let mut backoff = options.retry_backoff;
        let max = options.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match attempt_once(sub, event).await {
                Ok(()) => return Outcome::Done,
                Err(e) => e,
            };
            if attempt >= max {
                tracing::error!(
                    subscriber = sub.name(), event_id = event.id, event = %event.name, attempts = attempt, error = %error,
                    "subscriber still fails on an event after all retries"
                );
                return Outcome::Failed {
                    error,
                    attempts: attempt,
                };
            }
            tracing::warn!(subscriber = sub.name(), event_id = event.id, attempt, error = %error, "subscriber failed; retrying");
            tokio::select! {
                _ = stop.cancelled() => return Outcome::Stopped,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            attempt += 1;
        }
    }

    async fn load_cursor(&self, name: &str) -> Result<i64, ApiError> {
        if let Some(row) = subscriber_cursor::Entity::find_by_id(name.to_owned())
            .one(&self.inner.log)
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
            .exec(&self.inner.log)
            .await?;
        let row = subscriber_cursor::Entity::find_by_id(name.to_owned())
            .one(&self.inner.log)
            .await?;
        Ok(row.map(|r| r.last_event_id).unwrap_or(0))
    }

    /// Saves a cursor. Under a lease it is written on the lease's own connection, so a node
    /// that lost its lease cannot write it any more. A per-node subscriber's row only moves
    /// forward (several nodes write it).
    async fn save_cursor(
        &self,
        name: &str,
        cursor: i64,
        once: bool,
        lease: Option<&lease::Lease>,
    ) -> Result<(), ApiError> {
        if let Some(lease) = lease {
            return lease.save_cursor(name, cursor).await;
        }
        if once {
            let row = subscriber_cursor::ActiveModel {
                name: Set(name.to_owned()),
                last_event_id: Set(cursor),
                updated_at: Set(now()),
            };
            subscriber_cursor::Entity::update(row)
                .exec(&self.inner.db)
                .await?;
            return Ok(());
        }
        let backend = self.inner.log.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => {
                "UPDATE subscriber_cursors SET last_event_id = GREATEST(last_event_id, $1), updated_at = $2 WHERE name = $3"
            }
            _ => {
                "UPDATE subscriber_cursors SET last_event_id = MAX(last_event_id, ?), updated_at = ? WHERE name = ?"
            }
        };
        self.inner
            .log
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [cursor.into(), now().into(), name.into()],
            ))
            .await?;
        Ok(())
    }
}

/// One attempt; a panic in the handler is caught and becomes an error.
async fn attempt_once(sub: &dyn Subscriber, event: &StoredEvent) -> Result<(), String> {
    match AssertUnwindSafe(sub.handle(event)).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".to_owned());
            Err(format!("handler panicked: {message}"))
        }
    }
}

/// A subscriber made from a name and an async function, for the common case.
pub struct FnSubscriber<F> {
    name: &'static str,
    events: &'static [EventName],
    delivery: Delivery,
    f: F,
}

/// Builds a side-effect [`Subscriber`] ([`Delivery::OncePerCluster`]) from a stable name, the
/// events it handles (see [`Subscriber::events`]) and a handler function.
pub fn subscriber<F, Fut>(
    name: &'static str,
    events: &'static [EventName],
    f: F,
) -> Arc<dyn Subscriber>
where
    F: Fn(StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    Arc::new(FnSubscriber {
        name,
        events,
        delivery: Delivery::OncePerCluster,
        f,
    })
}

/// Builds a [`Delivery::PerNode`] subscriber (runs on every node) from a stable name, the
/// events it handles and a handler function.
pub fn node_subscriber<F, Fut>(
    name: &'static str,
    events: &'static [EventName],
    f: F,
) -> Arc<dyn Subscriber>
where
    F: Fn(StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    Arc::new(FnSubscriber {
        name,
        events,
        delivery: Delivery::PerNode,
        f,
    })
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
    fn events(&self) -> &'static [EventName] {
        self.events
    }
    fn delivery(&self) -> Delivery {
        self.delivery
    }
    async fn handle(&self, event: &StoredEvent) -> Result<(), ApiError> {
        (self.f)(event.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[tokio::test]
    async fn after_commit_hooks_run_only_after_a_successful_commit() {
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("an in-memory database");
        let bus = EventBus::new(db);
        let ran = Arc::new(AtomicBool::new(false));

        let mut tx = bus.begin().await.expect("begin");
        let flag = ran.clone();
        tx.after_commit(move || flag.store(true, Ordering::SeqCst));
        assert!(!ran.load(Ordering::SeqCst), "not before the commit");
        tx.commit().await.expect("commit");
        assert!(ran.load(Ordering::SeqCst), "after the commit");

        let dropped = Arc::new(AtomicBool::new(false));
        let mut tx = bus.begin().await.expect("begin");
        let flag = dropped.clone();
        tx.after_commit(move || flag.store(true, Ordering::SeqCst));
        drop(tx); // rolled back
        assert!(!dropped.load(Ordering::SeqCst), "never after a rollback");
    }

    #[tokio::test]
    async fn a_signal_after_commit_wakes_the_waiter_of_that_bus_only() {
        let bus = EventBus::new(sea_orm::Database::connect("sqlite::memory:").await.unwrap());
        let other = EventBus::new(sea_orm::Database::connect("sqlite::memory:").await.unwrap());
        let mut tx = bus.begin().await.unwrap();
        tx.signal_after_commit("test.signal");
        tx.commit().await.unwrap();
        // The permit is stored for the next waiter of this bus's signal.
        tokio::time::timeout(Duration::from_secs(1), bus.signal("test.signal").notified())
            .await
            .expect("woken");
        let not_woken = tokio::time::timeout(
            Duration::from_millis(50),
            other.signal("test.signal").notified(),
        )
        .await;
        assert!(not_woken.is_err(), "another bus's waiter was woken");
    }
}
