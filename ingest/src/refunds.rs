//! Refunds: reserved under a lock on the order's row, so concurrent refunds can never
//! add up to more than the purchase; then published like purchases.
use crate::error::IngestError;
use crate::requests::{Refund, RefundRequest};
use crate::IngestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{SubsecRound, Utc};
use platform::auth::Shop;
use platform::problem::JsonBody;
use schemas::messages::RefundMessage;
use schemas::{Money, OrderId, RefundId, ShopId};
use serde::Serialize;

pub fn routes() -> axum::Router<IngestState> {
    axum::Router::new().route("/v1/refunds", axum::routing::post(create_refund))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundAccepted {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub status: &'static str,
}

/// Accepts a full or partial refund of an order; its earnings are reversed pro rata.
#[utoipa::path(post, path = "/v1/refunds", tag = "ingest", request_body = RefundRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "stored; will be applied", body = RefundAccepted),
        (status = 403, description = "forbidden: only shops send refunds", body = platform::Problem),
        (status = 404, description = "order_not_found", body = platform::Problem),
        (status = 409, description = "refund_conflict, refund_exceeds_remaining", body = platform::Problem),
        (status = 422, description = "invalid_amount, invalid_body, invalid_query", body = platform::Problem),
    ))]
pub async fn create_refund(
    State(state): State<IngestState>,
    Shop(shop): Shop,
    _: platform::problem::NoQuery,
    JsonBody(req): JsonBody<RefundRequest>,
) -> Result<(StatusCode, Json<RefundAccepted>), IngestError> {
    let req = req.judge()?;
    crate::purchases::ensure_connected(&state)?;
    crate::purchases::admit(&state, shop)?;
    let hash = req.body_hash()?;

    let message = in_turn(&state, shop, &req, hash).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RefundAccepted {
            refund_id: message.refund_id,
            order_id: message.order_id,
            status: "accepted",
        }),
    ))
}

/// `reserve` in the refund's turn (`crate::turns`), then `store`, on a task of its own:
/// a request given up at its deadline drops this future, but its statement may still be
/// waiting on the order's row (until its `statement_timeout`), and the next refund must
/// not take another connection meanwhile, so the task keeps the turn until its
/// transaction has ended. A refund recorded is then stored whether its request is still
/// there or not (as one whose answer was lost; a retry is answered with it), never left
/// reserved and unpublished. A request given up while it waits for its turn takes none
/// (the task ends with it), so the tasks stay bounded by the requests in flight.
async fn in_turn(
    state: &IngestState,
    shop: ShopId,
    req: &Refund,
    hash: Vec<u8>,
) -> Result<RefundMessage, IngestError> {
    let (state, req) = (state.clone(), req.clone());
    let (_asking, gone) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let turn = tokio::select! {
            turn = state.refund_turns.take(shop, &req.order_id) => turn,
            _ = gone => None,
        };
        let Some(turn) = turn else {
            return Err(IngestError::Internal(anyhow::anyhow!(
                "the refund's request is gone"
            )));
        };
        let reserved = reserve(&state, shop, &req, hash).await;
        drop(turn);
        store(&state, shop, reserved?).await
    })
    .await
    .map_err(|e| IngestError::Internal(anyhow::anyhow!("refund reservation task: {e}")))?
}

/// Stores the refund's message (its id the message id: a retry within the stream's
/// duplicate window is stored once).
async fn store(
    state: &IngestState,
    shop: ShopId,
    message: RefundMessage,
) -> Result<RefundMessage, IngestError> {
    let payload = serde_json::to_vec(&message).map_err(anyhow::Error::from)?;
    let bytes = payload.len() as u64;
    let ack = platform::nats::publish_stored(
        &state.js,
        state.subjects.refund(&shop),
        Some(&format!("{shop}:refund:{}", message.refund_id)),
        payload,
    )
    .await
    .map_err(IngestError::StreamUnavailable)?;
    state.backlog.stored(shop, &ack, bytes);
    platform::metrics::metrics()
        .purchases_accepted
        .with_label_values(&["refund", "single"])
        .inc();
    Ok(message)
}

