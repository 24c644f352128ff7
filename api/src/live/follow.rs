//! One client's view of its user's ledger: entries strictly in position order, each
//! once. Live frames arrive from the relay; whatever lies between the last position sent
//! and the next frame (a resume, or entries another processor published later than
//! this one) is read from Postgres in bounded pages first. A client that falls further
//! behind than its channel holds (a burst of one batch, or a reader slower than the
//! feed) is caught up the same way, from the ledger at its own pace: the channel stays
//! small, and no client is ever disconnected for being slow.
use super::{Frame, Subscription};
use futures::{Stream, StreamExt};
use schemas::UserId;
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

pub(super) struct Follower {
    pub sub: Subscription,
    pub pool: PgPool,
    /// Report places (`[reports] max_concurrent_reads`): each page read from Postgres
    /// takes one, as a history page does, so clients replaying whole ledgers as fast as
    /// they read are not scans beside the bounded reports.
    pub lanes: Arc<crate::lanes::Lanes>,
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
    pub fn stream(self, shutdown: CancellationToken) -> impl Stream<Item = Frame> + Send {
        futures::stream::unfold(self, |mut f| async move {
            let frame = f.next().await?;
            Some((frame, f))
        })
        .take_until(shutdown.cancelled_owned())
    }

    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                self.last = frame.seq;
                return Some(frame);
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
                    return Some(frame);
                }
                continue;
            }
            match self.sub.rx.recv().await {
                Ok(f) if f.seq <= self.last => continue,
                Ok(f) if f.seq == self.last + 1 => {
                    self.last = f.seq;
                    return Some(f);
                }
                Ok(f) => {
                    // Entries before this one are committed (a user's entries are
                    // written under one row lock), but reached us later or not at all.
                    self.behind_until = f.seq - 1;
                    self.held = Some(f);
                }
                // Frames were overwritten before this client read them: everything up
                // to where the ledger stands now is read from Postgres first.
                Err(RecvError::Lagged(_)) => {
                    match platform::entries::position(&self.pool, self.user).await {
                        Ok(now) => self.behind_until = self.behind_until.max(now),
                        Err(e) => {
                            tracing::warn!(error = ?e, "reading a lagging live client's position failed");
                            return None;
                        }
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next page of the gap into `pending`; false ends the client's stream
    /// (it resumes with the last id it saw, on any instance).
    async fn fill(&mut self) -> bool {
        let Ok(_place) = self.lanes.take_for(self.user).await else {
            return false;
        };
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
