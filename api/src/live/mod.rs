//! Live earnings: one ordered JetStream consumer per process feeds an in-process
//! broadcast per user; SSE and WebSocket clients subscribe to their own user only.
//! Event ids are positions in the user's own ledger (1, 2, …, gapless), so a resume
//! (`Last-Event-ID`) and any gap in what the stream brought (two processors may publish
//! a user's entries out of order) are read from Postgres, the record of truth.
mod follow;
mod relay;
pub mod sse;
pub mod ws;

pub use relay::{Frame, Relay, Subscription};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use futures::{Stream, StreamExt};
use std::time::Duration;

/// The live streams (long-lived: mounted without the request timeout).
pub fn routes() -> axum::Router<crate::ApiState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/users/{id}/earnings/stream", get(sse::stream))
        .route("/v1/users/{id}/earnings/ws", get(ws::upgrade))
}

/// How long the caller's credential stays accepted (`None`: it does not expire by
/// itself), and the credential, to check again when tokens are revoked. A stream ends
/// when it expires or is revoked: it was authorized once, at its start, and would
/// otherwise outlive its token for as long as the client stays connected. The client
/// reconnects with a new token and resumes with `Last-Event-ID`, losing nothing.
pub struct CredentialLife {
    life: Option<Duration>,
    bearer: Option<String>,
    /// Subscribed before the stream opens, and the token checked again right after: a
    /// revocation read between the request's check and the subscription is not missed.
    revocations: tokio::sync::watch::Receiver<u64>,
}

impl FromRequestParts<crate::ApiState> for CredentialLife {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::ApiState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = match platform::auth::bearer(&parts.headers) {
            Some(Ok(bearer)) => Some(bearer.to_owned()),
            _ => None,
        };
        let revocations = state.auth.revocations_changed();
        let life = bearer.as_deref().and_then(|b| state.auth.remaining_life(b));
        Ok(CredentialLife {
            life,
            bearer,
            revocations,
        })
    }
}

impl CredentialLife {
    /// Ends when the credential expires, or when a change of the revocations refuses it.
    async fn ended(self, auth: platform::auth::Authenticator) {
        let expired = async {
            match self.life {
                Some(life) => tokio::time::sleep(life).await,
                None => std::future::pending().await,
            }
        };
        let mut changed = self.revocations;
        let revoked = async {
            let Some(bearer) = self.bearer else {
                return std::future::pending().await;
            };
            let accepted = || matches!(auth.authenticate_offline(&bearer), Some(Ok(_)));
            if !accepted() {
                return;
            }
            while changed.changed().await.is_ok() {
                if !accepted() {
                    return;
                }
            }
            std::future::pending().await
        };
        tokio::select! {
            () = expired => {}
            () = revoked => {}
        }
    }
}

/// Subscribes (first, so nothing published meanwhile is missed), then reads where the
/// user's ledger stands: a client that names `last_event_id` is sent everything after
/// it, then live entries; one that does not is sent live entries from now on. The
/// stream ends when the credential expires (`life`).
pub async fn open(
    state: &crate::ApiState,
    user: schemas::UserId,
    last_event_id: Option<u64>,
    life: CredentialLife,
) -> Result<impl Stream<Item = Frame> + Send + 'static, crate::ApiError> {
    let sub = state.relay.subscribe(user).map_err(|e| match e {
        relay::SubscribeError::PerUser => crate::ApiError::TooManyStreams(
            "this user already has the maximum number of live connections",
        ),
        relay::SubscribeError::Total => {
            crate::ApiError::TooManyStreams("the server has the maximum number of live connections")
        }
    })?;
    let now = platform::entries::position(&state.pool, user).await?;
    // An id beyond the ledger's end names nothing this user has: resume from the end.
    let after = last_event_id.map_or(now, |id| id.min(now));
    let follower = follow::Follower {
        sub,
        pool: state.pool.clone(),
        lanes: state.read_lanes.clone(),
        user,
        last: after,
        behind_until: now,
        held: None,
        page: state.live.replay_page,
        pending: Default::default(),
    };
    let ended = life.ended(state.auth.clone());
    Ok(follower.stream(state.shutdown.clone()).take_until(ended))
}
