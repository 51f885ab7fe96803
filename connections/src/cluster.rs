//! Running several nodes: the Redis link of one node.
//!
//! Redis carries only what may be lost or is shared: Socket.IO adapter traffic between nodes
//! (typing relays, presence announcements) and presence counts. Durable events never go
//! through it (each node delivers the event log to its own sockets), so a Redis outage pauses
//! typing and presence and nothing else.
//!
//! [`RedisLink`] is one RESP3 connection (redis' `ConnectionManager`, which reconnects by
//! itself) used for commands, publishing and subscribing. [`PubSubDriver`] plugs it into
//! `socketioxide-redis` as its driver. socketioxide-redis' own driver uses a plain multiplexed
//! connection that never comes back after Redis restarts; this one remembers every channel it
//! was asked to subscribe to and subscribes again after every reconnect, and it never fails a
//! subscription (the adapter would otherwise never register the namespace and the node could
//! not start while Redis is down): a subscription that could not be made is retried every
//! second until it is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The Socket.IO adapter of a node in a cluster.
pub type ClusterAdapter =
    socketioxide_redis::CustomRedisAdapter<socketioxide::adapter::Emitter, PubSubDriver>;

/// How long one Redis command may take before it counts as failed. Short: nothing waits on
/// Redis for long, typing and presence simply pause.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

type Handlers = HashMap<String, mpsc::Sender<ChanItem>>;

/// One node's connection to Redis, shared by the Socket.IO adapter, presence and anything
/// else that needs Redis (rate limits).
pub struct RedisLink {
    conn: ConnectionManager,
    prefix: String,
    node_id: String,
    handlers: Arc<RwLock<Handlers>>,
    /// True while every wanted channel is confirmed subscribed on the current connection.
    subscribed: Arc<AtomicBool>,
    resubscribe: Arc<Notify>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("prefix", &self.prefix)
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl RedisLink {
    /// Prepares the link without connecting (it connects on first use and after every loss
    /// by itself), so a node starts even while Redis is down. `url` must ask for RESP3
    /// (`?protocol=resp3`). Must be called inside the tokio runtime.
    ///
    /// Fails only on a URL redis cannot use.
    pub fn open(url: &str, prefix: &str) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let handlers: Arc<RwLock<Handlers>> = Arc::default();
        let subscribed = Arc::new(AtomicBool::new(false));
        let resubscribe = Arc::new(Notify::new());
        let push = {
            let handlers = handlers.clone();
            let subscribed = subscribed.clone();
            let resubscribe = resubscribe.clone();
            move |info: PushInfo| {
                on_push(info, &handlers, &subscribed, &resubscribe);
                Ok::<(), std::convert::Infallible>(())
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_push_sender(push)
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Arc::new(Self {
            conn,
            prefix: prefix.to_owned(),
            node_id: uuid::Uuid::now_v7().simple().to_string(),
            handlers,
            subscribed,
            resubscribe,
        }))
    }

    /// A handle on the shared connection (cheap to clone; commands are pipelined on it).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The key and channel prefix of this deployment (`REDIS_KEY_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// This process's id in the cluster (new at every start).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// `{prefix}:{suffix}`: every key this node writes.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    /// Ok when Redis answers and every channel the adapter needs is subscribed; else why not.
    pub async fn check(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let ping = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        match ping {
            Err(_) => Err("redis does not answer".into()),
            Ok(Err(e)) => Err(format!("redis does not answer: {e}")),
            Ok(Ok(_)) if !self.subscribed.load(Ordering::Acquire) => {
                self.resubscribe.notify_one();
                Err("redis answers but the adapter channels are not subscribed yet".into())
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Runs a command with the link's timeout.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        cmd: &mut redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.invoke_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("redis timed out".into()),
        }
    }

    /// Keeps the adapter's channels subscribed: after every reconnect (and until a failed
    /// subscription succeeds) it subscribes to all of them again. Stops on `cancel`.
    pub fn start(self: &Arc<Self>, cancel: CancellationToken, tracker: &TaskTracker) {
        let link = self.clone();
        tracker.spawn(async move {
            loop {
                if !link.subscribed.load(Ordering::Acquire) {
                    link.subscribe_all().await;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = link.resubscribe.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }

    async fn subscribe_all(&self) {
        let channels: Vec<String> = match self.handlers.read() {
            Ok(h) => h.keys().cloned().collect(),
            Err(_) => return,
        };
        if channels.is_empty() {
            return;
        }
        let mut conn = self.conn.clone();
        // Cleared first: a disconnection seen while subscribing sets it to false again.
        self.subscribed.store(true, Ordering::Release);
        match tokio::time::timeout(COMMAND_TIMEOUT, conn.subscribe(&channels)).await {
            Ok(Ok(())) => tracing::info!(channels = channels.len(), "redis channels subscribed"),
            Ok(Err(e)) => {
                self.subscribed.store(false, Ordering::Release);
                tracing::debug!(error = %e, "redis subscription failed; retrying");
            }
            Err(_) => {
                self.subscribed.store(false, Ordering::Release);
                tracing::debug!("redis subscription timed out; retrying");
            }
        }
    }
}

fn on_push(info: PushInfo, handlers: &RwLock<Handlers>, subscribed: &AtomicBool, wake: &Notify) {
    match info.kind {
        PushKind::Message | PushKind::SMessage if info.data.len() >= 2 => {
            let mut data = info.data.into_iter();
            let (Some(chan), Some(msg)) = (data.next(), data.next()) else {
                return;
            };
            let (Ok(chan), Ok(msg)) = (
                String::from_redis_value(chan),
                Vec::<u8>::from_redis_value(msg),
            ) else {
                tracing::debug!("undecodable redis message skipped");
                return;
            };
            let tx = handlers.read().ok().and_then(|h| h.get(&chan).cloned());
            if let Some(tx) = tx
                && tx.try_send((chan, msg)).is_err()
            {
                tracing::warn!("redis adapter channel full; a message was dropped");
            }
        }
        PushKind::Disconnection => {
            tracing::warn!("redis connection lost; typing and presence pause until it is back");
            subscribed.store(false, Ordering::Release);
            wake.notify_one();
        }
        _ => {}
    }
}

/// The `socketioxide-redis` driver over a [`RedisLink`].
#[derive(Clone)]
pub struct PubSubDriver(pub Arc<RedisLink>);

/// A Redis command that failed or timed out.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct DriverError(String);

impl Driver for PubSubDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let mut conn = self.0.conn.clone();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(chan).arg(val);
        let publish = cmd.query_async::<redis::Value>(&mut conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, publish).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(DriverError(e.to_string())),
            Err(_) => Err(DriverError("timed out".into())),
        }
    }

    /// Registers the channel and returns at once; the link's task makes (and remakes) the
    /// subscription.
    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        if let Ok(mut h) = self.0.handlers.write() {
            h.insert(chan, tx);
        }
        self.0.subscribed.store(false, Ordering::Release);
        self.0.resubscribe.notify_one();
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        if let Ok(mut h) = self.0.handlers.write() {
            h.remove(&chan);
        }
        let mut conn = self.0.conn.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, conn.unsubscribe(chan)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DriverError(e.to_string())),
            Err(_) => Err(DriverError("timed out".into())),
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let mut conn = self.0.conn.clone();
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(chan);
        let q = cmd.query_async::<(String, u16)>(&mut conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, q).await {
            Ok(Ok((_, n))) => Ok(n),
            Ok(Err(e)) => Err(DriverError(e.to_string())),
            Err(_) => Err(DriverError("timed out".into())),
        }
    }
}
