//! Refunds of one order take turns in memory before they take a pooled connection.
//! Each holds the order's registry row (`FOR UPDATE`) until its commit, so refunds of one
//! order run one at a time anyway; waiting for that row with a connection each, a shop
//! sending a few hundred refunds of one order at once held the whole pool and everyone
//! else's statements failed waiting for one (503). Orders share `ingest.refund_turns`
//! turns by a hash with a key chosen at start (no shop can aim at another's turn), so
//! refunds hold at most that many connections in this process, whatever arrives.
use schemas::{OrderId, ShopId};
use std::hash::BuildHasher;
use tokio::sync::{Mutex, MutexGuard};

pub struct RefundTurns {
    turns: Box<[Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl RefundTurns {
    /// `turns` at least 1 (the config's checks say so); 0 is taken as 1.
    pub fn new(turns: usize) -> Self {
        RefundTurns {
            turns: (0..turns.max(1)).map(|_| Mutex::new(())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Waits for the order's turn; it lasts until the guard is dropped.
    pub async fn take(&self, shop: ShopId, order: &OrderId) -> MutexGuard<'_, ()> {
        let metrics = platform::metrics::metrics();
        let _waiting = platform::metrics::Waiting::start(&metrics.refunds_waiting);
        let hash = self.hasher.hash_one((shop, order.as_str()));
        let index = usize::try_from(hash % self.turns.len() as u64).unwrap_or(0);
        self.turns[index].lock().await
    }
}
