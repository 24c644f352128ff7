//! Token buckets per key (an authenticated caller, or a client address), refilled at a
//! rate up to a burst. The table is bounded: idle buckets are dropped when it grows past
//! `MAX_KEYS`. `crate::gate` decides the key; this only counts.
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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
            per_sec: f64::from(per_sec),
            burst: f64::from(burst),
        }
    }

    /// Takes one token for `key`; on refusal, the seconds until one is available.
    pub fn check(&self, key: &[u8]) -> Result<(), u64> {
        self.take(key, 1.0)
    }

    /// Takes `cost` tokens for `key` while it has one left (the bucket may go below zero:
    /// a batch admitted on its last token is paid for by the requests after it); on
    /// refusal, the seconds until one is available.
    pub fn charge(&self, key: &[u8], cost: u32) -> Result<(), u64> {
        self.take(key, f64::from(cost))
    }

    /// Whether `key` has a token left, without taking it; on refusal, the seconds to wait.
    pub fn peek(&self, key: &[u8]) -> Result<(), u64> {
        self.take(key, 0.0)
    }

    fn take(&self, key: &[u8], cost: f64) -> Result<(), u64> {
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
            bucket.tokens -= cost;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
#[path = "ratelimit_test.rs"]
mod tests;
