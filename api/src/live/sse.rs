//! Server-sent events: `event: earning`, `id:` = the entry's position in the user's ledger, keep-alive comments.
use crate::params::{self, ReadableUser};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

/// One event of the stream (the schema of each event, as OpenAPI 3.1 describes a
/// `text/event-stream` body).
#[derive(utoipa::ToSchema)]
pub struct SseEvent {
    /// Always `earning` (keep-alives are SSE comments, not events).
    pub event: String,
    /// The entry's position in the user's ledger; send the last one back as
    /// `Last-Event-ID` to resume.
    pub id: String,
    /// One `LiveEarning` as JSON.
    pub data: String,
}

/// Live entries as server-sent events: `event: earning`, `id:` the entry's position in
/// the user's ledger (1, 2, …)
/// (send it back as `Last-Event-ID` to resume), data a `LiveEarning`. A client that
/// reads slower than entries arrive is caught up from the ledger, never disconnected.
/// The stream ends when the caller's token expires (reconnect with a new one).
#[utoipa::path(get, path = "/v1/users/{id}/earnings/stream", tag = "live",
    params(("id" = uuid::Uuid, Path), ("Last-Event-ID" = Option<u64>, Header, description = "resume after this id")),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = SseEvent,
            description = "a stream of events, each as SseEvent describes"),
        (status = 403, body = platform::Problem),
        (status = 404, description = "not_found", body = platform::Problem),
        (status = 422, description = "invalid_user_id, invalid_last_event_id, invalid_query", body = platform::Problem),
        (status = 429, description = "too_many_streams", body = platform::Problem),
    ))]
pub async fn stream(
    State(state): State<ApiState>,
    ReadableUser(user): ReadableUser,
    _: platform::problem::NoQuery,
    life: super::CredentialLife,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last = params::last_event_id_header(&headers)?;
    let items = super::open(&state, user, last, life).await?;
    let events = items.map(|f| {
        Ok(Event::default()
            .event("earning")
            .id(f.seq.to_string())
            .data(String::from_utf8_lossy(&f.data)))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(state.live.keepalive_secs))))
}
