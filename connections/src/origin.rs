//! Which pages may open a socket with the `token` cookie.
//!
//! A browser sends its cookies with a WebSocket (or a polling request) to our host from any
//! site, and CORS does not apply to WebSockets: a page on `https://evil.example` could open a
//! socket as whoever is logged in. So a socket authenticated by the cookie is accepted only
//! when its `Origin` is our own (scheme and host of the request) or an origin listed by name
//! in `CORS_ORIGINS`. `*` there lets any site call REST without credentials; it never admits a
//! cookie socket. A token in `auth` or in the `Authorization` header is not sent by a browser
//! on its own, so those sockets are not checked here.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::request::Parts;
use kernel::TrustedProxies;

/// Whether a handshake authenticated by the cookie may come from its `Origin`.
///
/// No `Origin` header: not a cross-site browser request (browsers always send it on
/// WebSockets and on cross-origin requests), accepted. `Origin: null` (sandboxed pages, local
/// files) matches nothing. Our own origin is the request's `Host` (or `X-Forwarded-Host` from
/// a trusted proxy) with its scheme: `X-Forwarded-Proto` from a trusted proxy when it says,
/// otherwise http or https (a proxy we do not know of may have ended TLS).
pub(crate) fn cookie_origin_allowed(
    parts: &Parts,
    listed: &[String],
    proxies: &TrustedProxies,
) -> bool {
    let headers = &parts.headers;
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some((scheme, host)) = split_origin(origin) else {
        return false;
    };
    let named = listed
        .iter()
        .filter(|o| o.as_str() != "*")
        .filter_map(|o| split_origin(o))
        .any(|(s, h)| s == scheme && normalize_host(&h, &s) == normalize_host(&host, &scheme));
    if named {
        return true;
    }
    let peer: Option<IpAddr> = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = |name: &str| peer.and_then(|p| proxies.forwarded(p, headers, name));
    let own_host = forwarded("x-forwarded-host").or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    });
    let Some(own_host) = own_host else {
        return false;
    };
    if let Some(proto) = forwarded("x-forwarded-proto")
        && !proto.eq_ignore_ascii_case(&scheme)
    {
        return false;
    }
    normalize_host(own_host, &scheme) == normalize_host(&host, &scheme)
}

/// `scheme://host[:port]` (a trailing `/` tolerated) as lower-case (scheme, host[:port]);
/// `None` for anything else, `null` included.
fn split_origin(origin: &str) -> Option<(String, String)> {
    let origin = origin.trim().trim_end_matches('/');
    let (scheme, host) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !(scheme == "http" || scheme == "https") || host.is_empty() || host.contains('/') {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase()))
}

/// `host[:port]` lower-cased, without the default port of `scheme`.
fn normalize_host(host: &str, scheme: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    match host.strip_suffix(default) {
        Some(bare) => bare.to_owned(),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], peer: &str) -> Parts {
        let mut req = http::Request::builder().uri("/socket.io/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let peer: SocketAddr = peer.parse().unwrap();
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    const PEER: &str = "127.0.0.1:5000";

    #[test]
    fn a_star_never_admits_a_foreign_origin() {
        let p = parts(
            &[("origin", "https://evil.example"), ("host", "shop.example")],
            PEER,
        );
        let none = TrustedProxies::default();
        assert!(!cookie_origin_allowed(&p, &["*".into()], &none));
        assert!(!cookie_origin_allowed(&p, &[], &none));
        assert!(cookie_origin_allowed(
            &p,
            &["*".into(), "https://evil.example".into()],
            &none
        ));
    }

    #[test]
    fn the_same_origin_is_accepted_with_default_ports_and_any_case() {
        let none = TrustedProxies::default();
        for (origin, host) in [
            ("http://shop.example", "shop.example"),
            ("https://Shop.Example", "shop.example:443"),
            ("http://127.0.0.1:3000", "127.0.0.1:3000"),
        ] {
            let p = parts(&[("origin", origin), ("host", host)], PEER);
            assert!(cookie_origin_allowed(&p, &[], &none), "{origin} {host}");
        }
        for (origin, host) in [
            ("http://127.0.0.1:3001", "127.0.0.1:3000"),
            ("null", "shop.example"),
            ("http://shop.example.evil.example", "shop.example"),
            ("ftp://shop.example", "shop.example"),
        ] {
            let p = parts(&[("origin", origin), ("host", host)], PEER);
            assert!(!cookie_origin_allowed(&p, &[], &none), "{origin} {host}");
        }
        let p = parts(&[("host", "shop.example")], PEER);
        assert!(
            cookie_origin_allowed(&p, &[], &none),
            "no Origin: not a browser"
        );
    }

    #[test]
    fn a_trusted_proxy_says_the_scheme_and_host() {
        let proxies: TrustedProxies = "127.0.0.1".parse().unwrap();
        let via_proxy = |origin: &str, peer: &str| {
            parts(
                &[
                    ("origin", origin),
                    ("host", "backend:3000"),
                    ("x-forwarded-host", "shop.example"),
                    ("x-forwarded-proto", "https"),
                ],
                peer,
            )
        };
        assert!(cookie_origin_allowed(
            &via_proxy("https://shop.example", PEER),
            &[],
            &proxies
        ));
        // Plain http is not the origin the proxy serves.
        assert!(!cookie_origin_allowed(
            &via_proxy("http://shop.example", PEER),
            &[],
            &proxies
        ));
        // From a peer that is not a trusted proxy the forwarding headers mean nothing.
        assert!(!cookie_origin_allowed(
            &via_proxy("https://shop.example", "10.0.0.1:5000"),
            &[],
            &proxies
        ));
    }
}
