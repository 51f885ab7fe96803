//! The outgoing packet queue of a [`Socket`](crate::Socket).
//!
//! In-tree patch (see `PATCH.md`): this replaces the `tokio::sync::mpsc` channel and the
//! `watch` channel for volatile packets that every socket had.
//! - Memory: tokio's channel allocates its first block of 32 [`PacketBuf`] slots (~6.4 KB)
//!   with the socket, whatever the bound; this queue is a [`VecDeque`] that allocates only
//!   while packets wait, and frees its buffer once drained.
//! - Websocket fan-out on a runtime with one worker thread: once the websocket connection
//!   task has installed its sink, a packet sent while nothing waits in the queue is written to
//!   the socket at once, in the caller's context (one `send` syscall, no channel hop, no task
//!   wake-up). Only when the socket cannot take it (its buffer is full, or the connection task
//!   is reading or flushing) does the packet wait in the queue for the connection task, which
//!   keeps the order. With several worker threads packets always go through the queue, as
//!   before: the connection tasks woken by one emit then write in parallel on every worker,
//!   where direct writes would all run on the emitting thread.
//!
//! The bound is the same as the channel's: at most `capacity` [`PacketBuf`]s waiting or
//! reserved; a packet written directly does not count.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll, Waker},
};

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion};
use futures_core::Stream;
use futures_util::Sink;
use smallvec::smallvec;
use tokio::sync::{Notify, mpsc::error::TrySendError};
use tokio_tungstenite::tungstenite::{self, Message};

/// The write half of a websocket, type-erased (the [`Socket`](crate::Socket) is not generic
/// over the connection type).
pub(crate) type WsSink = Pin<Box<dyn Sink<Message, Error = tungstenite::Error> + Send>>;

/// The outgoing packets of one socket, and its websocket write half when it has one.
pub(crate) struct PacketQueue {
    state: Mutex<State>,
    capacity: usize,
    /// Woken when the queue is closed ([`PacketQueue::closed`]).
    closed: Notify,
}

struct State {
    packets: VecDeque<PacketBuf>,
    /// Places held by [`Permit`]s not used yet.
    reserved: usize,
    /// The latest volatile packets (sent after the queued ones, dropped if overwritten).
    volatile: Option<Box<PacketBuf>>,
    closed: bool,
    /// The consumer: the websocket connection task or a polling request.
    waker: Option<Waker>,
    ws: Option<WsWriter>,
}

struct WsWriter {
    sink: WsSink,
    protocol: ProtocolVersion,
    /// Senders write directly when nothing waits (see the module documentation).
    direct: bool,
    /// The sink holds frames not flushed yet (or was not ready): until the connection task
    /// has flushed them, new packets wait in the queue, in order.
    busy: bool,
}

/// What [`WsWriter::write_now`] did.
enum Written {
    /// All flushed to the socket.
    Flushed,
    /// All in the sink, not all flushed.
    Unflushed,
    /// What the sink could not take.
    Rest(PacketBuf),
}

/// A place reserved in the queue for one [`PacketBuf`].
pub(crate) struct Permit<'a> {
    queue: &'a PacketQueue,
}

impl Permit<'_> {
    pub(crate) fn send(self, packets: PacketBuf) {
        let queue = self.queue;
        std::mem::forget(self);
        let mut st = queue.state.lock().unwrap();
        st.reserved -= 1;
        queue.push(st, packets);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.queue.state.lock().unwrap().reserved -= 1;
    }
}

impl std::fmt::Debug for PacketQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock().unwrap();
        f.debug_struct("PacketQueue")
            .field("queued", &st.packets.len())
            .field("reserved", &st.reserved)
            .field("capacity", &self.capacity)
            .field("closed", &st.closed)
            .field("websocket", &st.ws.is_some())
            .finish()
    }
}

/// A websocket message for a packet (`None`: nothing to send).
fn ws_message(packet: Packet, protocol: ProtocolVersion) -> Option<Message> {
    match packet {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Some(Message::Binary(buff.into()))
            } else {
                Some(Message::Binary(bin))
            }
        }
        // A Noop packet may be sent by the server to end a polling request during an upgrade;
        // if it was not polled in time it is discarded here.
        Packet::Noop => None,
        packet => Some(Message::Text(String::from(packet).into())),
    }
}

