//! Per-credential rate limiting: a token bucket per bearer credential (or per peer
//! when there is none), refilled at `rate_limit_per_sec` up to `rate_limit_burst`.
//! The table is bounded: idle buckets are dropped when it grows past `MAX_KEYS`.
use crate::problem::Problem;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most credentials tracked at once before idle buckets are evicted.
const MAX_KEYS: usize = 100_000;

#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Mutex<HashMap<[u8; 16], Bucket>>>,
    per_sec: f64,
    burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            inner: Arc::new(Mutex::new(HashMap::new())),
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Takes one token for `key`; on refusal, the seconds until one is available.
    pub fn check(&self, key: &[u8]) -> Result<(), u64> {
        let digest = Sha256::digest(key);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let now = Instant::now();
        let Ok(mut table) = self.inner.lock() else {
            return Ok(());
        };
        if table.len() >= MAX_KEYS {
            let (per_sec, burst) = (self.per_sec, self.burst);
            table
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let bucket = table.entry(id).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_sec;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

pub async fn limit(State(limiter): State<RateLimiter>, request: Request, next: Next) -> Response {
    let key: Vec<u8> = match request.headers().get(axum::http::header::AUTHORIZATION) {
        Some(v) => v.as_bytes().to_vec(),
        None => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string().into_bytes())
            .unwrap_or_else(|| b"anonymous".to_vec()),
    };
    match limiter.check(&key) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this credential",
            );
            p.retry_after_secs = Some(retry_after);
            p.into_response()
        }
    }
}

#[cfg(test)]
#[path = "ratelimit_test.rs"]
mod tests;
