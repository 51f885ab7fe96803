//! The connections module: the only code that knows sockets.
//!
//! - [`Connections`] is a [`kernel::Module`]: it wraps the HTTP router with the Socket.IO
//!   layer (`/socket.io`, namespace `/`), subscribes to the bus as `connections.sockets`,
//!   serves `GET /api/events`, `GET /api/users/{id}/presence` and `GET /api/asyncapi.json`,
//!   and closes every socket when the server shuts down, after the last delivery pass.
//! - [`routing::ROUTES`] is the one table from catalog events to rooms.
//! - [`SocketEmitter`] is the only caller of socketioxide's `emit`.

pub mod asyncapi;
pub mod emitter;
mod gateway;
mod head;
pub mod nodes;
mod presence;
mod replay;
mod routes;
pub mod routing;

use std::sync::Arc;
use std::time::Duration;

use kernel::bus::Delivery;
use kernel::ports::{ChatPort, RequestAccess};
use kernel::{ApiError, AppState, Module, Runtime, StoredEvent, Subscriber};
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use utoipa_axum::router::OpenApiRouter;

pub use emitter::{EmitError, SocketEmitter};
pub use gateway::{Ack, ChatReadArgs, ChatSendArgs, ChatTypingArgs};
pub use presence::entity as presence_entity;
pub use replay::{REPLAY_LIMIT, SUBSCRIBER};
pub use routes::{EventItem, PresenceView};

/// Socket.IO settings.
#[derive(Debug, Clone)]
pub struct ConnectionsConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest incoming packet, in bytes (default 1,000,000, the JS server's).
    pub max_payload: u64,
    /// Origins allowed to authenticate a socket with the `token` cookie (besides the same
    /// origin). CORS headers themselves come from the app's CORS layer around this one.
    pub cors_origins: Vec<String>,
    /// Packets queued per socket before emits to it fail (default 1024: a full replay of
    /// [`REPLAY_LIMIT`] events fits).
    pub max_buffer_size: usize,
    /// tungstenite's read buffer per websocket (default 1024; socketioxide's is 4096).
    pub ws_read_buffer_size: usize,
    /// `chat:typing` / `chat:stopped-typing` allowed per socket and second (burst 5).
    pub typing_per_sec: f64,
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
            typing_per_sec: 5.0,
        }
    }
}

/// `connections.sockets`: delivers the event log to this node's own sockets, on every node
/// ([`Delivery::PerNode`]). It starts where replays on this node were told the live stream
/// begins ([`gateway::Gateway::resume_live`]), so a socket gets no gap and no duplicate.
struct SocketDelivery {
    gw: Arc<gateway::Gateway>,
    emitter: SocketEmitter,
}

#[async_trait::async_trait]
impl Subscriber for SocketDelivery {
    fn name(&self) -> &'static str {
        SUBSCRIBER
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
    layer: SocketIoLayer,
    emitter: SocketEmitter,
    /// This process's id in the `nodes` table (see [`nodes`]).
    node_id: String,
}

impl Connections {
    /// Builds the Socket.IO server. `requests` answers who may follow a request room,
    /// `chats` who may follow a chat room (and carries `chat:send` / `chat:read`).
    pub fn new(
        cfg: ConnectionsConfig,
        state: AppState,
        requests: Arc<dyn RequestAccess>,
        chats: Arc<dyn ChatPort>,
    ) -> Self {
        let gw = Arc::new(gateway::Gateway {
            state,
            requests,
            chats,
            live: tokio::sync::Mutex::new(None),
            presence: presence::Presence::default(),
            cors_origins: cfg.cors_origins.clone(),
            typing_per_sec: cfg.typing_per_sec.max(0.1),
            typing_burst: cfg.typing_per_sec.max(1.0),
        });
        let (layer, io) = SocketIo::builder()
            .req_path(head::SOCKET_IO_PATH)
            .ping_interval(cfg.ping_interval)
            .ping_timeout(cfg.ping_timeout)
            .max_payload(cfg.max_payload)
            .max_buffer_size(cfg.max_buffer_size)
            .ws_read_buffer_size(cfg.ws_read_buffer_size)
            .with_state(gw.clone())
            .build_layer();
        io.ns("/", gateway::on_connect.with(gateway::authenticate));
        Self {
            gw,
            layer,
            emitter: SocketEmitter::new(io),
            node_id: kernel::contract::new_id().to_string(),
        }
    }

    /// The emitter (for tools and tests that need to send outside the catalog).
    pub fn emitter(&self) -> &SocketEmitter {
        &self.emitter
    }

    /// This process's id in the `nodes` table.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }
}

impl Module for Connections {
    fn name(&self) -> &'static str {
        "connections"
    }

    fn router(&self) -> OpenApiRouter<AppState> {
        routes::router(self.gw.clone())
    }

    fn subscribers(&self, _state: &AppState) -> Vec<Arc<dyn Subscriber>> {
        vec![Arc::new(SocketDelivery {
            gw: self.gw.clone(),
            emitter: self.emitter.clone(),
        })]
    }

    /// Closes every socket once the server has drained (`rt.drained`): after the last
    /// delivery pass, so the events of every acknowledged change reach the sockets still
    /// connected first.
    fn start(&self, rt: &Runtime) {
        rt.tracker.spawn(nodes::run(
            rt.state.db.clone(),
            self.emitter.io().clone(),
            self.node_id.clone(),
            rt.cancel.clone(),
        ));
        let io = self.emitter.io().clone();
        let drained = rt.drained.clone();
        rt.tracker.spawn(async move {
            drained.cancelled().await;
            io.close().await;
        });
    }

    fn wrap(&self, router: axum::Router) -> axum::Router {
        // `detach` runs first: engineioxide keeps the request head of every socket.
        router
            .layer(self.layer.clone())
            .layer(axum::middleware::map_request(head::detach_layer))
    }
}
