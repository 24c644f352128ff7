//! Purchases: validate at the edge, reserve the order id in Postgres (so a changed
//! body is a 409 however fast it is resent), publish, answer after the PubAck.
use crate::error::IngestError;
use crate::requests::{Purchase, PurchaseRequest};
use crate::reserver::Failed;
use crate::IngestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{SubsecRound, Utc};
use futures::StreamExt;
use platform::auth::Shop;
use platform::problem::JsonBody;
use schemas::messages::PurchaseMessage;
use schemas::{OrderId, ShopId, UserStatus, CURRENCY};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

pub fn routes() -> axum::Router<IngestState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/purchases", post(create_purchase))
        .route("/v1/purchases/batch", post(create_purchase_batch))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBatch {
    /// Each item is read and judged on its own: one that is not a valid purchase is
    /// answered with its problem, and the others are still stored.
    #[schema(value_type = Vec<PurchaseRequest>)]
    pub purchases: Vec<Box<RawValue>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurchaseAccepted {
    pub purchase_id: Uuid,
    pub order_id: OrderId,
    pub status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResult {
    pub results: Vec<BatchItem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub index: usize,
    /// Set when the item was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<PurchaseAccepted>,
    /// Set when the item was refused, with why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<platform::Problem>,
}

/// Accepts one purchase: answered 202 only after the stream has stored it.
#[utoipa::path(post, path = "/v1/purchases", tag = "ingest", request_body = PurchaseRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "stored; will be paid", body = PurchaseAccepted),
        (status = 403, description = "foreign_user", body = platform::Problem),
        (status = 409, description = "order_conflict", body = platform::Problem),
        (status = 422, description = "unknown_user, user_inactive, invalid_amount, invalid_profit, invalid_occurred_at, unknown_currency, invalid_body, invalid_query", body = platform::Problem),
        (status = 503, description = "the stream is unavailable; retry", body = platform::Problem),
    ))]
pub async fn create_purchase(
    State(state): State<IngestState>,
    Shop(shop): Shop,
    _: platform::problem::NoQuery,
    JsonBody(req): JsonBody<PurchaseRequest>,
) -> Result<(StatusCode, Json<PurchaseAccepted>), IngestError> {
    charge(&state, shop, 1)?;
    // Nothing can be stored: say so before reserving the order.
    ensure_connected(&state)?;
    admit(&state, shop)?;
    let store_on = state.subjects.purchase(&shop);
    let (message, stored) = reserve(&state, shop, &req.judge()?, Some(store_on)).await?;
    if !stored {
        // A retry of a reserved order: its message is stored (again) here.
        publish(&state, &message).await?;
    }
    platform::metrics::metrics()
        .purchases_accepted
        .with_label_values(&["purchase", "single"])
        .inc();
    tracing::debug!(purchase_id = %message.purchase_id, shop_id = %shop, "purchase stored");
    Ok((StatusCode::ACCEPTED, Json(accepted(&message))))
}

/// Each item is answered on its own: accepted ones are stored, refused ones carry their problem.
#[utoipa::path(post, path = "/v1/purchases/batch", tag = "ingest", request_body = PurchaseBatch,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "each item accepted or refused on its own", body = BatchResult),
        (status = 403, description = "forbidden: only shops send purchases", body = platform::Problem),
        (status = 413, description = "batch_too_large", body = platform::Problem),
        (status = 422, description = "invalid_body, invalid_query", body = platform::Problem),
    ))]
