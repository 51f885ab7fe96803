//! The server's VAPID identity (RFC 8292): one P-256 key pair for the whole cluster. Its
//! public half is what browsers subscribe with (`applicationServerKey`); push services
//! refuse pushes signed by another key, so every node must use the same one.
//!
//! From `VAPID_PRIVATE_KEY` when set; otherwise made by the first node that needs it and
//! kept in `push_vapid_keys` (insert if absent, then read back: two nodes starting together
//! end up with the one row that won).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use catalog::contract::now;
use kernel::{ApiError, Result};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use url::Url;
use web_push_native::jwt_simple::prelude::*;

use crate::entity::vapid_key;

/// The id of the one row of `push_vapid_keys`.
const KEY_ROW: i32 = 1;

/// How long a VAPID token is valid. RFC 8292 allows at most 24 hours; push services refuse
/// tokens at the limit once clocks drift, so half of it.
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(12 * 60 * 60);

/// The server's key pair, and its public key as browsers take it.
pub struct Vapid {
    pair: ES256KeyPair,
    /// base64url (no padding) uncompressed P-256 point.
    public_key: String,
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Reads a base64url (padded or not) P-256 private key: 32 bytes, a valid scalar. The
/// message names what is wrong, never the key.
pub fn parse_private_key(text: &str) -> std::result::Result<ES256KeyPair, String> {
    let text = text.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|_| "is not base64url".to_owned())?;
    if bytes.len() != 32 {
        return Err(format!(
            "must be a 32-byte P-256 private key (got {} bytes)",
            bytes.len()
        ));
    }
    ES256KeyPair::from_bytes(&bytes).map_err(|_| "is not a valid P-256 private key".to_owned())
}

fn encode_private(pair: &ES256KeyPair) -> String {
    URL_SAFE_NO_PAD.encode(pair.to_bytes())
}

impl Vapid {
    pub(crate) fn new(pair: ES256KeyPair, subject: String) -> Self {
        let public_key =
            URL_SAFE_NO_PAD.encode(pair.public_key().public_key().to_bytes_uncompressed());
        Self {
            pair,
            public_key,
            subject,
        }
    }

    /// The configured key, or the cluster's stored one (made now if there is none yet).
    pub async fn load<C: ConnectionTrait>(
        db: &C,
        configured: Option<&str>,
        subject: &str,
    ) -> Result<Self> {
        if let Some(text) = configured {
            let pair = parse_private_key(text)
                .map_err(|e| ApiError::internal(format!("VAPID_PRIVATE_KEY {e}")))?;
            return Ok(Self::new(pair, subject.to_owned()));
        }
        let made = ES256KeyPair::generate();
        vapid_key::Entity::insert(vapid_key::ActiveModel {
            id: Set(KEY_ROW),
            private_key: Set(encode_private(&made)),
            created_at: Set(now()),
        })
        .on_conflict(
            OnConflict::column(vapid_key::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        let row = vapid_key::Entity::find_by_id(KEY_ROW)
            .one(db)
            .await?
            .ok_or_else(|| ApiError::internal("the VAPID key row vanished"))?;
        let pair = parse_private_key(&row.private_key)
            .map_err(|e| ApiError::internal(format!("the stored VAPID key {e}")))?;
        Ok(Self::new(pair, subject.to_owned()))
    }

    /// base64url uncompressed P-256 public key (`applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header value for a push to `endpoint`: `vapid t=<JWT>, k=<key>`
    /// with `aud` = the endpoint's origin (scheme, host and a non-default port), `sub` = the
    /// configured contact and `exp` [`TOKEN_VALIDITY`] from now.
    pub fn authorization(&self, endpoint: &Url) -> std::result::Result<String, String> {
        let audience = endpoint.origin().ascii_serialization();
        let claims = Claims::create(TOKEN_VALIDITY.into())
            .with_audience(audience)
            .with_subject(&self.subject);
        let token = self.pair.sign(claims).map_err(|e| e.to_string())?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_and_bad_keys_are_named() {
        let pair = ES256KeyPair::generate();
        let text = encode_private(&pair);
        let back = parse_private_key(&text).unwrap();
        assert_eq!(back.to_bytes(), pair.to_bytes());
        assert!(parse_private_key(&format!("{text}=")).is_ok());
        assert!(parse_private_key("!!!").unwrap_err().contains("base64url"));
        assert!(parse_private_key("AAAA").unwrap_err().contains("32-byte"));
        let zero = URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert!(parse_private_key(&zero).is_err());
    }

    #[test]
    fn the_token_names_the_origin_and_verifies_with_the_public_key() {
        let vapid = Vapid::new(ES256KeyPair::generate(), "mailto:ops@example.com".into());
        let endpoint = Url::parse("https://push.example.com:8443/send/abc?x=1").unwrap();
        let header = vapid.authorization(&endpoint).unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(k, vapid.public_key());
        let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
        let options = VerificationOptions {
            allowed_audiences: Some(HashSet::from_strings(&["https://push.example.com:8443"])),
            ..Default::default()
        };
        let claims = public
            .verify_token::<NoCustomClaims>(t, Some(options))
            .unwrap();
        assert_eq!(claims.subject.as_deref(), Some("mailto:ops@example.com"));
        let exp = claims.expires_at.unwrap().as_secs();
        let iat = claims.issued_at.unwrap().as_secs();
        assert!(exp - iat <= 24 * 3600);
    }
}
