//! Signed links to file content served by this API (the local store): `…/content?expires=
//! {unix seconds}&signature=…` with an HMAC-SHA256 over the attachment, the variant and the
//! expiry, so a link can be neither extended, nor moved to another file, nor turned from a
//! thumbnail into the original.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// How long a link is valid.
pub const LINK_TTL_SECS: i64 = 600;

/// Which bytes of an attachment a link gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    Thumbnail,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Thumbnail => "thumbnail",
        }
    }
}

/// The key links are signed with.
#[derive(Clone)]
pub struct LinkKey(Vec<u8>);

impl LinkKey {
    pub fn new(secret: &[u8]) -> LinkKey {
        LinkKey(secret.to_vec())
    }

    fn mac(&self, id: Uuid, variant: Variant, expires: i64) -> Vec<u8> {
        // HMAC takes keys of any length: `new_from_slice` cannot fail.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(mut m) => {
                m.update(format!("{id}:{}:{expires}", variant.as_str()).as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// The signature of a link (lowercase hex).
    pub fn sign(&self, id: Uuid, variant: Variant, expires: i64) -> String {
        hex::encode(self.mac(id, variant, expires))
    }

    /// Whether `signature` is this key's for the link, compared in constant time.
    pub fn verify(&self, id: Uuid, variant: Variant, expires: i64, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let expected = self.mac(id, variant, expires);
        !expected.is_empty() && bool::from(given.ct_eq(&expected))
    }
}

/// The path and query of a link, valid until `expires`.
pub fn path(key: &LinkKey, id: Uuid, variant: Variant, expires: i64) -> String {
    let signature = key.sign(id, variant, expires);
    match variant {
        Variant::Original => {
            format!("/api/attachments/{id}/content?expires={expires}&signature={signature}")
        }
        Variant::Thumbnail => format!(
            "/api/attachments/{id}/content?expires={expires}&signature={signature}&variant=thumbnail"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_file_the_variant_and_the_expiry() {
        let key = LinkKey::new(b"k");
        let id = Uuid::now_v7();
        let sig = key.sign(id, Variant::Thumbnail, 100);
        assert!(key.verify(id, Variant::Thumbnail, 100, &sig));
        assert!(!key.verify(id, Variant::Original, 100, &sig));
        assert!(!key.verify(id, Variant::Thumbnail, 101, &sig));
        assert!(!key.verify(Uuid::now_v7(), Variant::Thumbnail, 100, &sig));
        assert!(!LinkKey::new(b"other").verify(id, Variant::Thumbnail, 100, &sig));
        assert!(!key.verify(id, Variant::Thumbnail, 100, "zz"));
    }
}
