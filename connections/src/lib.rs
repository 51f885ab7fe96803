//! The connections module: the only code that knows sockets.
//!
//! - [`Connections`] is a [`kernel::Module`]: it wraps the HTTP router with the Socket.IO
//!   layer (`/socket.io`, namespace `/`), subscribes to the bus as `connections.sockets`,
//!   serves `GET /api/events`, `GET /api/users/{id}/presence` and `GET /api/asyncapi.json`,
//!   and closes every socket when the server shuts down, after the last delivery pass.
//! - Which rooms an event reaches is declared once, in the `catalog` crate's event table;
//!   this crate turns those rules into emits, replay and the AsyncAPI document.
//! - [`SocketEmitter`] is the only caller of socketioxide's `emit`.
//! - With a [`cluster::RedisLink`] the node joins a cluster: the Socket.IO Redis adapter
//!   carries typing and presence to the other nodes, presence is counted in Redis, and durable
//!   events are still delivered by each node to its own sockets from the event log.
//!
//! It depends on no domain module: what it must know about requests, chats and users it asks
//! through the kernel's ports ([`kernel::ports::RequestAccess`], [`kernel::ports::ChatPort`],
//! [`kernel::UserDirectory`]), whose implementations the assembly plugs in.

pub mod asyncapi;
mod client_events;
pub mod cluster;
pub mod emitter;
mod gateway;
mod handshake;
mod head;
mod live;
pub mod nodes;
mod origin;
mod presence;
mod replay;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use kernel::bus::Delivery;
use kernel::ports::{ChatPort, RequestAccess};
use kernel::{ApiError, AppState, Module, Runtime, StoredEvent, Subscriber};
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder};
use utoipa_axum::router::OpenApiRouter;

use cluster::{ClusterAdapter, PubSubDriver, RedisLink};

pub use client_events::{Ack, ChatReadArgs, ChatSendArgs, ChatTypingArgs, TYPING_QUOTA};
pub use emitter::{EmitError, SocketEmitter};
pub use presence::entity as presence_entity;
pub use replay::{REPLAY_LIMIT, SUBSCRIBER};
pub use routes::{EventItem, PresenceView};

/// Socket.IO settings.
#[derive(Debug, Clone)]
pub struct ConnectionsConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest incoming packet, in bytes (default 1,000,000, the JS server's): a polling
    /// body larger answers 413; a websocket frame or message larger (beyond
    /// [`WS_FRAMING_ALLOWANCE`]) closes the connection as soon as its length is read.
    pub max_payload: u64,
    /// Origins allowed to authenticate a socket with the `token` cookie besides the same
    /// origin (`*` is not one: see the `origin` module). CORS headers themselves come from
    /// the app's CORS layer around this one.
    pub cors_origins: Vec<String>,
    /// Packets queued per socket before emits to it fail (default 1024: a full replay of
    /// [`REPLAY_LIMIT`] events fits).
    pub max_buffer_size: usize,
    /// tungstenite's read buffer per websocket (default 1024; socketioxide's is 4096).
    pub ws_read_buffer_size: usize,
    /// Set: this node is one of a cluster sharing this Redis (`REDIS_URL`).
    pub redis: Option<Arc<RedisLink>>,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            cors_origins: Vec::new(),
            max_buffer_size: 1024,
            ws_read_buffer_size: 1024,
            redis: None,
        }
    }
}

/// `connections.sockets`: delivers the event log to this node's own sockets, on every node
/// ([`Delivery::PerNode`]). It starts where replays on this node were told the live stream
/// begins ([`gateway::Gateway::resume_live`]), so a socket gets no gap and no duplicate.
struct SocketDelivery<A: Adapter> {
    gw: Arc<gateway::Gateway>,
    emitter: SocketEmitter<A>,
}

#[async_trait::async_trait]
impl<A: Adapter> Subscriber for SocketDelivery<A> {
    fn name(&self) -> &'static str {
        SUBSCRIBER
    }
    /// Every event: which sockets get it is the catalog's room table's business.
    fn events(&self) -> &'static [catalog::events::EventName] {
        &catalog::events::EventName::ALL
    }
    fn delivery(&self) -> Delivery {
        Delivery::PerNode
    }
    async fn resume_after(&self, position: i64) -> i64 {
        self.gw.resume_live(position).await
    }
    async fn handle(&self, event: &StoredEvent) -> Result<(), ApiError> {
        self.gw.deliver(&self.emitter, event).await;
        Ok(())
    }
}