impl WsWriter {
    /// Feeds the packets into the sink as far as it is ready; returns those it could not take.
    fn feed(&mut self, cx: &mut Context<'_>, mut packets: PacketBuf) -> Option<PacketBuf> {
        let mut sent = 0;
        for i in 0..packets.len() {
            match self.sink.as_mut().poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Ok(())) | Poll::Ready(Err(_)) => {}
            }
            sent = i + 1;
            let packet = std::mem::replace(&mut packets[i], Packet::Noop);
            if let Some(msg) = ws_message(packet, self.protocol) {
                self.busy = true;
                if let Err(_e) = self.sink.as_mut().start_send(msg) {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("error sending packet: {_e}");
                }
            }
        }
        if sent == packets.len() {
            None
        } else {
            self.busy = true;
            packets.drain(..sent);
            Some(packets)
        }
    }

    /// Writes the packets without waiting.
    fn write_now(&mut self, packets: PacketBuf) -> Written {
        now(|cx| match self.feed(cx, packets) {
            Some(rest) => Written::Rest(rest),
            None if self.poll_flush(cx).is_ready() => Written::Flushed,
            None => Written::Unflushed,
        })
    }

    /// Flushes the sink; `Pending` while the socket cannot take everything.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.busy {
            if let Poll::Ready(_res) = self.sink.as_mut().poll_flush(cx) {
                #[cfg(feature = "tracing")]
                if let Err(e) = _res {
                    tracing::debug!("error flushing packets: {e}");
                }
                self.busy = false;
            } else {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }
}

/// Runs `f` once with a no-op waker, outside tokio's cooperative budget: a fan-out writes to
/// thousands of sockets within one poll of the emitting task, and once its budget (128 I/O
/// operations) is spent every later write would return `Pending` and fall back to the queue.
fn now<T>(f: impl FnOnce(&mut Context<'_>) -> T) -> T {
    let mut f = Some(f);
    let once = std::future::poll_fn(move |cx| Poll::Ready(f.take().map(|f| f(cx))));
    let mut once = std::pin::pin!(tokio::task::unconstrained(once));
    match once.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Some(v)) => v,
        Poll::Ready(None) | Poll::Pending => unreachable!("polled once, ready at once"),
    }
}

impl State {
    fn register(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }
}

/// Frees the queue's buffer once it is empty (sockets are many, bursts are rare).
fn release_if_empty(packets: &mut VecDeque<PacketBuf>) {
    if packets.is_empty() && packets.capacity() > 0 {
        *packets = VecDeque::new();
    }
}

