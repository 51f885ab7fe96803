//! SHKeeper callback authentication: `X-Shkeeper-Signature` = lowercase hex
//! HMAC-SHA256(api key, `"{timestamp}." + raw body`) with `X-Shkeeper-Timestamp` (Unix seconds)
//! within ±300 s; or, only when allowed, the legacy `X-Shkeeper-Api-Key` header.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-shkeeper-signature";
pub const TIMESTAMP_HEADER: &str = "x-shkeeper-timestamp";
pub const API_KEY_HEADER: &str = "x-shkeeper-api-key";
/// How far a callback's timestamp may be from our clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// How a callback proved it came from the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticated {
    Signature,
    LegacyApiKey,
}

impl Authenticated {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::LegacyApiKey => "legacy_api_key",
        }
    }
}

/// Why a callback was not accepted. All of them answer 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingHeaders,
    BadTimestamp,
    StaleTimestamp,
    BadSignature,
    LegacyNotAllowed,
    BadApiKey,
}

impl Rejection {
    pub fn message(self) -> &'static str {
        match self {
            Self::MissingHeaders => "missing X-Shkeeper-Signature/X-Shkeeper-Timestamp",
            Self::BadTimestamp => "X-Shkeeper-Timestamp is not a Unix time",
            Self::StaleTimestamp => "X-Shkeeper-Timestamp is more than 300 s away",
            Self::BadSignature => "the signature does not match",
            Self::LegacyNotAllowed => "unsigned callbacks are not accepted",
            Self::BadApiKey => "the API key does not match",
        }
    }
}

/// The signature SHKeeper sends for this body at this time.
pub fn sign(key: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(key, &timestamp.to_string(), body))
}

/// The MAC over the timestamp exactly as it was sent, a dot, and the raw body.
fn mac(key: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = match <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Checks a callback's headers against its raw body, in constant time.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    key: &str,
    allow_legacy: bool,
    now: i64,
) -> Result<Authenticated, Rejection> {
    let signature = header(headers, SIGNATURE_HEADER);
    let timestamp = header(headers, TIMESTAMP_HEADER);
    match (signature, timestamp) {
        (Some(signature), Some(timestamp)) => {
            let ts: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
            // abs_diff: a hostile timestamp near i64::MIN must not overflow.
            if now.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
                return Err(Rejection::StaleTimestamp);
            }
            let given = hex::decode(signature).map_err(|_| Rejection::BadSignature)?;
            let expected = mac(key, timestamp, body);
            if expected.is_empty()
                || given.len() != expected.len()
                || !bool::from(given.ct_eq(&expected))
            {
                return Err(Rejection::BadSignature);
            }
            Ok(Authenticated::Signature)
        }
        (None, None) => match header(headers, API_KEY_HEADER) {
            Some(_) if !allow_legacy => Err(Rejection::LegacyNotAllowed),
            Some(given) => {
                if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
                    Ok(Authenticated::LegacyApiKey)
                } else {
                    Err(Rejection::BadApiKey)
                }
            }
            None => Err(Rejection::MissingHeaders),
        },
        _ => Err(Rejection::MissingHeaders),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn signed(key: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&sign(key, ts, body)).unwrap(),
        );
        h.insert(
            TIMESTAMP_HEADER,
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        h
    }

    #[test]
    fn a_correct_signature_within_the_window_passes() {
        let h = signed("k", 1000, b"{}");
        assert_eq!(
            verify(&h, b"{}", "k", false, 1000 + 300),
            Ok(Authenticated::Signature)
        );
        assert_eq!(
            verify(&h, b"{}", "k", false, 1000 - 300),
            Ok(Authenticated::Signature)
        );
    }

    #[test]
    fn an_extreme_timestamp_is_stale_not_a_panic() {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_static("00"));
        h.insert(
            TIMESTAMP_HEADER,
            HeaderValue::from_static("-9223372036854775808"),
        );
        assert_eq!(
            verify(&h, b"{}", "k", false, 1_700_000_000),
            Err(Rejection::StaleTimestamp)
        );
    }

    #[test]
    fn every_failure_mode_is_rejected() {
        let h = signed("k", 1000, b"{}");
        assert_eq!(
            verify(&h, b"{ }", "k", false, 1000),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&h, b"{}", "other", false, 1000),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&h, b"{}", "k", false, 1301),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            verify(&h, b"{}", "k", false, 699),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            verify(&HeaderMap::new(), b"{}", "k", true, 1000),
            Err(Rejection::MissingHeaders)
        );
        let mut legacy = HeaderMap::new();
        legacy.insert(API_KEY_HEADER, HeaderValue::from_static("k"));
        assert_eq!(
            verify(&legacy, b"{}", "k", false, 1000),
            Err(Rejection::LegacyNotAllowed)
        );
        assert_eq!(
            verify(&legacy, b"{}", "k", true, 1000),
            Ok(Authenticated::LegacyApiKey)
        );
        assert_eq!(
            verify(&legacy, b"{}", "x", true, 1000),
            Err(Rejection::BadApiKey)
        );
    }
}
