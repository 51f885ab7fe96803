//! [`SocketEmitter`]: the only place that calls socketioxide's `emit`. Generic over the
//! adapter, so switching to `socketioxide-redis` later changes the type parameter, not the
//! callers.

use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::routing::{self, Target};

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
        self.io
            .to(rooms)
            .emit(event, data)
            .await
            .map_err(|e| EmitError(e.to_string()))
    }

    /// To the union of `rooms` except the sockets in `except` (e.g. the sender's own sockets).
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
        self.io
            .to(rooms)
            .except(except)
            .emit(event, data)
            .await
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
        self.emit_to_room(routing::user_room(user_id), event, data)
            .await
    }

    pub async fn emit_to_sellers<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit_to_room(routing::SELLERS.to_owned(), event, data)
            .await
    }

    pub async fn emit_to_buyers<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit_to_room(routing::BUYERS.to_owned(), event, data)
            .await
    }

    /// To every socket of the namespace.
    pub async fn emit_global<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        count_emit(event);
        self.io
            .emit(event, data)
            .await
            .map_err(|e| EmitError(e.to_string()))
    }

    /// To a routing [`Target`].
    pub async fn emit_to_target<T: Serialize + ?Sized>(
        &self,
        target: Target,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        match target {
            Target::Everyone => self.emit_global(event, data).await,
            Target::Rooms(rooms) => self.emit_to_rooms(rooms, event, data).await,
        }
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
