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
use std::time::Duration;

pub mod revocations;
mod roles;
mod shop_keys;
#[cfg(test)]
#[path = "auth_test.rs"]
mod tests;

pub use roles::{Admin, Shop, Signer};

pub const SHOP_KEY_PREFIX: &str = "rk_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    User(UserId),
    Shop(ShopId),
    /// The bearer of `[auth] metrics_token`: may read `/metrics`, nothing else.
    Metrics,
}

impl Principal {
    /// Admins reach everyone; a user reaches only their own data; shops and the metrics
    /// scraper no user data.
    pub fn may_read_user(&self, user: UserId) -> bool {
        match self {
            Principal::Admin => true,
            Principal::User(me) => *me == user,
            Principal::Shop(_) | Principal::Metrics => false,
        }
    }

    /// Admins and the metrics scraper read `/metrics`.
    pub fn may_read_metrics(&self) -> bool {
        matches!(self, Principal::Admin | Principal::Metrics)
    }

    /// A short label for logs and rate limiting; never personal data.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Admin => "admin",
            Principal::User(_) => "user",
            Principal::Shop(_) => "shop",
            Principal::Metrics => "metrics",
        }
    }

    pub fn key(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::User(u) => format!("user:{u}"),
            Principal::Shop(s) => format!("shop:{s}"),
            Principal::Metrics => "metrics".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iss: String,
    iat: u64,
    nbf: u64,
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
    max_lifetime_secs: u64,
    pool: PgPool,
    shop_keys: shop_keys::ShopKeyCache,
    /// SHA-256 and length of `[auth] metrics_token`, when one is set.
    metrics_token: Option<(shop_keys::KeyHash, usize)>,
    revocations: revocations::Revocations,
}

