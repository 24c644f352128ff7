//! Turns by key: a fixed table of async mutexes, a key's turn chosen by a hash keyed at
//! start, so no caller can aim its keys at another's turn and two keys rarely share one.
//! A turn is held across awaits (a lookup, a transaction) and ends when its guard drops.
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub struct KeyedTurns {
    turns: Box<[Arc<Mutex<()>>]>,
    hasher: std::collections::hash_map::RandomState,
}

/// A key's turn; it ends when dropped.
pub type Turn = OwnedMutexGuard<()>;

impl KeyedTurns {
    /// `count` turns (at least 1).
    pub fn new(count: usize) -> Self {
        KeyedTurns {
            turns: (0..count.max(1))
                .map(|_| Arc::new(Mutex::new(())))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Waits for `key`'s turn.
    pub async fn take(&self, key: impl Hash) -> Turn {
        let len = self.turns.len() as u64;
        let index = usize::try_from(self.hasher.hash_one(key) % len).unwrap_or(0);
        let turn = self.turns.get(index).or(self.turns.first());
        match turn {
            Some(turn) => turn.clone().lock_owned().await,
            // `new` makes at least one turn.
            None => Arc::new(Mutex::new(())).lock_owned().await,
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
}