/// The Socket.IO gateway as a module.
pub struct Connections {
    gw: Arc<gateway::Gateway>,
    io: Io,
    /// This process's id in the `nodes` table (see [`nodes`]).
    node_id: String,
}

/// The Socket.IO server of this node, with the adapter chosen at start-up.
enum Io {
    /// One node: rooms and broadcasts in memory.
    Local {
        layer: SocketIoLayer<LocalAdapter>,
        emitter: SocketEmitter<LocalAdapter>,
    },
    /// A node of a cluster: broadcasts also reach the other nodes through Redis.
    Cluster {
        layer: SocketIoLayer<ClusterAdapter>,
        emitter: SocketEmitter<ClusterAdapter>,
        link: Arc<RedisLink>,
    },
}

impl Connections {
    /// Builds the Socket.IO server. `requests` answers who may follow a request room,
    /// `chats` who may follow a chat room (and carries `chat:send` / `chat:read`).
    /// With `cfg.redis` the node joins a cluster (must be called inside the tokio runtime).
    pub fn new(
        cfg: ConnectionsConfig,
        state: AppState,
        requests: Arc<dyn RequestAccess>,
        chats: Arc<dyn ChatPort>,
    ) -> Self {
        let presence = match &cfg.redis {
            Some(link) => presence::Presence::clustered(link.clone()),
            None => presence::Presence::default(),
        };
        let gw = Arc::new(gateway::Gateway {
            state,
            requests,
            chats,
            live: tokio::sync::Mutex::new(None),
            live_known: false.into(),
            presence,
            cors_origins: cfg.cors_origins.clone(),
        });
        let io = match &cfg.redis {
            None => {
                let (layer, io) = configure(SocketIo::builder(), &cfg, &gw);
                io.ns(
                    "/",
                    handshake::on_connect::<LocalAdapter>
                        .with(handshake::authenticate::<LocalAdapter>),
                );
                Io::Local {
                    layer,
                    emitter: SocketEmitter::new(io),
                }
            }
            Some(link) => {
                let adapter = socketioxide_redis::RedisAdapterCtr::new_with_driver(
                    PubSubDriver(link.clone()),
                    socketioxide_redis::RedisAdapterConfig::new()
                        .with_prefix(link.prefix().to_owned())
                        .with_request_timeout(std::time::Duration::from_secs(2)),
                );
                let builder = SocketIo::builder().with_adapter::<ClusterAdapter>(adapter);
                let (layer, io) = configure(builder, &cfg, &gw);
                let init = io.ns(
                    "/",
                    handshake::on_connect::<ClusterAdapter>
                        .with(handshake::authenticate::<ClusterAdapter>),
                );
                // The driver's subscribe only registers its channel (the link subscribes in
                // the background), so the namespace is registered on the first poll.
                match futures::FutureExt::now_or_never(init) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => tracing::error!(error = %e, "socket.io adapter not ready"),
                    None => {
                        tracing::error!("socket.io adapter did not register the namespace at once")
                    }
                }
                Io::Cluster {
                    layer,
                    emitter: SocketEmitter::new(io),
                    link: link.clone(),
                }
            }
        };
        Self {
            gw,
            io,
            node_id: catalog::contract::new_id().to_string(),
        }
    }

    /// This process's id in the `nodes` table.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The presence port domain modules ask before reaching a user outside the app (email,
    /// web push): "has this user a connected socket on any node".
    pub fn presence(&self) -> Arc<dyn kernel::ports::Presence> {
        Arc::new(PresencePort(self.gw.clone()))
    }
}

/// [`kernel::ports::Presence`] over this node's presence tracker (and Redis in a cluster).
struct PresencePort(Arc<gateway::Gateway>);

#[async_trait::async_trait]
impl kernel::ports::Presence for PresencePort {
    async fn is_connected(
        &self,
        user_id: uuid::Uuid,
    ) -> Result<bool, kernel::ports::PresenceUnknown> {
        self.0
            .presence
            .is_connected_anywhere(user_id)
            .await
            .map_err(kernel::ports::PresenceUnknown)
    }
}

