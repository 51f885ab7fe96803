//! One push over HTTP (RFC 8030): the payload encrypted for the subscription (RFC 8291
//! `aes128gcm`, by `web-push-native`), signed for its push service (RFC 8292 VAPID), POSTed
//! with `reqwest`, and the answer read as what to do next.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use web_push_native::{Auth, p256};

use crate::guard::{Guard, GuardedResolver, Refused};
use crate::message::Message;
use crate::vapid::Vapid;

/// RFC 8030 `TTL`: how long the push service keeps a push for a device that is offline.
pub const TTL_SECS: u64 = 86_400;

/// The longest one push request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What the push service's answer means for this subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Accepted (201, or any 2xx).
    Accepted,
    /// 404 or 410: the subscription no longer exists; delete it.
    Gone,
    /// 429, 5xx, a timeout or a refused connection: try again later, not before
    /// `retry_after` when the service said so.
    Retry {
        retry_after: Option<Duration>,
        error: String,
    },
    /// Anything else (400, 401/403 for VAPID, 413, an endpoint the guard refuses): trying
    /// again would fail the same way.
    Failed(String),
}

/// A subscription's browser keys, decoded.
pub struct Keys {
    pub p256dh: p256::PublicKey,
    pub auth: Auth,
}

/// Why a browser key is not usable (422 at subscribe time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    #[error("must be a base64url uncompressed P-256 point (65 bytes)")]
    P256dh,
    #[error("must be a base64url 16-byte secret")]
    Auth,
}

fn b64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

impl Keys {
    /// Decodes the `p256dh` (an uncompressed point on P-256, as RFC 8291 requires) and
    /// `auth` (16 bytes) of a subscription.
    pub fn decode(p256dh: &str, auth: &str) -> Result<Self, BadKey> {
        let point = b64url(p256dh)
            .filter(|b| b.len() == 65 && b[0] == 0x04)
            .ok_or(BadKey::P256dh)?;
        let p256dh = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| BadKey::P256dh)?;
        let secret: [u8; 16] = b64url(auth)
            .and_then(|b| b.try_into().ok())
            .ok_or(BadKey::Auth)?;
        Ok(Self {
            p256dh,
            auth: Auth::from(secret),
        })
    }

    /// `(p256dh, auth)` in base64url without padding, the one spelling stored.
    pub fn encode(&self) -> (String, String) {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        (
            URL_SAFE_NO_PAD.encode(self.p256dh.to_encoded_point(false).as_bytes()),
            URL_SAFE_NO_PAD.encode(&self.auth[..]),
        )
    }
}

/// Sends pushes. One HTTP client (connection pool) for all of them; with the guard on, its
/// DNS resolver is [`GuardedResolver`], redirects are not followed and no proxy is used, so
/// every connection goes to an address the guard checked.
pub struct Sender {
    /// `Err` only when no client could be built (no TLS backend): every push then fails
    /// (never a fallback client without the guard's resolver).
    client: Result<reqwest::Client, String>,
    guard: Guard,
}

impl Sender {
    pub fn new(guard: Guard) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("marketplace-push/", env!("CARGO_PKG_VERSION")));
        if !guard.allow_http {
            builder = builder
                .https_only(true)
                .no_proxy()
                .dns_resolver(GuardedResolver::shared());
        }
        let client = builder.build().map_err(|e| {
            tracing::error!(error = %e, "cannot build the push HTTP client; pushes will fail");
            e.to_string()
        });
        Self { client, guard }
    }

    /// Encrypts `message` for the subscription and POSTs it to `endpoint`.
    pub async fn send(
        &self,
        vapid: &Vapid,
        endpoint: &str,
        keys: &Keys,
        message: &Message,
    ) -> Sent {
        let client = match &self.client {
            Ok(client) => client,
            Err(e) => return Sent::Failed(format!("no HTTP client: {e}")),
        };
        let url = match self.guard.parse(endpoint) {
            Ok(url) => url,
            Err(refused) => return Sent::Failed(format!("endpoint refused: {refused}")),
        };
        let body = match web_push_native::encrypt(
            message.payload.clone().into_bytes(),
            &keys.p256dh,
            &keys.auth,
        ) {
            Ok(body) => body,
            Err(e) => return Sent::Failed(format!("cannot encrypt: {e}")),
        };
        let authorization = match vapid.authorization(&url) {
            Ok(a) => a,
            Err(e) => return Sent::Failed(format!("cannot sign VAPID: {e}")),
        };
        let mut request = client
            .post(url)
            .header("TTL", TTL_SECS.to_string())
            .header("Urgency", message.urgency.as_str())
            .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::AUTHORIZATION, authorization)
            .body(body);
        if let Some(topic) = &message.topic {
            request = request.header("Topic", topic);
        }
        match request.send().await {
            Ok(res) => read_answer(res.status(), res.headers()),
            Err(e) if refused_by_guard(&e) => {
                Sent::Failed(format!("endpoint refused at send: {}", chain(&e)))
            }
            Err(e) => Sent::Retry {
                retry_after: None,
                error: chain(&e),
            },
        }
    }
}

/// The meaning of a push service's answer.
pub fn read_answer(status: StatusCode, headers: &HeaderMap) -> Sent {
    if status.is_success() {
        return Sent::Accepted;
    }
    match status.as_u16() {
        404 | 410 => Sent::Gone,
        429 | 500..=599 => Sent::Retry {
            retry_after: retry_after(headers),
            error: format!("push service answered {status}"),
        },
        _ => Sent::Failed(format!("push service answered {status}")),
    }
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110); a date in the past is "now".
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn refused_by_guard(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<Refused>().is_some() {
            return true;
        }
        source = err.source();
    }
    false
}

