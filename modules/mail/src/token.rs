//! Unsubscribe tokens: the user id and an HMAC-SHA256 of it, base64url. Unguessable and
//! unforgeable without the key; a changed character fails the check (in constant time).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Makes and checks unsubscribe tokens.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    /// A signer whose key is derived from `secret` (the JWT secret) for this one purpose, so
    /// a token of one kind can never pass for the other and no extra secret must be kept.
    pub fn derived_from(secret: &[u8]) -> Self {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
            .expect("HMAC takes a key of any length");
        mac.update(b"marketplace email unsubscribe token v1");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, user_id: Uuid) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(user_id.as_bytes());
        mac
    }

    /// The token naming `user_id`.
    pub fn token(&self, user_id: Uuid) -> String {
        let mut bytes = user_id.as_bytes().to_vec();
        bytes.extend_from_slice(&self.mac(user_id).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The user a token names, or `None` when it is not one of ours (altered, truncated,
    /// not base64url).
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if bytes.len() != 48 {
            return None;
        }
        let user_id = Uuid::from_slice(&bytes[..16]).ok()?;
        self.mac(user_id).verify_slice(&bytes[16..]).ok()?;
        Some(user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_and_any_change_is_refused() {
        let signer = Signer::derived_from(b"secret-one-0123456789abcdef0123456789");
        let user = Uuid::now_v7();
        let token = signer.token(user);
        assert_eq!(signer.verify(&token), Some(user));
        let mut altered: Vec<char> = token.chars().collect();
        altered[30] = if altered[30] == 'A' { 'B' } else { 'A' };
        assert_eq!(signer.verify(&altered.iter().collect::<String>()), None);
        assert_eq!(signer.verify(&token[..40]), None);
        assert_eq!(signer.verify("not base64!"), None);
        let other = Signer::derived_from(b"secret-two-0123456789abcdef0123456789");
        assert_eq!(other.verify(&token), None, "another key refuses it");
    }
}
