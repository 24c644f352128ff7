//! Reads take turns: at most so many run at once in this process, the rest wait in arrival
//! order (tokio's semaphore is fair). Two kinds have their own places: report reads from
//! Postgres (`[reports] max_concurrent_reads`) and analytics queries to ClickHouse
//! (`[clickhouse] analytics_max_concurrent_queries`). With one place per reader a database
//! ran as many queries as there were readers on a few cores, and the operating system's
//! time slices set the slowest requests' latency: measured at 32 readers on two cores, the
//! depth-3 tree's p99 went from 58–88 ms with the pool's 16 places to 32–35 ms with 4, the
//! median unchanged (docs/performance.md). A waiting request is bounded by the request
//! deadline and the in-flight limits, like any other.
//!
//! A report handler takes its place itself, once the caller is authenticated and
//! authorized and its parameters are read: a request refused with 401, 403 or 422 is
//! answered at once and never waits for one. (A route layer took it before the
//! extractors ran, and anonymous refusals queued behind slow reads could fill the
//! listener's places, shops' purchases among them in `referral all`.)
//!
//! The reads of one user's data take at most `per_user` of the places (`take_for`): a
//! user's own token may have 16 requests in flight, and sixteen slow trees of one user
//! queued ahead of everyone would have had every place to themselves in turn.
use crate::ApiError;
use platform::metrics::Waiting;
use platform::turns::{KeyedTurns, Turn};
use prometheus::IntGauge;
use schemas::UserId;
use tokio::sync::{Semaphore, SemaphorePermit};

/// One user's reads' shares of places (hashed; two users rarely share one).
const USER_SHARES: usize = 1_024;

/// A fixed number of places, and a gauge of those waiting for one.
pub struct Lanes {
    places: Semaphore,
    per_user: KeyedTurns,
    waiting: IntGauge,
}

/// A place taken for a user's read: the user's share and the place itself.
pub struct Place<'a> {
    _share: Turn,
    _place: SemaphorePermit<'a>,
}

impl Lanes {
    /// `places` at once, of which `per_user` for the reads of one user's data.
    pub fn new(places: usize, per_user: usize, waiting: IntGauge) -> Self {
        Lanes {
            places: Semaphore::new(places),
            per_user: KeyedTurns::with_places(USER_SHARES, per_user.min(places)),
            waiting,
        }
    }

    /// Waits for one of `user`'s shares, then for a place, each in arrival order.
    pub async fn take_for(&self, user: UserId) -> Result<Place<'_>, ApiError> {
        let waiting = Waiting::start(&self.waiting);
        let share = self.per_user.take(user).await;
        drop(waiting);
        let place = self.take().await?;
        Ok(Place {
            _share: share,
            _place: place,
        })
    }

    /// Waits for a place in arrival order; the place is freed when the permit is dropped.
    pub async fn take(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        let waiting = Waiting::start(&self.waiting);
        let place = self.places.acquire().await;
        drop(waiting);
        // Only a closed semaphore fails, and these are never closed.
        place.map_err(|_| ApiError::Internal(anyhow::anyhow!("read lanes closed")))
    }
}
