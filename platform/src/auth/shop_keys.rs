//! Verified shop keys, kept in memory for a bounded time so a shop's request needs no
//! Postgres lookup. Only keys Postgres confirmed are kept (by their hash, never the key);
//! an entry older than the TTL is looked up again, so a revoked key stops working within
//! it. The table is bounded: when full, expired entries go first, then the oldest. An
//! expired entry still says the key was good once (`known`), which the gate uses.
use schemas::ShopId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) type KeyHash = [u8; 32];

pub(super) struct ShopKeyCache {
    entries: Mutex<HashMap<KeyHash, (ShopId, Instant)>>,
    capacity: usize,
    ttl: Duration,
}

impl ShopKeyCache {
    pub(super) fn new(capacity: usize, ttl: Duration) -> Self {
        ShopKeyCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    /// The shop a key belongs to, if Postgres confirmed it less than the TTL ago.
    pub(super) fn get(&self, hash: &KeyHash) -> Option<ShopId> {
        let entries = self.entries.lock().ok()?;
        let (shop, verified_at) = entries.get(hash)?;
        (verified_at.elapsed() < self.ttl).then_some(*shop)
    }

    /// Whether Postgres confirmed this key at some time and no refusal came after: such a
    /// key may be looked up again even while its address has used up its failures.
    pub(super) fn known(&self, hash: &KeyHash) -> bool {
        self.entries.lock().is_ok_and(|e| e.contains_key(hash))
    }

    /// A key Postgres refused (revoked since) is no longer known.
    pub(super) fn forget(&self, hash: &KeyHash) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(hash);
        }
    }

    pub(super) fn insert(&self, hash: KeyHash, shop: ShopId) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(hash, (shop, Instant::now()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl_and_the_table_stays_bounded() {
        let cache = ShopKeyCache::new(2, Duration::from_millis(50));
        let (a, b, c) = (ShopId::new(), ShopId::new(), ShopId::new());
        cache.insert([1; 32], a);
        cache.insert([2; 32], b);
        assert_eq!(cache.get(&[1; 32]), Some(a));
        cache.insert([3; 32], c);
        assert_eq!(cache.len(), 2, "bounded");
        assert_eq!(cache.get(&[1; 32]), None, "the oldest made room");
        assert_eq!(cache.get(&[3; 32]), Some(c));
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.get(&[3; 32]).is_some() {
            assert!(Instant::now() < deadline, "an entry outlived its ttl");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
