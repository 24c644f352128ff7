//! Refunds take turns in memory before they take a pooled connection. Each holds its
//! order's registry row (`FOR UPDATE`) until its commit, so refunds of one order run one
//! at a time anyway; waiting for that row with a connection each, a shop sending a few
//! hundred refunds of one order at once held the whole pool and everyone else's
//! statements failed waiting for one (503).
//!
//! A refund first takes its order's turn (one of `ORDER_TURNS`, by a hash keyed at start,
//! so no shop can aim at another's orders and two orders rarely share one), then one of
//! `ingest.refund_turns` places, which bound the connections refunds hold in a process.
//! A refund holds no place while it waits for its order, so a flood of one order's
//! refunds takes one place, not all of them.
use platform::turns::KeyedTurns;
use schemas::{OrderId, ShopId};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Order turns: enough that distinct orders seldom wait for each other.
const ORDER_TURNS: usize = 1_024;

pub struct RefundTurns {
    orders: KeyedTurns,
    places: Arc<Semaphore>,
}

/// A refund's turn: its order's and a place; both end when it is dropped.
pub struct Turn {
    _place: OwnedSemaphorePermit,
    _order: platform::turns::Turn,
}

impl RefundTurns {
    /// `places` at least 1 (the config's checks say so); 0 is taken as 1.
    pub fn new(places: usize) -> Self {
        RefundTurns {
            orders: KeyedTurns::new(ORDER_TURNS),
            places: Arc::new(Semaphore::new(places.max(1))),
        }
    }

    /// Waits for the order's turn, then for a place; `None` only if the places were
    /// closed, which nothing does.
    pub async fn take(&self, shop: ShopId, order: &OrderId) -> Option<Turn> {
        let metrics = platform::metrics::metrics();
        let _waiting = platform::metrics::Waiting::start(&metrics.refunds_waiting);
        let order = self.orders.take((shop, order.as_str())).await;
        let place = self.places.clone().acquire_owned().await.ok()?;
        Some(Turn {
            _place: place,
            _order: order,
        })
    }
}