pub async fn create_purchase_batch(
    State(state): State<IngestState>,
    Shop(shop): Shop,
    _: platform::problem::NoQuery,
    JsonBody(batch): JsonBody<PurchaseBatch>,
) -> Result<(StatusCode, Json<BatchResult>), IngestError> {
    if batch.purchases.len() > state.max_batch {
        return Err(IngestError::BatchTooLarge(
            batch.purchases.len(),
            state.max_batch,
        ));
    }
    ensure_connected(&state)?;
    charge(&state, shop, batch.purchases.len())?;
    admit(&state, shop)?;
    let mut results = Vec::with_capacity(batch.purchases.len());
    let mut pending = Vec::new();
    // Reservations are independent rows: make several at once, answers kept in order.
    let reservations: Vec<_> = batch
        .purchases
        .iter()
        .map(|raw| {
            let judged = read_item(raw);
            let state = &state;
            async move {
                let (message, _) = reserve(state, shop, &judged?, None).await?;
                Ok::<_, IngestError>(message)
            }
        })
        .collect();
    let reserved: Vec<_> = futures::stream::iter(reservations)
        .buffered(state.batch_items_in_flight.get())
        .collect()
        .await;
    let mut stored = Vec::new();
    for (index, reservation) in reserved.into_iter().enumerate() {
        match reservation {
            Ok(message) => {
                pending.push(index);
                stored.push(message);
            }
            Err(e) => results.push(BatchItem {
                index,
                accepted: None,
                problem: Some(e.problem()),
            }),
        }
    }
    // The accepted items travel as one stored message (with whatever else is waiting).
    let answers: Vec<PurchaseAccepted> = stored.iter().map(accepted).collect();
    state
        .committer
        .store(state.subjects.purchase(&shop), stored)
        .await
        .map_err(|e| IngestError::StreamUnavailable(anyhow::anyhow!(e)))?;
    for (index, answer) in pending.into_iter().zip(answers) {
        results.push(BatchItem {
            index,
            accepted: Some(answer),
            problem: None,
        });
    }
    results.sort_by_key(|r| r.index);
    platform::metrics::metrics()
        .purchases_accepted
        .with_label_values(&["purchase", "batch"])
        .inc_by(results.len() as u64);
    Ok((StatusCode::ACCEPTED, Json(BatchResult { results })))
}

/// One batch item, read and judged by itself.
fn read_item(raw: &RawValue) -> Result<Purchase, IngestError> {
    // As for whole bodies (`JsonBody`): an array would be read as the fields in order.
    if !platform::problem::is_object(raw) {
        return Err(IngestError::Invalid(
            "invalid_body",
            "this purchase: must be a JSON object".into(),
        ));
    }
    let req: PurchaseRequest = serde_json::from_str(raw.get())
        .map_err(|e| IngestError::Invalid("invalid_body", format!("this purchase: {e}")))?;
    req.judge()
}

/// Counts `purchases` against the shop's purchase rate (every item of a batch).
fn charge(state: &IngestState, shop: ShopId, purchases: usize) -> Result<(), IngestError> {
    let cost = u32::try_from(purchases).unwrap_or(u32::MAX);
    state
        .purchase_rate
        .charge(shop.as_uuid().as_bytes(), cost)
        .map_err(IngestError::PurchaseRate)
}

fn accepted(m: &PurchaseMessage) -> PurchaseAccepted {
    PurchaseAccepted {
        purchase_id: m.purchase_id,
        order_id: m.order_id.clone(),
        status: "accepted",
    }
}

