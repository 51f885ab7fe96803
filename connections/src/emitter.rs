//! [`SocketEmitter`]: the only place that calls socketioxide's `emit`. Generic over the
//! adapter: the in-process one on a single node, `socketioxide-redis` in a cluster.
//!
//! Two kinds of emit, on purpose:
//! - durable events from the log go to **this node's** sockets only
//!   ([`SocketEmitter::emit_to_target_here`]): every node delivers the log to its own sockets,
//!   so fanning them out through Redis as well would give each socket the event once per node;
//! - ephemeral traffic (typing, presence) goes through the adapter to every node. If the
//!   adapter cannot reach the other nodes (Redis down) it still reaches this node's sockets.

use serde::Serialize;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::{BroadcastError, SocketIo};
use uuid::Uuid;

use catalog::rooms::{self, Target};

/// Counts one emit handed to Socket.IO (`marketplace_socket_emits_total{event}`).
fn count_emit(event: &str) {
    metrics::counter!(kernel::monitor::SOCKET_EMITS, "event" => event.to_owned()).increment(1);
}

/// An emit that did not reach every socket it was meant for. Room emits are best effort per
/// socket: a closed socket or one whose send buffer is full is skipped, the others still
/// receive the event.
#[derive(Debug, thiserror::Error)]
#[error("emit failed: {0}")]
pub struct EmitError(String);

/// Sends events to rooms, users and everyone on the namespace `/`.
pub struct SocketEmitter<A: Adapter = LocalAdapter> {
    io: SocketIo<A>,
}

impl<A: Adapter> Clone for SocketEmitter<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
        }
    }
}

impl<A: Adapter> SocketEmitter<A> {
    pub fn new(io: SocketIo<A>) -> Self {
        Self { io }
    }

    /// The namespace `/`; gone once the server closed (socketioxide's `io.to` would panic).
    fn ns(&self) -> Result<BroadcastOperators<A>, EmitError> {
        self.io
            .of("/")
            .ok_or_else(|| EmitError("the socket server is closed".into()))
    }

    /// One emit to the union of `rooms`: a socket in several of them gets one copy. `data`
    /// is serialized once; a tuple becomes several Socket.IO arguments.
    pub async fn emit_to_rooms<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        if rooms.is_empty() {
            return Ok(());
        }
        count_emit(event);
        match self.ns()?.to(rooms.clone()).emit(event, data).await {
            Err(BroadcastError::Adapter(e)) => {
                tracing::debug!(error = %e, "other nodes unreachable; emitting on this node only");
                self.ns()?.local().to(rooms).emit(event, data).await
            }
            other => other,
        }
        .map_err(|e| EmitError(e.to_string()))
    }

    /// To the union of `rooms` except the sockets in `except` (e.g. the sender's own sockets),
    /// on every node.
    pub async fn emit_to_rooms_except<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        except: String,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        if rooms.is_empty() {
            return Ok(());
        }
        count_emit(event);
        match self
            .ns()?
            .to(rooms.clone())
            .except(except.clone())
            .emit(event, data)
            .await
        {
            Err(BroadcastError::Adapter(e)) => {
                tracing::debug!(error = %e, "other nodes unreachable; emitting on this node only");
                self.ns()?
                    .local()
                    .to(rooms)
                    .except(except)
                    .emit(event, data)
                    .await
            }
            other => other,
        }
        .map_err(|e| EmitError(e.to_string()))
    }

    pub async fn emit_to_room<T: Serialize + ?Sized>(
        &self,
        room: String,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit_to_rooms(vec![room], event, data).await
    }

    /// To every socket of this user (the `user-{id}` room).
    pub async fn emit_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: Uuid,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit_to_room(rooms::user_room(user_id), event, data)
            .await
    }

    pub async fn emit_to_sellers<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit_to_room(rooms::SELLERS.to_owned(), event, data)
            .await
    }

    pub async fn emit_to_buyers<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit_to_room(rooms::BUYERS.to_owned(), event, data)
            .await
    }

    /// To every socket of the namespace, on every node.
    pub async fn emit_global<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        count_emit(event);
        self.ns()?
            .emit(event, data)
            .await
            .map_err(|e| EmitError(e.to_string()))
    }

    /// To a routing [`Target`], on this node only: the durable path, where every node
    /// delivers the event log to its own sockets. Never touches Redis.
    pub async fn emit_to_target_here<T: Serialize + ?Sized>(
        &self,
        target: Target,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        if matches!(&target, Target::Rooms(rooms) if rooms.is_empty()) {
            return Ok(());
        }
        count_emit(event);
        let result = match target {
            Target::Everyone => self.ns()?.local().emit(event, data).await,
            Target::Rooms(rooms) if rooms.is_empty() => Ok(()),
            Target::Rooms(rooms) => self.ns()?.local().to(rooms).emit(event, data).await,
        };
        result.map_err(|e| EmitError(e.to_string()))
    }

    /// To one socket (replay). Fails when the socket is gone or its buffer is full.
    pub fn emit_to_socket<T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef<A>,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        count_emit(event);
        socket
            .emit(event, data)
            .map_err(|e| EmitError(e.to_string()))
    }

    /// The handle, for joining rooms and counting sockets (never for emitting).
    pub fn io(&self) -> &SocketIo<A> {
        &self.io
    }
}
