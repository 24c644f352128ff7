//! Turns by key: a fixed table of fair (first come, first served) semaphores, a key's
//! chosen by a hash keyed at start, so no caller can aim its keys at another's and two keys
//! rarely share one. Each has `places` permits: 1 makes it a turn, more a small share.
//! A place is held across awaits (a lookup, a transaction) and ends when dropped.
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct KeyedTurns {
    turns: Box<[Arc<Semaphore>]>,
    hasher: std::collections::hash_map::RandomState,
}

/// A key's turn (or place); it ends when dropped.
pub type Turn = OwnedSemaphorePermit;

impl KeyedTurns {
    /// `count` keys' turns (at least 1), each of one place.
    pub fn new(count: usize) -> Self {
        KeyedTurns::with_places(count, 1)
    }

    /// `count` keys' shares (at least 1) of `places` each (at least 1).
    pub fn with_places(count: usize, places: usize) -> Self {
        let places = places.max(1);
        KeyedTurns {
            turns: (0..count.max(1))
                .map(|_| Arc::new(Semaphore::new(places)))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Waits for one of `key`'s places.
    pub async fn take(&self, key: impl Hash) -> Turn {
        let len = self.turns.len() as u64;
        let index = usize::try_from(self.hasher.hash_one(key) % len).unwrap_or(0);
        let turn = self.turns.get(index).or(self.turns.first()).cloned();
        let mut turn = turn.unwrap_or_else(|| Arc::new(Semaphore::new(1)));
        loop {
            if let Ok(place) = turn.clone().acquire_owned().await {
                return place;
            }
            // Nothing closes these semaphores; were one closed, a new one stands in.
            turn = Arc::new(Semaphore::new(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_key_waits_for_its_own_turn_and_not_for_other_keys() {
        let turns = KeyedTurns::new(1_024);
        let held = turns.take("a").await;
        assert!(
            turns.take("a").now_or_never().is_none(),
            "the same key waits while its turn is held"
        );
        // Some other key has a turn of its own ("a" may share one with a few by chance).
        let free = (0..64).filter(|i| turns.take(format!("k{i}")).now_or_never().is_some());
        assert!(free.count() >= 60);
        drop(held);
        assert!(
            turns.take("a").now_or_never().is_some(),
            "free once released"
        );
    }

    #[tokio::test]
    async fn a_key_with_two_places_lets_two_through_and_the_third_waits() {
        let turns = KeyedTurns::with_places(8, 2);
        let (_one, _two) = (turns.take("a").await, turns.take("a").await);
        assert!(turns.take("a").now_or_never().is_none());
    }
}
