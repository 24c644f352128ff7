//! Live earnings: one ordered JetStream consumer per process feeds an in-process
//! broadcast per user; SSE and WebSocket clients subscribe to their own user only.
//! A resume (`Last-Event-ID`) replays from the stream, never from memory.
mod relay;
pub mod sse;
pub mod ws;

pub use relay::{Frame, Relay, Subscription};

use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// What a live client is sent.
pub enum LiveItem {
    Entry(Frame),
    /// The client fell further behind than its buffer; it is disconnected and should
    /// resume with the last id it saw.
    Dropped(u64),
}

/// Replayed frames, then live ones newer than `upto`; ends after `Dropped` or on shutdown.
pub fn follow(
    sub: Subscription,
    replayed: Vec<Frame>,
    upto: u64,
    shutdown: CancellationToken,
) -> impl Stream<Item = LiveItem> + Send + 'static {
    let live = futures::stream::unfold(Some(sub), move |state| async move {
        let mut sub = state?;
        loop {
            match sub.rx.recv().await {
                Ok(f) if f.seq <= upto => continue,
                Ok(f) => return Some((LiveItem::Entry(f), Some(sub))),
                Err(RecvError::Lagged(missed)) => return Some((LiveItem::Dropped(missed), None)),
                Err(RecvError::Closed) => return None,
            }
        }
    });
    futures::stream::iter(replayed.into_iter().map(LiveItem::Entry))
        .chain(live)
        .take_until(shutdown.cancelled_owned())
}

/// Subscribes (first, so nothing published meanwhile is missed), then replays what the
/// client missed after `last_event_id`.
pub async fn open(
    state: &crate::ApiState,
    user: schemas::UserId,
    last_event_id: Option<u64>,
) -> Result<impl Stream<Item = LiveItem> + Send + 'static, crate::ApiError> {
    let sub = state.relay.subscribe(user).map_err(|e| match e {
        relay::SubscribeError::PerUser => crate::ApiError::TooManyStreams(
            "this user already has the maximum number of live connections",
        ),
        relay::SubscribeError::Total => {
            crate::ApiError::TooManyStreams("the server has the maximum number of live connections")
        }
    })?;
    let (replayed, upto) = match last_event_id {
        Some(after) => state.relay.replay(user, after).await?,
        None => (Vec::new(), 0),
    };
    Ok(follow(sub, replayed, upto, state.shutdown.clone()))
}