/// Records the refund under a lock on its order's row (so concurrent refunds never add
/// up to more than the purchase), or finds it recorded before: the message to publish.
async fn reserve(
    state: &IngestState,
    shop: ShopId,
    req: &Refund,
    hash: Vec<u8>,
) -> Result<RefundMessage, IngestError> {
    let mut tx = state.pool.begin().await?;
    let order = sqlx::query_as!(
        OrderRow,
        "SELECT amount, refunded FROM purchase_requests WHERE shop_id = $1 AND order_id = $2 FOR UPDATE",
        shop.as_uuid(),
        req.order_id.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| IngestError::OrderNotFound(req.order_id.to_string()))?;
    let existing = sqlx::query!(
        "SELECT body_hash, message FROM refund_requests WHERE shop_id = $1 AND refund_id = $2",
        shop.as_uuid(),
        req.refund_id.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let message: RefundMessage = match existing {
        Some(row) if row.body_hash != hash => {
            return Err(IngestError::RefundConflict(req.refund_id.to_string()))
        }
        Some(row) => serde_json::from_value(row.message).map_err(anyhow::Error::from)?,
        None => match from_the_stream(&mut tx, shop, req).await? {
            Some(message) => message,
            None => new_refund(&mut tx, shop, req, &order, hash).await?,
        },
    };
    tx.commit().await?;
    Ok(message)
}

/// The same refund published straight to the stream and recorded by the processor: the
/// edge answers it as a retry and does not count it again (the processor counts it in the
/// order's row once applied). Another order or amount under its id is a conflict.
async fn from_the_stream(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    shop: ShopId,
    req: &Refund,
) -> Result<Option<RefundMessage>, IngestError> {
    let recorded = sqlx::query!(
        "SELECT order_id, amount, received_at FROM refunds WHERE shop_id = $1 AND refund_id = $2",
        shop.as_uuid(),
        req.refund_id.as_str()
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = recorded else { return Ok(None) };
    if r.order_id != req.order_id.as_str() || r.amount != req.amount.as_decimal() {
        return Err(IngestError::RefundConflict(req.refund_id.to_string()));
    }
    Ok(Some(RefundMessage {
        shop_id: shop,
        refund_id: req.refund_id.clone(),
        order_id: req.order_id.clone(),
        amount: req.amount,
        received_at: r.received_at,
    }))
}

/// A refund neither recorded here nor by the processor: judged against what remains of
/// its order, then recorded.
async fn new_refund(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    shop: ShopId,
    req: &Refund,
    order: &OrderRow,
    hash: Vec<u8>,
) -> Result<RefundMessage, IngestError> {
    let amount = Money::from_decimal(order.amount).map_err(anyhow::Error::from)?;
    let refunded = Money::from_decimal(order.refunded).map_err(anyhow::Error::from)?;
    let remaining = amount - refunded;
    if req.amount > remaining {
        return Err(IngestError::RefundExceedsRemaining {
            asked: req.amount.to_string(),
            remaining: remaining.to_string(),
        });
    }
    record(tx, shop, req, hash).await
}

/// The order's registry row as a refund reads it.
struct OrderRow {
    amount: rust_decimal::Decimal,
    refunded: rust_decimal::Decimal,
}

/// A new refund: its request row (the message, for retries) and the order's running refund.
async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    shop: ShopId,
    req: &Refund,
    hash: Vec<u8>,
) -> Result<RefundMessage, IngestError> {
    let message = RefundMessage {
        shop_id: shop,
        refund_id: req.refund_id.clone(),
        order_id: req.order_id.clone(),
        amount: req.amount,
        received_at: Utc::now().trunc_subsecs(6),
    };
    sqlx::query!(
        "INSERT INTO refund_requests (shop_id, refund_id, order_id, body_hash, message) VALUES ($1, $2, $3, $4, $5)",
        shop.as_uuid(),
        req.refund_id.as_str(),
        req.order_id.as_str(),
        hash,
        serde_json::to_value(&message).map_err(anyhow::Error::from)?
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "UPDATE purchase_requests SET refunded = refunded + $3 WHERE shop_id = $1 AND order_id = $2",
        shop.as_uuid(),
        req.order_id.as_str(),
        req.amount.as_decimal()
    )
    .execute(&mut **tx)
    .await?;
    Ok(message)
}
