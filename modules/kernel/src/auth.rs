//! Tokens and the authenticated caller. Tokens are HS256 JWTs with `sub`, `role`, `iat`,
//! `exp`; every request re-reads the user so a deleted user's token stops working and a
//! role change takes effect at once.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use catalog::Role;

use crate::error::ApiError;

/// The claims of our tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// Seconds a token is still accepted after its `exp` (the contract allows at most 5). None:
/// our nodes issue and check tokens with NTP-synchronized clocks, so an expired token is
/// refused at once on REST, refused on socket connect, and ends a connected socket.
pub const EXP_LEEWAY_SECS: u64 = 0;

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

/// Shows the lifetime only: the keys are the JWT secret and never reach `Debug` or logs.
impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("keys", &"[REDACTED]")
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl JwtKeys {
    /// Keys from the secret as [`secrecy::SecretString`], so callers need not expose it.
    pub fn from_secret(secret: &secrecy::SecretString, ttl_secs: i64) -> Self {
        use secrecy::ExposeSecret;
        Self::new(secret.expose_secret().as_bytes(), ttl_secs)
    }

    pub fn new(secret: &[u8], ttl_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // jsonwebtoken's default 60 s leeway would keep expired tokens alive for a minute.
        validation.leeway = EXP_LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    /// Mints a token for this user, valid for the configured lifetime.
    pub fn issue(&self, user_id: Uuid, role: Role) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            iat: now,
            exp: now + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Verifies signature, algorithm and expiry. Any failure is `None`.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// Answers "who is this user now?" for token holders. Implemented by the auth module, so
/// the kernel never reads the users table.
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// The user's current role, or `None` when no such user exists.
    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, ApiError>;
}

/// Everything needed to authenticate a caller.
#[derive(Clone)]
pub struct Authenticator {
    pub keys: Arc<JwtKeys>,
    pub users: Arc<dyn UserDirectory>,
}

impl Authenticator {
    /// Verifies a raw token (with or without `Bearer `) and confirms the user still exists.
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser, ApiError> {
        Ok(self.authenticate_until(token).await?.0)
    }

    /// [`Authenticator::authenticate`], also answering until when the token is accepted
    /// (its `exp` plus [`EXP_LEEWAY_SECS`], Unix seconds): a socket ends then.
    pub async fn authenticate_until(&self, token: &str) -> Result<(AuthUser, i64), ApiError> {
        let claims = self.keys.verify(token).ok_or(ApiError::Unauthorized)?;
        let role = self
            .users
            .current_role(claims.sub)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let user = AuthUser {
            id: claims.sub,
            role,
        };
        Ok((user, claims.exp.saturating_add(EXP_LEEWAY_SECS as i64)))
    }
}

/// The authenticated caller. As an extractor: reads `Authorization: Bearer <jwt>`; 401 when
/// it is missing, forged, expired or names an unknown user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    /// 403 unless the caller has one of these roles.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this action is for: {}",
                names.join(", ")
            )))
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthorized)?;
        Authenticator::from_ref(state).authenticate(token).await
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn debug_of_the_jwt_keys_shows_no_secret() {
        let secret = secrecy::SecretString::from("a-very-secret-signing-key-0123456789");
        let keys = JwtKeys::from_secret(&secret, 3600);
        let debug = format!("{keys:?}");
        assert!(!debug.contains("a-very-secret"), "{debug}");
        assert!(debug.contains("REDACTED"));
        let token = keys.issue(Uuid::now_v7(), Role::Buyer).unwrap();
        assert!(keys.verify(&token).is_some(), "the keys still work");
    }
}
