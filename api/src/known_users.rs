//! Users known to exist, kept in memory so a report need not ask Postgres first. Users
//! are never deleted, so a user once found stays found; a user not found is not kept (they
//! may sign up a moment later). Bounded by `[reports] known_users_cache`: two halves, the
//! newer filled until full, then the older dropped and the newer made older, so the users
//! read most stay while memory stays flat.
use schemas::UserId;
use std::collections::HashSet;
use std::sync::Mutex;

pub struct KnownUsers {
    halves: Mutex<(HashSet<UserId>, HashSet<UserId>)>,
    half: usize,
}

impl KnownUsers {
    /// Up to `capacity` users; 0 keeps none (every report asks Postgres).
    pub fn new(capacity: usize) -> Self {
        KnownUsers {
            halves: Mutex::new((HashSet::new(), HashSet::new())),
            half: capacity / 2,
        }
    }

    pub fn contains(&self, user: UserId) -> bool {
        let Ok(mut halves) = self.halves.lock() else {
            return false;
        };
        if halves.0.contains(&user) {
            return true;
        }
        let older = halves.1.remove(&user);
        if older {
            Self::add(&mut halves, user, self.half);
        }
        older
    }

    /// A user Postgres found.
    pub fn insert(&self, user: UserId) {
        if let Ok(mut halves) = self.halves.lock() {
            Self::add(&mut halves, user, self.half);
        }
    }

    fn add(halves: &mut (HashSet<UserId>, HashSet<UserId>), user: UserId, half: usize) {
        if half == 0 {
            return;
        }
        if halves.0.len() >= half {
            halves.1 = std::mem::take(&mut halves.0);
        }
        halves.0.insert(user);
    }
}

#[cfg(test)]
#[path = "known_users_test.rs"]
mod tests;
