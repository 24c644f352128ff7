//! Purchases: validate at the edge, reserve the order id in Postgres (so a changed
//! body is a 409 however fast it is resent), publish, answer after the PubAck.
use crate::error::IngestError;
use crate::IngestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, SubsecRound, Utc};
use futures::StreamExt;
use platform::auth::Principal;
use platform::problem::JsonBody;
use schemas::messages::PurchaseMessage;
use schemas::{Money, OrderId, ShopId, UserId, CURRENCY};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Reservations of one batch request made concurrently (each holds a pool connection).
const RESERVATIONS_IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    #[serde(default)]
    pub profit: Option<Money>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBatch {
    pub purchases: Vec<PurchaseRequest>,
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
        (status = 409, description = "order_conflict", body = platform::Problem),
        (status = 422, description = "unknown_user, user_inactive, invalid_amount, invalid_profit, unknown_currency", body = platform::Problem),
        (status = 503, description = "the stream is unavailable; retry", body = platform::Problem),
    ))]
pub async fn create_purchase(
    State(state): State<IngestState>,
    who: Principal,
    JsonBody(req): JsonBody<PurchaseRequest>,
) -> Result<(StatusCode, Json<PurchaseAccepted>), IngestError> {
    let shop = shop_of(who)?;
    let message = reserve(&state, shop, &req).await?;
    publish(&state, &message).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted(&message))))
}

/// Each item is answered on its own: accepted ones are stored, refused ones carry their problem.
#[utoipa::path(post, path = "/v1/purchases/batch", tag = "ingest", request_body = PurchaseBatch,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "each item accepted or refused on its own", body = BatchResult),
        (status = 413, description = "batch_too_large", body = platform::Problem),
    ))]
