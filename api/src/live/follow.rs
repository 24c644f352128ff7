//! One client's view of its user's ledger: entries strictly in position order, each
//! once. Live frames arrive from the relay; whatever lies between the last position sent
//! and the next frame (a resume, or entries another processor published later than
//! this one) is read from Postgres in bounded pages first.
use super::{Frame, LiveItem, Subscription};
use futures::{Stream, StreamExt};
use schemas::UserId;
use sqlx::PgPool;
use std::collections::VecDeque;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

pub(super) struct Follower {
    pub sub: Subscription,
    pub pool: PgPool,
    pub user: UserId,
    /// The position of the last entry sent (or the client's resume point).
    pub last: u64,
    /// Positions up to here are committed and must be read from Postgres before any
    /// later frame is sent.
    pub behind_until: u64,
    /// A live frame received ahead of a gap, sent once the gap is filled.
    pub held: Option<Frame>,
    pub page: usize,
    pub pending: VecDeque<Frame>,
}

impl Follower {
    pub fn stream(self, shutdown: CancellationToken) -> impl Stream<Item = LiveItem> + Send {
        futures::stream::unfold(Some(self), |state| async move {
            let mut f = state?;
            match f.next().await {
                Some(item @ LiveItem::Entry(_)) => Some((item, Some(f))),
                // The last item: the client is told, then the stream ends.
                Some(item @ LiveItem::Dropped(_)) => Some((item, None)),
                None => None,
            }
        })
        .take_until(shutdown.cancelled_owned())
    }

    async fn next(&mut self) -> Option<LiveItem> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                self.last = frame.seq;
                return Some(LiveItem::Entry(frame));
            }
            if self.last < self.behind_until {
                if !self.fill().await {
                    return None;
                }
                continue;
            }
            if let Some(frame) = self.held.take() {
                if frame.seq > self.last {
                    self.last = frame.seq;
                    return Some(LiveItem::Entry(frame));
                }
                continue;
            }
            match self.sub.rx.recv().await {
                Ok(f) if f.seq <= self.last => continue,
                Ok(f) if f.seq == self.last + 1 => {
                    self.last = f.seq;
                    return Some(LiveItem::Entry(f));
                }
                Ok(f) => {
                    // Entries before this one are committed (a user's entries are
                    // written under one row lock), but reached us later or not at all.
                    self.behind_until = f.seq - 1;
                    self.held = Some(f);
                }
                Err(RecvError::Lagged(missed)) => return Some(LiveItem::Dropped(missed)),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next page of the gap into `pending`; false ends the client's stream
    /// (it resumes with the last id it saw, on any instance).
    async fn fill(&mut self) -> bool {
        let read = platform::entries::of_user(
            &self.pool,
            self.user,
            self.last,
            self.behind_until,
            self.page,
        )
        .await;
        let entries = match read {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = ?e, "reading a live client's missed entries failed");
                return false;
            }
        };
        if entries.is_empty() {
            // Nothing there (cannot happen for committed positions): do not spin.
            self.behind_until = self.last;
            return true;
        }
        for e in &entries {
            match Frame::of(e) {
                Ok(f) => self.pending.push_back(f),
                Err(err) => {
                    tracing::error!(error = %err, "an entry could not be encoded");
                    return false;
                }
            }
        }
        true
    }
}
