//! The same events over WebSocket: each a text message
//! `{"id": <seq>, "event": "earning", "data": {...}}`; resume with `?last_event_id=`.
use super::LiveItem;
use crate::reports::readable;
use crate::{ApiError, ApiState};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, Stream, StreamExt};
use platform::auth::Principal;
use platform::problem::QueryParams;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    last_event_id: Option<u64>,
}

/// The same entries over WebSocket, one JSON text message each.
#[utoipa::path(get, path = "/v1/users/{id}/earnings/ws", tag = "live",
    params(("id" = uuid::Uuid, Path), WsQuery),
    security(("bearer" = [])),
    responses((status = 101, description = "switching protocols"), (status = 403, body = platform::Problem)))]
pub async fn upgrade(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Authorize before looking at the upgrade, so a plain GET learns nothing more.
    let user = readable(&who, &id)?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let items = super::open(&state, user, q.last_event_id).await?;
    Ok(ws.on_upgrade(move |socket| relay(socket, items)))
}

async fn relay(socket: WebSocket, items: impl Stream<Item = LiveItem> + Send + 'static) {
    let (mut tx, mut rx) = socket.split();
    let mut items = std::pin::pin!(items);
    loop {
        tokio::select! {
            item = items.next() => {
                let Some(item) = item else { break };
                let text = match item {
                    LiveItem::Entry(f) => format!(
                        r#"{{"id":{},"event":"earning","data":{}}}"#,
                        f.seq,
                        String::from_utf8_lossy(&f.data)
                    ),
                    LiveItem::Dropped(missed) => {
                        format!(r#"{{"event":"dropped","data":{{"reason":"slow_consumer","missed":{missed}}}}}"#)
                    }
                };
                if tx.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
        }
    }
    let _ = tx.close().await;
}