impl PacketQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "the buffer size must be greater than 0");
        Self {
            state: Mutex::new(State {
                packets: VecDeque::new(),
                reserved: 0,
                volatile: None,
                closed: false,
                waker: None,
                ws: None,
            }),
            capacity,
            closed: Notify::new(),
        }
    }

    fn check(&self, st: &State) -> Result<(), TrySendError<()>> {
        if st.closed {
            Err(TrySendError::Closed(()))
        } else if st.packets.len() + st.reserved >= self.capacity {
            Err(TrySendError::Full(()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn try_reserve(&self) -> Result<Permit<'_>, TrySendError<()>> {
        let mut st = self.state.lock().unwrap();
        self.check(&st)?;
        st.reserved += 1;
        Ok(Permit { queue: self })
    }

    pub(crate) fn try_send(&self, packet: Packet) -> Result<(), TrySendError<Packet>> {
        let st = self.state.lock().unwrap();
        match self.check(&st) {
            Ok(()) => {
                self.push(st, smallvec![packet]);
                Ok(())
            }
            Err(TrySendError::Full(())) => Err(TrySendError::Full(packet)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(packet)),
        }
    }

    /// Queues a packet whatever the bound (the Noop that ends a polling request on upgrade);
    /// `false` once closed.
    pub(crate) fn force_send(&self, packet: Packet) -> bool {
        let st = self.state.lock().unwrap();
        if st.closed {
            return false;
        }
        self.push(st, smallvec![packet]);
        true
    }

    /// Writes the packets to the websocket now if nothing waits before them and it can take
    /// them, else queues them for the consumer.
    fn push(&self, mut guard: std::sync::MutexGuard<'_, State>, packets: PacketBuf) {
        let st = &mut *guard;
        let rest = match st.ws.as_mut() {
            Some(ws) if ws.direct && !ws.busy && st.packets.is_empty() => {
                match ws.write_now(packets) {
                    Written::Flushed => return,
                    // The socket could not take everything: the connection task takes over,
                    // with a waker the socket's readiness will wake.
                    Written::Unflushed => None,
                    Written::Rest(rest) => Some(rest),
                }
            }
            // The connection task waits for the socket: it will find the packets after it.
            Some(ws) if ws.busy => {
                st.packets.push_back(packets);
                return;
            }
            _ => Some(packets),
        };
        if let Some(rest) = rest {
            st.packets.push_back(rest);
        }
        let waker = st.waker.take();
        drop(guard);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Replaces the pending volatile packets; `false` once the queue is closed.
    pub(crate) fn send_volatile(&self, packets: PacketBuf) -> bool {
        let mut guard = self.state.lock().unwrap();
        let st = &mut *guard;
        if st.closed {
            return false;
        }
        if let Some(ws) = st.ws.as_mut()
            && ws.direct
            && !ws.busy
            && st.packets.is_empty()
        {
            match ws.write_now(packets) {
                Written::Flushed => return true,
                Written::Unflushed => {}
                Written::Rest(rest) => st.packets.push_back(rest),
            }
        } else {
            st.volatile = Some(Box::new(packets));
        }
        let waker = st.waker.take();
        drop(guard);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// The polling consumer: the next queued packets, then the volatile ones; `None` once
    /// closed and drained.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<PacketBuf>> {
        let mut st = self.state.lock().unwrap();
        if let Some(packets) = st.packets.pop_front() {
            release_if_empty(&mut st.packets);
            return Poll::Ready(Some(packets));
        }
        if st.closed {
            return Poll::Ready(None);
        }
        if let Some(packets) = st.volatile.take() {
            return Poll::Ready(Some(*packets));
        }
        st.register(cx);
        Poll::Pending
    }

    /// A [`Stream`] of [`PacketQueue::poll_recv`].
    pub(crate) fn stream(&self) -> QueueStream<'_> {
        QueueStream { queue: self }
    }

    /// Hands the websocket write half to the queue; with `direct`, packets are written by
    /// their senders when nothing waits. Called by the connection task once it holds the
    /// consumer side.
    pub(crate) fn attach_ws(&self, sink: WsSink, protocol: ProtocolVersion, direct: bool) {
        self.state.lock().unwrap().ws = Some(WsWriter {
            sink,
            protocol,
            direct,
            busy: false,
        });
    }

    /// Whether senders should write directly: on a runtime with one worker thread.
    pub(crate) fn direct_writes() -> bool {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.metrics().num_workers() == 1,
            Err(_) => true,
        }
    }

    /// The websocket consumer, polled by the connection task: writes what waits (queued
    /// packets, then volatile ones) and flushes. Never ready; the task stops it on
    /// cancellation and then calls [`PacketQueue::detach_ws`].
    pub(crate) fn poll_ws(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.lock().unwrap();
        let st = &mut *st;
        st.register(cx);
        let Some(ws) = st.ws.as_mut() else {
            return Poll::Pending;
        };
        if st.volatile.is_some() {
            // After everything queued (the old `biased` select of the writer).
            st.packets.extend(st.volatile.take().map(|v| *v));
        }
        while let Some(packets) = st.packets.pop_front() {
            if let Some(rest) = ws.feed(cx, packets) {
                st.packets.push_front(rest);
                return Poll::Pending;
            }
        }
        release_if_empty(&mut st.packets);
        let _ = ws.poll_flush(cx);
        Poll::Pending
    }

    /// Takes the websocket write half back (no more direct writes) with what still waits,
    /// to be written before the websocket is closed.
    pub(crate) fn detach_ws(&self) -> Option<(WsSink, VecDeque<PacketBuf>)> {
        let mut st = self.state.lock().unwrap();
        let ws = st.ws.take()?;
        Some((ws.sink, std::mem::take(&mut st.packets)))
    }

    /// Websocket messages for packets, in order.
    pub(crate) fn ws_messages(
        packets: VecDeque<PacketBuf>,
        protocol: ProtocolVersion,
    ) -> impl Iterator<Item = Message> {
        packets
            .into_iter()
            .flatten()
            .filter_map(move |p| ws_message(p, protocol))
    }

    /// No more packets are accepted; the consumer still gets those already queued.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock().unwrap();
        st.closed = true;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        self.closed.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().unwrap().closed
    }

    /// Resolves once the queue is closed.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.closed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

/// The packets of a [`PacketQueue`] as a [`Stream`] (the polling transport's encoder).
pub(crate) struct QueueStream<'a> {
    queue: &'a PacketQueue,
}

