//! The same events over WebSocket: each a text message
//! `{"id": <seq>, "event": "earning", "data": {...}}`; resume with `?last_event_id=`.
//! The server pings every `[live] keepalive_secs` and closes a socket that leaves two
//! pings unanswered, and closes it when the caller's token expires.
use super::Frame;
use crate::params::{self, ReadableUser};
use crate::{ApiError, ApiState};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, Stream, StreamExt};
use platform::problem::QueryParams;
use platform::Problem;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// Resume after this id (a non-negative integer).
    last_event_id: Option<String>,
}

/// The same entries over WebSocket, one JSON text message each.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/ws", tag = "live",
    params(("id" = uuid::Uuid, Path), WsQuery),
    security(("bearer" = [])),
    responses((status = 101, description = "switching protocols"),
        (status = 400, description = "websocket_upgrade_required: a plain GET, not a WebSocket upgrade", body = platform::Problem),
        (status = 403, body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_last_event_id, invalid_query", body = platform::Problem)))]
pub async fn upgrade(
    State(state): State<ApiState>,
    // Authorized before the upgrade is looked at, so a plain GET learns nothing more.
    ReadableUser(user): ReadableUser,
    QueryParams(q): QueryParams<WsQuery>,
    life: super::CredentialLife,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let last = params::last_event_id(q.last_event_id.as_deref().map(str::as_bytes))?;
    let ws =
        ws.map_err(|r| Problem::new(r.status(), "websocket_upgrade_required", r.body_text()))?;
    let items = super::open(&state, user, last, life).await?;
    // A message over the bound is a read error, which ends `relay` and closes the socket.
    let max = state.live.ws_max_message_bytes;
    let ws = ws.max_message_size(max).max_frame_size(max);
    let keepalive = Duration::from_secs(state.live.keepalive_secs);
    Ok(ws.on_upgrade(move |socket| relay(socket, items, keepalive)))
}

/// Pings unanswered before the socket counts as gone: a client that vanished without
/// closing (a phone off the network) would otherwise hold one of its user's
/// `max_connections_per_user` places until an entry happened to be written to it.
const UNANSWERED_PINGS: u32 = 2;

async fn relay(
    socket: WebSocket,
    items: impl Stream<Item = Frame> + Send + 'static,
    keepalive: Duration,
) {
    let (mut tx, mut rx) = socket.split();
    let mut items = std::pin::pin!(items);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    // After a long write (a slow reader caught up from the ledger), one tick, not a burst
    // of the missed ones: a burst would count pings the client had no time to answer.
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unanswered = 0;
    loop {
        tokio::select! {
            _ = pings.tick() => {
                if unanswered >= UNANSWERED_PINGS {
                    break;
                }
                unanswered += 1;
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            item = items.next() => {
                let Some(f) = item else { break };
                let text = format!(
                    r#"{{"id":{},"event":"earning","data":{}}}"#,
                    f.seq,
                    String::from_utf8_lossy(&f.data)
                );
                if tx.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // A pong, or anything else the client sends, says it is there.
                Some(Ok(_)) => unanswered = 0,
            },
        }
    }
    let _ = tx.close().await;
}