/// An error with its causes, for the delivery's `last_error` (no secrets in there: the URL
/// is the push service's).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    /// RFC 8291 Appendix A. `web-push-native` does not let a caller fix the salt and the
    /// sender's ephemeral key (its `encrypt_predictably` is private), so the vector is
    /// checked by decrypting the Appendix A message with the crate's `decrypt` and the
    /// receiver's keys, and by a round trip of our own encryption with the Appendix A keys.
    mod rfc8291_appendix_a {
        use super::*;

        const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
        const MESSAGE: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
        const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
        const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
        const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
        const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";

        fn ua_secret() -> p256::SecretKey {
            p256::SecretKey::from_slice(&b64url(UA_PRIVATE).unwrap()).unwrap()
        }

        #[test]
        fn the_appendix_a_message_decrypts_to_its_plaintext() {
            let keys = Keys::decode(UA_PUBLIC, AUTH).unwrap();
            assert_eq!(keys.p256dh, ua_secret().public_key());
            let message = b64url(MESSAGE).unwrap();
            // The header as the RFC lays it out: salt, rs = 4096, idlen = 65, keyid = as_public.
            assert_eq!(&message[..16], &b64url(SALT).unwrap()[..]);
            assert_eq!(&message[16..20], &4096u32.to_be_bytes());
            assert_eq!(message[20], 65);
            assert_eq!(&message[21..86], &b64url(AS_PUBLIC).unwrap()[..]);
            let plain = web_push_native::decrypt(message, &ua_secret(), &keys.auth).unwrap();
            assert_eq!(plain, PLAINTEXT);
        }

        #[test]
        fn our_encryption_for_the_appendix_a_receiver_decrypts_with_its_private_key() {
            let keys = Keys::decode(UA_PUBLIC, AUTH).unwrap();
            let body =
                web_push_native::encrypt(PLAINTEXT.to_vec(), &keys.p256dh, &keys.auth).unwrap();
            assert_eq!(
                body[20], 65,
                "keyid is the sender's uncompressed public key"
            );
            assert_eq!(
                body.len(),
                86 + PLAINTEXT.len() + 17,
                "one record: padding delimiter and tag"
            );
            let plain = web_push_native::decrypt(body, &ua_secret(), &keys.auth).unwrap();
            assert_eq!(plain, PLAINTEXT);
        }
    }

    #[test]
    fn browser_keys_must_be_an_uncompressed_point_and_a_16_byte_secret() {
        let p = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert!(Keys::decode(p, "BTBZMqHH6r4Tts7J_aSIgg").is_ok());
        assert!(Keys::decode(&format!("{p}="), "BTBZMqHH6r4Tts7J_aSIgg==").is_ok());
        assert_eq!(
            Keys::decode(p, "BTBZMqHH6r4Tts7J").err(),
            Some(BadKey::Auth)
        );
        assert_eq!(
            Keys::decode("AAAA", "BTBZMqHH6r4Tts7J_aSIgg").err(),
            Some(BadKey::P256dh)
        );
        let mut off_curve = b64url(p).unwrap();
        off_curve[64] ^= 1;
        let off_curve = URL_SAFE_NO_PAD.encode(off_curve);
        assert_eq!(
            Keys::decode(&off_curve, "BTBZMqHH6r4Tts7J_aSIgg").err(),
            Some(BadKey::P256dh)
        );
    }

    /// The guard at send time: the client's resolver refuses a name that resolves to
    /// loopback (as after DNS rebinding), a literal is refused before any request, and
    /// nothing connects to the listener behind them.
    #[tokio::test]
    async fn private_endpoints_are_refused_at_send_and_nothing_connects() {
        let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = trap.local_addr().unwrap().port();
        let sender = Sender::new(Guard { allow_http: false });
        let vapid = Vapid::new(
            web_push_native::jwt_simple::algorithms::ES256KeyPair::generate(),
            "mailto:ops@example.com".into(),
        );
        let keys = Keys::decode(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "BTBZMqHH6r4Tts7J_aSIgg",
        )
        .unwrap();
        let message = Message {
            payload: "{}".into(),
            urgency: crate::message::Urgency::Normal,
            topic: None,
        };
        for endpoint in [
            format!("https://localhost:{port}/push"),
            format!("https://127.0.0.1:{port}/push"),
            format!("https://[::ffff:127.0.0.1]:{port}/push"),
        ] {
            let sent = sender.send(&vapid, &endpoint, &keys, &message).await;
            assert!(
                matches!(&sent, Sent::Failed(e) if e.contains("endpoint refused")),
                "{endpoint}: {sent:?}"
            );
        }
        let connected = tokio::time::timeout(Duration::from_millis(200), trap.accept()).await;
        assert!(connected.is_err(), "something connected");
    }

    #[test]
    fn answers_are_read_as_the_rfc_says() {
        let none = HeaderMap::new();
        assert_eq!(read_answer(StatusCode::CREATED, &none), Sent::Accepted);
        assert_eq!(read_answer(StatusCode::GONE, &none), Sent::Gone);
        assert_eq!(read_answer(StatusCode::NOT_FOUND, &none), Sent::Gone);
        assert!(matches!(
            read_answer(StatusCode::BAD_REQUEST, &none),
            Sent::Failed(_)
        ));
        assert!(matches!(
            read_answer(StatusCode::PAYLOAD_TOO_LARGE, &none),
            Sent::Failed(_)
        ));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert!(matches!(
            read_answer(StatusCode::TOO_MANY_REQUESTS, &h),
            Sent::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(120)
        ));
        assert!(matches!(
            read_answer(StatusCode::SERVICE_UNAVAILABLE, &none),
            Sent::Retry {
                retry_after: None,
                ..
            }
        ));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
