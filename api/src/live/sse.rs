//! Server-sent events: `event: earning`, `id:` = stream sequence, keep-alive comments.
use super::LiveItem;
use crate::reports::readable;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use platform::auth::Principal;
use std::convert::Infallible;
use std::time::Duration;

pub async fn stream(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let user = readable(&who, &id)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let items = super::open(&state, user, last).await?;
    let events = items.map(|item| {
        Ok(match item {
            LiveItem::Entry(f) => Event::default()
                .event("earning")
                .id(f.seq.to_string())
                .data(String::from_utf8_lossy(&f.data)),
            LiveItem::Dropped(missed) => Event::default()
                .event("dropped")
                .data(format!(r#"{{"reason":"slow_consumer","missed":{missed}}}"#)),
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(state.live.keepalive_secs))))
}