impl Stream for QueueStream<'_> {
    type Item = PacketBuf;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PacketBuf>> {
        self.queue.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use engineioxide_core::Str;
    use futures_util::StreamExt;
    use tokio::io::DuplexStream;
    use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

    use super::*;

    async fn ws_pair(
        buffer: usize,
    ) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(buffer);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    fn packet(i: usize) -> Packet {
        Packet::Message(Str::from(format!("m{i}")))
    }

    fn msg(i: usize) -> PacketBuf {
        smallvec![packet(i)]
    }

    fn queued(q: &PacketQueue) -> usize {
        q.state.lock().unwrap().packets.len()
    }

    async fn next_text(client: &mut WebSocketStream<DuplexStream>) -> Message {
        tokio::time::timeout(Duration::from_secs(2), client.next())
            .await
            .expect("a frame should arrive")
            .unwrap()
            .unwrap()
    }

    /// One emit to many sockets runs in one poll of the emitting task: tokio's cooperative
    /// budget must not turn the writes after the 128th into queued ones.
    #[tokio::test]
    async fn a_fan_out_writes_directly_beyond_the_cooperative_budget() {
        let q = PacketQueue::new(4);
        let (server, mut client) = ws_pair(1 << 20).await;
        q.attach_ws(Box::pin(server.split().0), ProtocolVersion::V4, true);
        for i in 0..1000 {
            q.try_send(packet(i)).unwrap();
            assert_eq!(queued(&q), 0, "packet {i} waited in the queue");
        }
        for i in 0..1000 {
            assert_eq!(
                next_text(&mut client).await,
                Message::text(format!("4m{i}"))
            );
        }
    }

    /// Packets queued before the websocket is attached go first, then the direct ones; when
    /// the socket is full they wait, in order, for the connection task. Without direct
    /// writes, all go through the connection task.
    #[tokio::test]
    async fn packets_keep_their_order_through_the_queue() {
        for direct in [true, false] {
            keep_order(direct).await;
        }
    }

    async fn keep_order(direct: bool) {
        let q = Arc::new(PacketQueue::new(1000));
        q.try_send(packet(0)).unwrap();
        q.try_send(Packet::Noop).unwrap();
        let (server, mut client) = ws_pair(64).await;
        q.attach_ws(Box::pin(server.split().0), ProtocolVersion::V4, direct);
        let writer = {
            let q = q.clone();
            tokio::spawn(async move { std::future::poll_fn(|cx| q.poll_ws(cx)).await })
        };
        for i in 1..300 {
            q.try_send(packet(i)).unwrap();
        }
        assert!(
            queued(&q) > 0,
            "a 64-byte pipe cannot take 300 frames at once"
        );
        for i in 0..300 {
            assert_eq!(
                next_text(&mut client).await,
                Message::text(format!("4m{i}"))
            );
        }
        assert_eq!(queued(&q), 0);
        assert_eq!(
            q.state.lock().unwrap().packets.capacity(),
            0,
            "buffer freed"
        );
        writer.abort();
    }

    #[tokio::test]
    async fn the_bound_counts_queued_and_reserved_packets() {
        let q = PacketQueue::new(2);
        let permit = q.try_reserve().unwrap();
        q.try_send(packet(0)).unwrap();
        assert!(matches!(q.try_send(packet(1)), Err(TrySendError::Full(_))));
        drop(permit);
        q.try_reserve().unwrap().send(msg(1));
        assert!(matches!(q.try_reserve(), Err(TrySendError::Full(()))));
        assert_eq!(queued(&q), 2);
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_packets_and_hands_out_the_rest() {
        let q = PacketQueue::new(8);
        q.try_send(packet(0)).unwrap();
        assert!(q.send_volatile(msg(9)));
        let closed = async { q.closed().await };
        q.close();
        tokio::time::timeout(Duration::from_secs(1), closed)
            .await
            .expect("closed() resolves");
        assert!(q.is_closed());
        assert!(matches!(
            q.try_send(packet(1)),
            Err(TrySendError::Closed(_))
        ));
        assert!(!q.send_volatile(msg(2)));
        let rest: Vec<_> = q.stream().collect().await;
        assert_eq!(rest, vec![msg(0)]);
    }

    #[tokio::test]
    async fn polling_gets_queued_packets_then_the_latest_volatile_ones() {
        let q = PacketQueue::new(8);
        assert!(q.send_volatile(msg(7)));
        assert!(q.send_volatile(msg(8)));
        q.try_send(packet(0)).unwrap();
        let mut stream = q.stream();
        assert_eq!(stream.next().await, Some(msg(0)));
        assert_eq!(stream.next().await, Some(msg(8)));
        let pending = tokio::time::timeout(Duration::from_millis(20), stream.next()).await;
        assert!(pending.is_err(), "nothing left");
    }
}