pub async fn create_purchase_batch(
    State(state): State<IngestState>,
    who: Principal,
    JsonBody(batch): JsonBody<PurchaseBatch>,
) -> Result<(StatusCode, Json<BatchResult>), IngestError> {
    let shop = shop_of(who)?;
    if batch.purchases.len() > state.max_batch {
        return Err(IngestError::BatchTooLarge(
            batch.purchases.len(),
            state.max_batch,
        ));
    }
    ensure_connected(&state)?;
    let mut results = Vec::with_capacity(batch.purchases.len());
    let mut pending = Vec::new();
    // Reservations are independent rows: make several at once, answers kept in order.
    let reservations: Vec<_> = batch
        .purchases
        .iter()
        .map(|req| reserve(&state, shop, req))
        .collect();
    let reserved: Vec<_> = futures::stream::iter(reservations)
        .buffered(RESERVATIONS_IN_FLIGHT)
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

fn shop_of(who: Principal) -> Result<ShopId, IngestError> {
    match who {
        Principal::Shop(s) => Ok(s),
        _ => Err(IngestError::Forbidden),
    }
}

fn accepted(m: &PurchaseMessage) -> PurchaseAccepted {
    PurchaseAccepted {
        purchase_id: m.purchase_id,
        order_id: m.order_id.clone(),
        status: "accepted",
    }
}

/// Checks the request, then finds or creates its reservation. Returns the exact
/// message to publish: on a retry, the one stored the first time.
async fn reserve(
    state: &IngestState,
    shop: ShopId,
    req: &PurchaseRequest,
) -> Result<PurchaseMessage, IngestError> {
    check_amounts(req)?;
    let hash = body_hash(req)?;
    let message = PurchaseMessage {
        purchase_id: Uuid::now_v7(),
        shop_id: shop,
        order_id: req.order_id.clone(),
        user_id: req.user_id,
        amount: req.amount,
        profit: req.profit.unwrap_or(req.amount),
        currency: CURRENCY.to_owned(),
        occurred_at: req.occurred_at.unwrap_or_else(Utc::now).trunc_subsecs(6),
        body_hash: hash.clone(),
    };
    let reservation = crate::reserver::Reservation {
        json: serde_json::to_value(&message).map_err(anyhow::Error::from)?,
        body_hash: hex::decode(&hash).map_err(anyhow::Error::from)?,
        message,
    };
    // The common case in one statement shared with concurrent requests: a new order from
    // an active user is reserved.
    let message = reservation.message.clone();
    let inserted = state
        .reserver
        .reserve(reservation)
        .await
        .map_err(|e| IngestError::Internal(anyhow::anyhow!(e)))?;
    if inserted {
        return Ok(message);
    }
    // Otherwise: a retry (answered with the message stored the first time, or 409 if the
    // body changed; a retry stays accepted even if the user was deactivated since), or a
    // user who cannot buy.
    if let Some(existing) = reserved(state, shop, &req.order_id, &hash).await? {
        return Ok(existing);
    }
    let status: Option<String> = sqlx::query_scalar!(
        "SELECT status FROM users WHERE id = $1",
        req.user_id.as_uuid()
    )
    .fetch_optional(&state.pool)
    .await?;
    Err(match status.as_deref() {
        None => IngestError::UnknownUser,
        Some("active") => {
            IngestError::Internal(anyhow::anyhow!("reservation neither made nor found"))
        }
        Some(_) => IngestError::UserInactive,
    })
}

async fn reserved(
    state: &IngestState,
    shop: ShopId,
    order: &OrderId,
    hash: &str,
) -> Result<Option<PurchaseMessage>, IngestError> {
    let row = sqlx::query!(
        "SELECT body_hash, message FROM purchase_requests WHERE shop_id = $1 AND order_id = $2",
        shop.as_uuid(),
        order.as_str()
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if hex::encode(&row.body_hash) != hash {
        return Err(IngestError::OrderConflict(order.to_string()));
    }
    let message = serde_json::from_value(row.message).map_err(anyhow::Error::from)?;
    Ok(Some(message))
}

fn check_amounts(req: &PurchaseRequest) -> Result<(), IngestError> {
    if req.amount <= Money::ZERO {
        return Err(IngestError::Invalid(
            "invalid_amount",
            "amount must be greater than zero".into(),
        ));
    }
    if let Some(profit) = req.profit {
        if profit.is_negative() {
            return Err(IngestError::Invalid(
                "invalid_profit",
                "profit must not be negative".into(),
            ));
        }
        if profit > req.amount {
            return Err(IngestError::Invalid(
                "invalid_profit",
                "profit must not exceed the amount".into(),
            ));
        }
    }
    if let Some(at) = req.occurred_at {
        if !schemas::messages::plausible_time(at, Utc::now()) {
            return Err(IngestError::Invalid(
                "invalid_occurred_at",
                format!(
                    "occurred_at must be in or after {} and not more than a day ahead",
                    schemas::messages::EARLIEST_PURCHASE_YEAR
                ),
            ));
        }
    }
    if let Some(c) = &req.currency {
        if c != CURRENCY {
            return Err(IngestError::Invalid(
                "unknown_currency",
                format!("currency must be {CURRENCY}"),
            ));
        }
    }
    Ok(())
}

/// The request in canonical form (amounts at two places), hashed: "2000" and "2000.00" agree.
fn body_hash(req: &PurchaseRequest) -> Result<String, IngestError> {
    let canonical = serde_json::to_vec(req).map_err(anyhow::Error::from)?;
    Ok(hex::encode(Sha256::digest(canonical)))
}

async fn publish(state: &IngestState, m: &PurchaseMessage) -> Result<(), IngestError> {
    ensure_connected(state)?;
    state
        .committer
        .store(state.subjects.purchase(&m.shop_id), vec![m.clone()])
        .await
        .map_err(|e| IngestError::StreamUnavailable(anyhow::anyhow!(e)))?;
    platform::metrics::metrics()
        .purchases_accepted
        .with_label_values(&["purchase", "single"])
        .inc();
    tracing::debug!(purchase_id = %m.purchase_id, shop_id = %m.shop_id, "purchase stored");
    Ok(())
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
