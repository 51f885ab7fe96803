//! The SSRF guard: a push endpoint is a URL a client chose, and the server POSTs to it. It
//! must be `https://` and must not reach a loopback, private, link-local, unspecified or
//! otherwise non-public address, however it is spelled (`0x7f000001`, `2130706433`,
//! `0177.0.0.1`, `[::ffff:127.0.0.1]`, a name that resolves to one). The `url` crate parses
//! the host as a browser does (numeric IPv4 spellings become the address they denote); names
//! are resolved and every address they resolve to must be public.
//!
//! The check is made twice: when a subscription is created (a 422), and at every connection
//! the sender opens, by [`GuardedResolver`], the DNS resolver of the sending HTTP client: the
//! addresses it checks are the addresses the client connects to, so a name that resolved to
//! a public address at subscribe time and to `127.0.0.1` later (DNS rebinding) is refused
//! at send time. IP-literal hosts are not resolved, so [`Guard::check_literal`] is called
//! before each send.
//!
//! `PUSH_ALLOW_HTTP_ENDPOINTS=true` (development and tests) turns all of this off.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// The longest endpoint accepted (browsers' are well under 1 KB).
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Why an endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("must be an absolute URL")]
    NotAUrl,
    #[error("must be at most {MAX_ENDPOINT_LEN} characters")]
    TooLong,
    #[error("must be an https:// URL")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error("must not point to a loopback, private, link-local or reserved address ({0})")]
    NotPublic(IpAddr),
    #[error("its host does not resolve")]
    Unresolvable,
}

/// Checks push endpoints. Cheap to clone.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// `PUSH_ALLOW_HTTP_ENDPOINTS`: accept `http://` and any address (development, tests).
    pub allow_http: bool,
}

impl Guard {
    /// Parses `endpoint` and checks what can be checked without DNS: scheme, credentials,
    /// length, and an IP-literal host.
    pub fn parse(&self, endpoint: &str) -> Result<Url, Refused> {
        if endpoint.len() > MAX_ENDPOINT_LEN {
            return Err(Refused::TooLong);
        }
        let url = Url::parse(endpoint).map_err(|_| Refused::NotAUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refused::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        if url.host().is_none() {
            return Err(Refused::NoHost);
        }
        self.check_literal(&url)?;
        Ok(url)
    }

    /// An IP-literal host must be public (a name is checked when it is resolved).
    pub fn check_literal(&self, url: &Url) -> Result<(), Refused> {
        if self.allow_http {
            return Ok(());
        }
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(Refused::NoHost),
        };
        if is_public(ip) {
            Ok(())
        } else {
            Err(Refused::NotPublic(ip))
        }
    }

    /// The full check at subscribe time: [`Guard::parse`], then every address the host's
    /// name resolves to must be public.
    pub async fn check(&self, endpoint: &str) -> Result<Url, Refused> {
        let url = self.parse(endpoint)?;
        if self.allow_http {
            return Ok(url);
        }
        if let Some(Host::Domain(name)) = url.host() {
            resolve_public(name).await?;
        }
        Ok(url)
    }
}

/// Resolves `name` and answers its addresses when every one of them is public.
async fn resolve_public(name: &str) -> Result<Vec<SocketAddr>, Refused> {
    // The port is not used: the HTTP client puts the URL's port on the addresses.
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|_| Refused::Unresolvable)?
        .collect();
    if addrs.is_empty() {
        return Err(Refused::Unresolvable);
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused::NotPublic(bad.ip()));
    }
    Ok(addrs)
}

/// The sending client's DNS resolver: resolves a push service's name and hands the client
/// only addresses that passed [`is_public`] (all or nothing), so the client connects to
/// exactly the addresses checked.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_public(&name).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl GuardedResolver {
    /// As the client builder takes it.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self)
    }
}

/// Is `ip` a globally reachable unicast address: not loopback, private, link-local,
/// unspecified, shared (CGNAT), multicast, broadcast, documentation, benchmarking or
/// reserved, for IPv4 and IPv6 alike; IPv6 forms that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4) are judged by that address, and Teredo is refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network", 0.0.0.0 included
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)              // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168)              // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, deprecated).
    if s[0..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    // IPv4/IPv6 translation (64:ff9b::/96, 64:ff9b:1::/48).
    if s[0] == 0x64 && s[1] == 0xff9b {
        if s[2..6] == [0, 0, 0, 0] {
            let [.., a, b, c, d] = ip.octets();
            return is_public_v4(Ipv4Addr::new(a, b, c, d));
        }
        return false;
    }
    // 6to4 (2002::/16) carries an IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        let [_, _, a, b, c, d, ..] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    let first = s[0];
    !((first & 0xff00) == 0xff00         // multicast
        || (first & 0xfe00) == 0xfc00    // unique local (fc00::/7)
        || (first & 0xffc0) == 0xfe80    // link-local (fe80::/10)
        || (first & 0xffc0) == 0xfec0    // site-local (deprecated)
        || (first == 0x2001 && s[1] == 0x0db8) // documentation
        || (first == 0x2001 && s[1] == 0)      // Teredo (embeds an obfuscated IPv4)
        || (first == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID
        || (first == 0x0100 && s[1..4] == [0, 0, 0])       // discard-only
        || first == 0) // other reserved ::/16 forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Guard {
        Guard { allow_http: false }
    }

    #[test]
    fn every_spelling_of_a_private_host_is_refused() {
        for endpoint in [
            "https://127.0.0.1/push",
            "https://10.0.0.1/",
            "https://[::1]/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:10.1.2.3]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::]/",
            "https://169.254.169.254/latest/meta-data",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://0.0.0.0/",
            "https://[::]/",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
        ] {
            assert!(
                matches!(strict().parse(endpoint), Err(Refused::NotPublic(_))),
                "{endpoint} was not refused: {:?}",
                strict().parse(endpoint)
            );
        }
    }

    #[test]
    fn scheme_credentials_and_length_are_checked() {
        assert_eq!(
            strict().parse("http://push.example.com/"),
            Err(Refused::NotHttps)
        );
        assert_eq!(
            strict().parse("ftp://push.example.com/"),
            Err(Refused::NotHttps)
        );
        assert_eq!(strict().parse("not a url"), Err(Refused::NotAUrl));
        assert_eq!(
            strict().parse("https://u:p@push.example.com/"),
            Err(Refused::Credentials)
        );
        let long = format!("https://push.example.com/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(strict().parse(&long), Err(Refused::TooLong));
        assert!(
            strict()
                .parse("https://fcm.googleapis.com/fcm/send/abc")
                .is_ok()
        );
        assert!(strict().parse("https://8.8.8.8/").is_ok());
        assert!(strict().parse("https://[2606:4700::1111]/").is_ok());
        let dev = Guard { allow_http: true };
        assert!(dev.parse("http://127.0.0.1:8090/notify/x").is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        assert!(matches!(
            strict().check("https://localhost/push").await,
            Err(Refused::NotPublic(_))
        ));
        assert!(matches!(
            strict().check("https://localhost./push").await,
            Err(Refused::NotPublic(_)) | Err(Refused::Unresolvable)
        ));
    }
}