impl Authenticator {
    pub fn new(config: &AuthConfig, pool: PgPool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let auth = Authenticator {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
                decoding: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
                validation,
                issuer: config.issuer.clone(),
                ttl_secs: config.token_ttl_secs,
                max_lifetime_secs: config.max_token_lifetime_secs,
                pool,
                shop_keys: shop_keys::ShopKeyCache::new(
                    config.shop_key_cache_size,
                    Duration::from_millis(config.shop_key_cache_ttl_ms),
                ),
                metrics_token: (!config.metrics_token.is_empty())
                    .then(|| (hash_key(&config.metrics_token), config.metrics_token.len())),
                revocations: revocations::Revocations::default(),
            }),
        };
        auth.follow_revocations(Duration::from_millis(config.revocations_refresh_ms));
        auth
    }

    /// Reads the revocations now and every `every` while this authenticator lives (in a
    /// runtime; a command without one issues tokens and checks none).
    fn follow_revocations(&self, every: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // While reads fail, a revocation made meanwhile is not enforced by this process.
        crate::periodic::follow(
            &runtime,
            &self.inner,
            every,
            "token revocations",
            |inner| async move {
                let window = inner.max_lifetime_secs.saturating_add(LEEWAY_SECS);
                Ok(inner.revocations.refresh(&inner.pool, window).await?)
            },
        );
    }

    /// Told when the revoked tokens change (a live stream then checks its token again).
    pub fn revocations_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.revocations.subscribe()
    }

    pub fn issue(&self, who: Principal) -> anyhow::Result<String> {
        let (sub, role) = match who {
            Principal::Admin => ("admin".to_owned(), "admin"),
            Principal::User(u) => (u.to_string(), "user"),
            Principal::Shop(_) => anyhow::bail!("shops authenticate with API keys, not tokens"),
            Principal::Metrics => anyhow::bail!("the metrics scraper uses [auth] metrics_token"),
        };
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = Claims {
            sub,
            role: role.to_owned(),
            iss: self.inner.issuer.clone(),
            iat: now,
            nbf: now,
            exp: now + self.inner.ttl_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )?)
    }

    /// Who `bearer` is, looking a shop key up in Postgres when the cache does not know it.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, Problem> {
        match self.authenticate_offline(bearer) {
            Some(result) => result,
            None => self.shop_lookup(bearer).await,
        }
    }

    /// Who `bearer` is, when that can be told without Postgres (a token, or a cached shop
    /// key); `None` when only a lookup can tell.
    pub fn authenticate_offline(&self, bearer: &str) -> Option<Result<Principal, Problem>> {
        if self.is_metrics_token(bearer) {
            return Some(Ok(Principal::Metrics));
        }
        match bearer.strip_prefix(SHOP_KEY_PREFIX) {
            Some(key) => self
                .inner
                .shop_keys
                .get(&hash_key(key))
                .map(|shop| Ok(Principal::Shop(shop))),
            None => Some(self.token(bearer)),
        }
    }

    /// How long `bearer`, a token just accepted, stays accepted; `None` for a credential
    /// that does not expire by itself (a shop key, the metrics token). A live stream ends
    /// then, as a request with the token would be refused from then on.
    pub fn remaining_life(&self, bearer: &str) -> Option<Duration> {
        if bearer.starts_with(SHOP_KEY_PREFIX) || self.is_metrics_token(bearer) {
            return None;
        }
        let decoded =
            jsonwebtoken::decode::<Claims>(bearer, &self.inner.decoding, &self.inner.validation);
        let Ok(data) = decoded else {
            // Accepted a moment ago, refused now: its last second passed in between. No
            // life left (a `None` here once meant a stream that never ended).
            return Some(Duration::ZERO);
        };
        // Accepted while the whole seconds since the epoch are at most `exp` + leeway:
        // until the second after that begins.
        let until = data.claims.exp.saturating_add(LEEWAY_SECS + 1);
        let until = std::time::UNIX_EPOCH + Duration::from_secs(until);
        Some(
            until
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    }

    /// Whether `bearer` is the metrics token. Compared as SHA-256 digests, every byte
    /// looked at, so the time taken says nothing about how much of a guess was right;
    /// only a credential of the token's length (not a secret) is hashed at all.
    fn is_metrics_token(&self, bearer: &str) -> bool {
        let Some((token, len)) = &self.inner.metrics_token else {
            return false;
        };
        if bearer.len() != *len {
            return false;
        }
        let guess = hash_key(bearer);
        token
            .iter()
            .zip(guess.iter())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
    }

    /// A shop key Postgres confirmed before (its cache entry may have expired) and has not
    /// refused since: the gate looks it up again even for an address out of failures, so
    /// made-up keys from a shared address cannot lock a real shop out.
    pub fn confirmed_before(&self, bearer: &str) -> bool {
        bearer
            .strip_prefix(SHOP_KEY_PREFIX)
            .is_some_and(|key| self.inner.shop_keys.known(&hash_key(key)))
    }

    fn token(&self, bearer: &str) -> Result<Principal, Problem> {
        let data =
            jsonwebtoken::decode::<Claims>(bearer, &self.inner.decoding, &self.inner.validation)
                .map_err(|_| Problem::unauthenticated("the token is invalid or expired"))?;
        let claims = data.claims;
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        if claims.iat > now + LEEWAY_SECS {
            return Err(Problem::unauthenticated(
                "the token is issued in the future",
            ));
        }
        if claims.exp.saturating_sub(claims.iat) > self.inner.max_lifetime_secs {
            return Err(Problem::unauthenticated(
                "the token's lifetime exceeds the maximum; ask for a new one",
            ));
        }
        let who = match claims.role.as_str() {
            "admin" => Principal::Admin,
            "user" => claims
                .sub
                .parse::<UserId>()
                .map(Principal::User)
                .map_err(|_| Problem::unauthenticated("the token's subject is not a user id"))?,
            _ => return Err(Problem::unauthenticated("the token's role is unknown")),
        };
        if self.inner.revocations.revoked(&who.key(), claims.iat) {
            return Err(Problem::unauthenticated(
                "the token was revoked; ask for a new one",
            ));
        }
        Ok(who)
    }

    async fn shop_lookup(&self, bearer: &str) -> Result<Principal, Problem> {
        let key = bearer.strip_prefix(SHOP_KEY_PREFIX).unwrap_or(bearer);
        let hash = hash_key(key);
        let found: Option<uuid::Uuid> = sqlx::query_scalar!(
            "SELECT id FROM shops WHERE key_hash = $1 AND revoked_at IS NULL",
            &hash[..]
        )
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| Problem::internal(&e.into()))?;
        let Some(shop) = found.map(ShopId) else {
            self.inner.shop_keys.forget(&hash);
            return Err(Problem::unauthenticated(
                "the API key is unknown or revoked",
            ));
        };
        self.inner.shop_keys.insert(hash, shop);
        Ok(Principal::Shop(shop))
    }
}

/// A new shop API key (shown once) and its hash (stored).
pub fn new_shop_key() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let hash = hash_key(&secret).to_vec();
    (format!("{SHOP_KEY_PREFIX}{secret}"), hash)
}

/// A random secret of `MIN_SECRET_BYTES` bytes, hex-encoded: for scratch instances
/// (benches, tests) that must not run on the public development defaults.
pub fn random_secret() -> String {
    let mut bytes = [0u8; crate::config::MIN_SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash_key(secret: &str) -> shop_keys::KeyHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// The credential in `Authorization: Bearer <credential>` (scheme case-insensitive,
/// surrounding spaces ignored, so `Bearer  x` is the same caller as `Bearer x`); `None`
/// without the header, a problem when it is not a bearer credential or the header comes
/// twice (a proxy that reads the other one would see another caller than we do).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<Result<&str, Problem>> {
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let value = all.next()?;
    if all.next().is_some() {
        return Some(Err(Problem::unauthenticated(
            "send one Authorization header, not several",
        )));
    }
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim())
        .filter(|credential| !credential.is_empty());
    Some(
        parsed.ok_or_else(|| {
            Problem::unauthenticated("send Authorization: Bearer <token or API key>")
        }),
    )
}

/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 5;

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
        let bearer = bearer(&parts.headers).unwrap_or_else(|| {
            Err(Problem::unauthenticated(
                "send Authorization: Bearer <token or API key>",
            ))
        })?;
        let principal = Authenticator::from_ref(state).authenticate(bearer).await?;
        parts.extensions.insert(principal);
        Ok(principal)
    }
}
