//! Each shop's share of the PURCHASES backlog. The stream refuses new messages once
//! `nats.stream_max_bytes` of them wait (discard new), and that bound is shared: one shop
//! sending faster than the processor settles would fill it, and then every shop's
//! purchases would be 503. So the edge counts the bytes it stored for each shop that the
//! stream may still hold, and past `ingest.backlog_bytes_per_shop` that shop alone is told
//! to wait (429 `backlog_full`) until the processor has taken its share down.
//!
//! What the stream still holds is read every `ingest.backlog_refresh_ms`: its first
//! sequence (everything stored before it is settled and deleted, interest retention) and
//! its bytes. The processor settles in about the order messages were stored, so the oldest
//! counted messages go first: those before the first sequence, then, while more is counted
//! than the stream holds at all, the oldest of the rest (one message never settled pins the
//! first sequence, and without this every later message would stay counted and in time
//! every shop would wait). JetStream's own per-subject limit counts messages, not bytes,
//! and one message holds 1 to `group_commit_max_purchases` purchases, so it cannot bound a
//! shop's bytes. Each edge process counts what it stored itself: behind N edges a shop may
//! hold N shares.
use async_nats::jetstream::publish::PublishAck;
use schemas::ShopId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[derive(Default)]
struct Counted {
    /// (stream sequence, shop, bytes) of each stored message, in the order acknowledged.
    stored: VecDeque<(u64, ShopId, u64)>,
    by_shop: HashMap<ShopId, u64>,
    total: u64,
}

impl Counted {
    fn pop_front(&mut self) {
        let Some((_, shop, bytes)) = self.stored.pop_front() else {
            return;
        };
        self.total -= bytes;
        if let Some(held) = self.by_shop.get_mut(&shop) {
            *held -= bytes;
            if *held == 0 {
                self.by_shop.remove(&shop);
            }
        }
    }
}

pub struct Backlog {
    per_shop: u64,
    counted: Mutex<Counted>,
}

/// The shop holds its whole share; retry after this many seconds.
#[derive(Debug)]
pub struct Full(pub u64);

/// What the stream holds, as last read.
#[derive(Clone, Copy, Debug)]
pub struct Held {
    pub first_sequence: u64,
    pub bytes: u64,
}

impl Backlog {
    pub fn new(per_shop: u64) -> Arc<Backlog> {
        Arc::new(Backlog {
            per_shop,
            counted: Mutex::new(Counted::default()),
        })
    }

    fn counted(&self) -> std::sync::MutexGuard<'_, Counted> {
        self.counted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `shop` may store more: under its share of what the stream holds.
    pub fn admit(&self, shop: ShopId) -> Result<(), Full> {
        let held = self.counted().by_shop.get(&shop).copied().unwrap_or(0);
        if held < self.per_shop {
            Ok(())
        } else {
            Err(Full(1))
        }
    }

    /// Counts a message of `bytes` the stream stored for `shop` (a duplicate it had stored
    /// before is counted once, then).
    pub fn stored(&self, shop: ShopId, ack: &PublishAck, bytes: u64) {
        if ack.duplicate {
            return;
        }
        let mut counted = self.counted();
        counted.stored.push_back((ack.sequence, shop, bytes));
        *counted.by_shop.entry(shop).or_default() += bytes;
        counted.total += bytes;
    }

    /// Forgets what the stream no longer holds, oldest first.
    pub fn advance(&self, held: Held) {
        let mut counted = self.counted();
        while let Some(&(sequence, ..)) = counted.stored.front() {
            if sequence >= held.first_sequence && counted.total <= held.bytes {
                break;
            }
            counted.pop_front();
        }
    }

    /// Reads what the stream holds every `every` until the last `Backlog` is gone. A
    /// failed read changes nothing: shares then stay as counted, over rather than under.
    pub fn follow(
        self: &Arc<Self>,
        js: async_nats::jetstream::Context,
        stream: String,
        every: Duration,
    ) {
        let runtime = tokio::runtime::Handle::current();
        let what = "the purchase stream's state";
        platform::periodic::follow(&runtime, self, every, what, move |backlog| {
            let (js, stream) = (js.clone(), stream.clone());
            async move {
                backlog.advance(held(&js, &stream).await?);
                Ok(())
            }
        });
    }
}

async fn held(js: &async_nats::jetstream::Context, stream: &str) -> anyhow::Result<Held> {
    let stream = js.get_stream(stream).await?;
    let state = &stream.cached_info().state;
    // An empty stream's first sequence is the next one it will store.
    Ok(Held {
        first_sequence: state.first_sequence,
        bytes: state.bytes,
    })
}

#[cfg(test)]
#[path = "backlog_test.rs"]
mod tests;