/// What a websocket message may carry beyond `max_payload`: the engine.io packet type, the
/// Socket.IO packet type, attachment count, namespace and ack id in front of the payload. On
/// polling the body limit covers the same framing; a few hundred bytes of slack keep a
/// message whose payload is `max_payload` usable on both transports.
pub const WS_FRAMING_ALLOWANCE: usize = 256;

/// The largest websocket frame and message: `max_payload` plus [`WS_FRAMING_ALLOWANCE`].
/// tungstenite refuses a frame whose header announces more before reading its payload, and a
/// fragmented message as soon as its fragments add up to more, so an oversized message is
/// never buffered whole, before authentication too.
pub fn ws_max_message_size(max_payload: u64) -> usize {
    usize::try_from(max_payload)
        .unwrap_or(usize::MAX)
        .saturating_add(WS_FRAMING_ALLOWANCE)
}

/// The builder settings both adapters share.
fn configure<A: Adapter>(
    builder: SocketIoBuilder<A>,
    cfg: &ConnectionsConfig,
    gw: &Arc<gateway::Gateway>,
) -> (SocketIoLayer<A>, SocketIo<A>) {
    builder
        .req_path(head::SOCKET_IO_PATH)
        .ping_interval(cfg.ping_interval)
        .ping_timeout(cfg.ping_timeout)
        .max_payload(cfg.max_payload)
        .max_buffer_size(cfg.max_buffer_size)
        .ws_read_buffer_size(cfg.ws_read_buffer_size)
        .ws_max_message_size(ws_max_message_size(cfg.max_payload))
        .ws_max_frame_size(ws_max_message_size(cfg.max_payload))
        .with_state(gw.clone())
        .build_layer()
}

impl Module for Connections {
    fn name(&self) -> &'static str {
        "connections"
    }

    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.gw.clone())
    }

    fn subscribers(&self, _state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        let gw = self.gw.clone();
        vec![match &self.io {
            Io::Local { emitter, .. } => Arc::new(SocketDelivery {
                gw,
                emitter: emitter.clone(),
            }),
            Io::Cluster { emitter, .. } => Arc::new(SocketDelivery {
                gw,
                emitter: emitter.clone(),
            }),
        }]
    }

    /// Closes every socket once the server has drained (`rt.drained`): after the last
    /// delivery pass, so the events of every acknowledged change reach the sockets still
    /// connected first.
    fn start(&self, rt: &Runtime) {
        match &self.io {
            Io::Local { emitter, .. } => {
                rt.tracker.spawn(nodes::run(
                    rt.state.db.clone(),
                    emitter.io().clone(),
                    self.node_id.clone(),
                    rt.cancel.clone(),
                ));
                let (io, drained) = (emitter.io().clone(), rt.drained.clone());
                rt.tracker.spawn(async move {
                    drained.cancelled().await;
                    io.close().await;
                });
            }
            Io::Cluster { emitter, link, .. } => {
                rt.tracker.spawn(nodes::run(
                    rt.state.db.clone(),
                    emitter.io().clone(),
                    self.node_id.clone(),
                    rt.cancel.clone(),
                ));
                // Presence leaves the cluster first (announcing offline while the adapter
                // still reaches the other nodes), then the sockets close; the link keeps its
                // subscriptions until then.
                let closed = tokio_util::sync::CancellationToken::new();
                link.start(closed.clone(), &rt.tracker);
                let (gw, em, drained) = (self.gw.clone(), emitter.clone(), rt.drained.clone());
                rt.tracker.spawn(async move {
                    drained.cancelled().await;
                    gw.presence.leave_cluster(&gw, &em).await;
                    em.io().close().await;
                    closed.cancel();
                });
                let (gw, em, drained) = (self.gw.clone(), emitter.clone(), rt.drained.clone());
                rt.tracker.spawn(async move {
                    gw.presence.upkeep(&gw, &em, drained).await;
                });
            }
        }
    }

    fn wrap(&self, router: axum::Router) -> axum::Router {
        // `detach` runs first: engineioxide keeps the request head of every socket.
        let router = match &self.io {
            Io::Local { layer, .. } => router.layer(layer.clone()),
            Io::Cluster { layer, .. } => router.layer(layer.clone()),
        };
        router.layer(axum::middleware::map_request(head::detach_layer))
    }
}
