//! Who is calling: the client's IP address, decided in one place.
//!
//! Behind a reverse proxy every connection comes from the proxy, so limits per client
//! (login failures, connections) would lump everyone together; believing `X-Forwarded-For`
//! from anyone would let a client pick any address it likes. So the header is read only when
//! the peer is one of the [`TrustedProxies`] (`TRUSTED_PROXIES`), and then from the right:
//! the client is the nearest hop that is not itself a trusted proxy. With no trusted proxies
//! the header is ignored and the client is the peer.
//!
//! REST handlers take [`ClientAddr`]; other code (the socket gateway, the accept loop) calls
//! [`client_ip`] or [`TrustedProxies::contains`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

use crate::error::ApiError;

/// The proxies whose `X-Forwarded-For` (and `X-Forwarded-Proto` / `X-Forwarded-Host`) are
/// believed: IPs and CIDR networks. Empty (the default): no header is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

/// A `TRUSTED_PROXIES` entry that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR network (such as 10.0.0.0/8)")]
pub struct BadProxy(pub String);

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    /// A comma-separated list (`10.0.0.1, 10.1.0.0/16, ::1`); blank entries are skipped.
    fn from_str(list: &str) -> Result<Self, BadProxy> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(|ip| IpNet::from(ip.to_canonical()))
                    .map_err(|_| BadProxy(entry.to_owned()))?,
            };
            nets.push(net);
        }
        Ok(Self(Arc::new(nets)))
    }
}

impl TrustedProxies {
    /// `true` when no proxy is trusted (every forwarding header is ignored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The value of a single-valued forwarding header (`X-Forwarded-Proto`,
    /// `X-Forwarded-Host`) when the peer is a trusted proxy: the first entry, as proxies
    /// append their own after the original one. `None` when it is absent or not believed.
    pub fn forwarded<'a>(
        &self,
        peer: IpAddr,
        headers: &'a HeaderMap,
        name: &str,
    ) -> Option<&'a str> {
        if !self.contains(peer) {
            return None;
        }
        let value = headers.get(name)?.to_str().ok()?;
        let first = value.split(',').next()?.trim();
        (!first.is_empty()).then_some(first)
    }
}

/// The client's address for a request that came from `peer` with these headers: the peer
/// itself, or, when the peer is a trusted proxy, the nearest `X-Forwarded-For` hop (read from
/// the right, across every such header) that is not a trusted proxy. A hop that is not an IP
/// address ends the walk at the last trusted hop: what lies left of it was written by
/// someone we do not trust.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if proxies.is_empty() || !proxies.contains(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !proxies.contains(ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| hop.trim_matches(['[', ']']).parse::<IpAddr>())
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The calling client's IP address (see the module docs): an extractor for handlers that
/// count or log per client. Needs the server's `ConnectInfo<SocketAddr>` (the app's serve
/// loop provides it; without it the request is answered 500: a wiring mistake, not the
/// client's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key a limit per client counts under: the IPv4 address, or the /64 network of an
    /// IPv6 one (one subscriber usually holds a whole /64, so counting single IPv6 addresses
    /// would give one client 2^64 separate budgets).
    pub fn limit_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        }
    }
}

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(ApiError::internal(
                "no peer address on the request (the server must be run with ConnectInfo)",
            ));
        };
        let proxies = TrustedProxies::from_ref(state);
        Ok(Self(client_ip(peer.ip(), &parts.headers, &proxies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["9.9.9.9"]), &none),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let p: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        // A client-supplied hop on the left is never reached.
        let h = headers(&["6.6.6.6, 1.2.3.4", "10.1.2.3"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &p), ip("1.2.3.4"));
        // From a peer that is not trusted, the header means nothing.
        assert_eq!(client_ip(ip("8.8.8.8"), &h, &p), ip("8.8.8.8"));
        // Only trusted hops: the leftmost of them.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["10.0.0.5"]), &p),
            ip("10.0.0.5")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                &headers(&["1.1.1.1, nonsense, 10.0.0.7"]),
                &p
            ),
            ip("10.0.0.7")
        );
        // Ports and IPv4-mapped IPv6 addresses.
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &headers(&["1.2.3.4:5678"]), &p),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["[2001:db8::1]:80"]), &p),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            "10.0.0.1, nope".parse::<TrustedProxies>(),
            Err(BadProxy("nope".into()))
        );
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        let p: TrustedProxies = "10.0.0.9/8".parse().unwrap();
        assert!(p.contains(ip("10.200.0.1")));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(
            ClientAddr(ip("2001:db8:1:2:3:4:5:6")).limit_key(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(ClientAddr(ip("1.2.3.4")).limit_key(), "1.2.3.4");
    }
}