/// Finds or creates the reservation of a judged purchase. Returns the exact message to
/// publish (on a retry, the one stored the first time) and whether it is stored already:
/// a new reservation asked to be stored on `store_on` is stored with its group.
async fn reserve(
    state: &IngestState,
    shop: ShopId,
    req: &Purchase,
    store_on: Option<String>,
) -> Result<(PurchaseMessage, bool), IngestError> {
    let hash = req.body_hash()?;
    let message = PurchaseMessage {
        purchase_id: Uuid::now_v7(),
        shop_id: shop,
        order_id: req.order_id.clone(),
        user_id: req.user_id,
        amount: req.amount,
        profit: req.profit,
        currency: CURRENCY.to_owned(),
        occurred_at: req
            .occurred_at
            .unwrap_or_else(|| Utc::now().trunc_subsecs(6)),
        body_hash: hash.clone(),
    };
    let stores = store_on.is_some();
    let reservation = crate::reserver::Reservation {
        body_hash: hex::decode(&hash).map_err(anyhow::Error::from)?,
        message: message.clone(),
        store_on,
        asked: std::time::Instant::now(),
    };
    // The common case in one statement shared with concurrent requests: a new order from
    // an active user of this shop (or of none: signed up by an admin, or before shops
    // were recorded) is reserved.
    let inserted = state
        .reserver
        .reserve(reservation)
        .await
        .map_err(|e| match e {
            Failed::Database {
                detail,
                unavailable: true,
            } => IngestError::DatabaseUnavailable(detail),
            Failed::Database { detail, .. } => IngestError::Internal(anyhow::anyhow!(detail)),
            Failed::Stream(detail) => IngestError::StreamUnavailable(anyhow::anyhow!(detail)),
        })?;
    if inserted {
        return Ok((message, stores));
    }
    // Otherwise: a retry (answered with the message stored the first time, or 409 if the
    // body changed; a retry stays accepted even if the user was deactivated since), or a
    // user this shop cannot send purchases for.
    if let Some(existing) = reserved(state, message, &hash).await? {
        return Ok((existing, false));
    }
    let user = sqlx::query!(
        "SELECT status, shop_id FROM users WHERE id = $1",
        req.user_id.as_uuid()
    )
    .fetch_optional(&state.pool)
    .await?;
    Err(match user {
        None => IngestError::UnknownUser,
        Some(u) if u.shop_id.is_some_and(|s| s != shop.as_uuid()) => IngestError::ForeignUser,
        Some(u) if u.status.parse::<UserStatus>()?.is_active() => {
            IngestError::Internal(anyhow::anyhow!("reservation neither made nor found"))
        }
        Some(_) => IngestError::UserInactive,
    })
}

/// The message of an order reserved before: this request's own (its body is the first
/// request's, or the hash differs and it is a 409) under the purchase id and time the
/// registry keeps. An order the processor registered (published straight to the stream)
/// settled in the same transaction; republishing it is a replay the processor recognises.
async fn reserved(
    state: &IngestState,
    mut message: PurchaseMessage,
    hash: &str,
) -> Result<Option<PurchaseMessage>, IngestError> {
    let row = sqlx::query!(
        "SELECT body_hash, purchase_id, occurred_at FROM purchase_requests
         WHERE shop_id = $1 AND order_id = $2",
        message.shop_id.as_uuid(),
        message.order_id.as_str()
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if hex::encode(&row.body_hash) != hash {
        return Err(IngestError::OrderConflict(message.order_id.to_string()));
    }
    message.purchase_id = row.purchase_id;
    message.occurred_at = row.occurred_at;
    Ok(Some(message))
}

async fn publish(state: &IngestState, m: &PurchaseMessage) -> Result<(), IngestError> {
    state
        .committer
        .store(state.subjects.purchase(&m.shop_id), vec![m.clone()])
        .await
        .map_err(|e| IngestError::StreamUnavailable(anyhow::anyhow!(e)))
}

/// Under its share of the stream (`crate::backlog`), or refused before anything is
/// reserved.
pub(crate) fn admit(state: &IngestState, shop: ShopId) -> Result<(), IngestError> {
    state
        .backlog
        .admit(shop)
        .map_err(|full| IngestError::BacklogFull(full.0))
}

/// While NATS is unreachable nothing can be stored: say so at once (503, retry) rather
/// than hold the request until the publish times out.
pub(crate) fn ensure_connected(state: &IngestState) -> Result<(), IngestError> {
    if state.js.client().connection_state() == async_nats::connection::State::Connected {
        Ok(())
    } else {
        Err(IngestError::StreamUnavailable(anyhow::anyhow!(
            "not connected to NATS"
        )))
    }
}
