//! Who is calling: an admin or a user (HS256 JWT), or a shop (API key, stored hashed).
use crate::config::AuthConfig;
use crate::problem::Problem;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use schemas::{ShopId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;

pub const SHOP_KEY_PREFIX: &str = "rk_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    User(UserId),
    Shop(ShopId),
}

impl Principal {
    /// Admins reach everyone; a user reaches only their own data; shops no user data.
    pub fn may_read_user(&self, user: UserId) -> bool {
        match self {
            Principal::Admin => true,
            Principal::User(me) => *me == user,
            Principal::Shop(_) => false,
        }
    }

    /// A short label for logs and rate limiting; never personal data.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Admin => "admin",
            Principal::User(_) => "user",
            Principal::Shop(_) => "shop",
        }
    }

    pub fn key(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::User(u) => format!("user:{u}"),
            Principal::Shop(s) => format!("shop:{s}"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iss: String,
    iat: u64,
    exp: u64,
}

#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
    pool: PgPool,
}

impl Authenticator {
    pub fn new(config: &AuthConfig, pool: PgPool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Authenticator {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
                decoding: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
                validation,
                issuer: config.issuer.clone(),
                ttl_secs: config.token_ttl_secs,
                pool,
            }),
        }
    }

    pub fn issue(&self, who: Principal) -> anyhow::Result<String> {
        let (sub, role) = match who {
            Principal::Admin => ("admin".to_owned(), "admin"),
            Principal::User(u) => (u.to_string(), "user"),
            Principal::Shop(_) => anyhow::bail!("shops authenticate with API keys, not tokens"),
        };
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = Claims {
            sub,
            role: role.to_owned(),
            iss: self.inner.issuer.clone(),
            iat: now,
            exp: now + self.inner.ttl_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )?)
    }

    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, Problem> {
        if let Some(key) = bearer.strip_prefix(SHOP_KEY_PREFIX) {
            return self.shop(key).await;
        }
        let data =
            jsonwebtoken::decode::<Claims>(bearer, &self.inner.decoding, &self.inner.validation)
                .map_err(|_| Problem::unauthenticated("the token is invalid or expired"))?;
        match data.claims.role.as_str() {
            "admin" => Ok(Principal::Admin),
            "user" => data
                .claims
                .sub
                .parse::<UserId>()
                .map(Principal::User)
                .map_err(|_| Problem::unauthenticated("the token's subject is not a user id")),
            _ => Err(Problem::unauthenticated("the token's role is unknown")),
        }
    }

    async fn shop(&self, key: &str) -> Result<Principal, Problem> {
        let hash = hash_key(key);
        let found: Option<uuid::Uuid> = sqlx::query_scalar!(
            "SELECT id FROM shops WHERE key_hash = $1 AND revoked_at IS NULL",
            hash
        )
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| Problem::internal(&e.into()))?;
        found
            .map(|id| Principal::Shop(ShopId(id)))
            .ok_or_else(|| Problem::unauthenticated("the API key is unknown or revoked"))
    }
}

/// A new shop API key (shown once) and its hash (stored).
pub fn new_shop_key() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let hash = hash_key(&secret);
    (format!("{SHOP_KEY_PREFIX}{secret}"), hash)
}

fn hash_key(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl<S> FromRequestParts<S> for Principal
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(*p);
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Problem::unauthenticated("send Authorization: Bearer <token or API key>")
            })?;
        let bearer = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| Problem::unauthenticated("the Authorization scheme must be Bearer"))?;
        let principal = Authenticator::from_ref(state)
            .authenticate(bearer.trim())
            .await?;
        parts.extensions.insert(principal);
        Ok(principal)
    }
}
