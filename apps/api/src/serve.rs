//! The HTTP accept loop: what `axum::serve` does, plus what it cannot be told.
//!
//! - A request head (request line and headers) must arrive within
//!   `HTTP_HEADER_TIMEOUT_SECS`, however slowly it trickles in; then the connection is closed
//!   (hyper's `header_read_timeout`). The same clock runs while a keep-alive connection waits
//!   for its next request, so idle keep-alive connections are closed after that long too.
//! - At most `MAX_CONNECTIONS_PER_CLIENT` open TCP connections per peer address (IPv6: per
//!   /64); beyond, a new connection is closed as soon as it is accepted. A connection keeps
//!   its place until its socket closes, after a websocket upgrade too. Connections from
//!   `TRUSTED_PROXIES` are not counted (everyone behind the proxy shares its address; the
//!   proxy enforces its own limits).
//!
//! Everything else is as with `axum::serve`: HTTP/1.1 with upgrades (Socket.IO's
//! websockets), `ConnectInfo<SocketAddr>` on every request, and a graceful shutdown: when
//! `shutdown` resolves the listener stops accepting, every connection finishes the request
//! in progress and closes, and the returned future resolves once they are all closed
//! (upgraded connections are no longer the server's by then: their owner closes them).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use kernel::TrustedProxies;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// What the accept loop enforces (see the module docs).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub header_timeout: Duration,
    pub max_connections_per_client: usize,
    pub trusted_proxies: TrustedProxies,
}

impl ServeOptions {
    /// The options of the configuration's `net` settings.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            header_timeout: config.net.header_timeout,
            max_connections_per_client: config.net.max_connections_per_client,
            trusted_proxies: config.net.trusted_proxies.clone(),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down gracefully (see
/// the module docs). Resolves once every connection it still owned is closed.
///
/// `quiesced` is sent once shutdown has started and every connection has been told to stop
/// (or has ended): from then on no new request is dispatched, so a caller that then waits
/// for the requests in progress has seen every request that will ever be answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    quiesced: tokio::sync::oneshot::Sender<()>,
) {
    // Connection tasks hold a receiver of `signal`, dropped when shutdown starts, a receiver
    // of `told`, dropped once they told hyper to stop (or ended), and a receiver of `close`,
    // dropped when they end: the loop waits for the last one of each.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (told_tx, told_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let counts = ConnectionCounts::new(options.max_connections_per_client);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let place = if options.trusted_proxies.contains(peer.ip()) {
            None
        } else {
            match counts.admit(peer.ip()) {
                Some(place) => Some(place),
                None => {
                    tracing::debug!(%peer, "too many connections from this client; refused");
                    drop(stream);
                    continue;
                }
            }
        };
        let io = TokioIo::new(Counted {
            stream,
            _place: place,
        });
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout)
            .keep_alive(true);
        let (signal_tx, close_rx) = (signal_tx.clone(), close_rx.clone());
        let mut told_rx = Some(told_rx.clone());
        tokio::spawn(async move {
            let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
            let mut shutting_down = pin!(signal_tx.closed());
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut shutting_down, if told_rx.is_some() => {
                        conn.as_mut().graceful_shutdown();
                        told_rx = None;
                    }
                }
            }
            drop(told_rx);
            drop(close_rx);
        });
    }
    drop(told_rx);
    drop(close_rx);
    drop(listener);
    told_tx.closed().await;
    let _ = quiesced.send(());
    close_tx.closed().await;
}

/// An accept that failed: a connection reset before it was accepted is nothing; anything
/// else (such as running out of file descriptors) is logged and waited out for a second, as
/// `axum::serve` and hyper do, instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Open connections per client (IPv4 address, or IPv6 /64).
#[derive(Clone)]
struct ConnectionCounts {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionCounts {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when it holds `max` already.
    fn admit(&self, ip: IpAddr) -> Option<Place> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Place {
            counts: self.open.clone(),
            key,
        })
    }
}

/// The key connections are counted under: the IPv4 address, or the /64 of an IPv6 one (one
/// subscriber usually holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// One connection's place in [`ConnectionCounts`], given back when dropped.
struct Place {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A TCP stream that holds its [`Place`] for as long as it is open, wherever it goes (hyper
/// hands it to the websocket after an upgrade).
struct Counted {
    stream: TcpStream,
    _place: Option<Place>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_max_places_and_gets_one_back_when_a_connection_closes() {
        let counts = ConnectionCounts::new(2);
        let a: IpAddr = "1.2.3.4".parse().unwrap();
        let first = counts.admit(a).unwrap();
        let _second = counts.admit(a).unwrap();
        assert!(counts.admit(a).is_none());
        assert!(counts.admit("5.6.7.8".parse().unwrap()).is_some());
        drop(first);
        assert!(counts.admit(a).is_some());
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let counts = ConnectionCounts::new(1);
        let _one = counts.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(counts.admit("2001:db8::2".parse().unwrap()).is_none());
        assert!(counts.admit("2001:db8:0:1::1".parse().unwrap()).is_some());
        let _v4 = counts.admit("9.9.9.9".parse().unwrap()).unwrap();
        assert!(counts.admit("::ffff:9.9.9.9".parse().unwrap()).is_none());
    }

    #[test]
    fn counts_leave_no_entry_behind() {
        let counts = ConnectionCounts::new(3);
        let places: Vec<_> = (0..3)
            .map(|_| counts.admit("1.1.1.1".parse().unwrap()).unwrap())
            .collect();
        drop(places);
        assert!(counts.open.lock().unwrap().is_empty());
    }
}
