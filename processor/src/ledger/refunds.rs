//! Refunds: recorded on arrival, applied as soon as their purchase is settled (now, or
//! when it arrives later), reversing each earning pro rata at its frozen rate.
use super::{lock_totals, write_entries, DeadLetter, Delivered, Entry, Item, Outcome};
use crate::payout::reversal;
use anyhow::Context;
use chrono::{SubsecRound, Utc};
use schemas::messages::{DeadLetterReason, RefundMessage};
use schemas::{EarningEvent, EntryKind, Money, OrderId, RefundId, RefundStatus, ShopId, UserId};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub(super) async fn apply_one(
    tx: &mut Transaction<'_, Postgres>,
    d: &Delivered,
    r: &RefundMessage,
    outcome: &mut Outcome,
    dead: &mut Vec<DeadLetter>,
) -> anyhow::Result<()> {
    if r.amount <= Money::ZERO || !r.amount.is_single_amount() {
        dead.push(letter(
            d,
            DeadLetterReason::InvalidAmounts,
            "refund amount must be positive and at most the largest amount accepted",
        ));
        return Ok(());
    }
    let inserted = sqlx::query!(
        "INSERT INTO refunds (shop_id, refund_id, order_id, amount, status, received_at)
         VALUES ($1, $2, $3, $4, $6, $5) ON CONFLICT DO NOTHING",
        r.shop_id.as_uuid(),
        r.refund_id.as_str(),
        r.order_id.as_str(),
        r.amount.as_decimal(),
        r.received_at,
        RefundStatus::Pending.as_str()
    )
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return again(tx, d, r, outcome, dead).await;
    }
    if let Some(reason) = settle(tx, r.shop_id.as_uuid(), r.refund_id.as_str(), outcome).await? {
        dead.push(letter(
            d,
            reason,
            "refund exceeds what remains of the purchase",
        ));
    }
    Ok(())
}

/// A refund id seen before: the same refund is a replay (its entries are published again,
/// or its refusal); another body under the id is a conflict, never silently ignored.
async fn again(
    tx: &mut Transaction<'_, Postgres>,
    d: &Delivered,
    r: &RefundMessage,
    outcome: &mut Outcome,
    dead: &mut Vec<DeadLetter>,
) -> anyhow::Result<()> {
    let known = sqlx::query!(
        "SELECT order_id, amount, status FROM refunds WHERE shop_id = $1 AND refund_id = $2",
        r.shop_id.as_uuid(),
        r.refund_id.as_str()
    )
    .fetch_one(&mut **tx)
    .await?;
    if known.order_id != r.order_id.as_str() || Money::from_decimal(known.amount)? != r.amount {
        let why = "refund id already recorded with another order or amount";
        dead.push(letter(d, DeadLetterReason::RefundConflict, why));
    } else if known.status.parse::<RefundStatus>()? == RefundStatus::Rejected {
        let why = "refund exceeds what remains of the purchase";
        dead.push(letter(d, DeadLetterReason::RefundExceedsPurchase, why));
    } else {
        super::replay::refund(tx, r.shop_id.as_uuid(), r.refund_id.as_str(), outcome).await?;
    }
    Ok(())
}

/// Refunds that arrived before their purchase, applied now that it is settled. One that
/// would exceed the purchase is dead-lettered under its own key (it has no delivery now).
pub(super) async fn apply_pending_for(
    tx: &mut Transaction<'_, Postgres>,
    keys: &[(Uuid, String)],
    outcome: &mut Outcome,
    dead: &mut Vec<DeadLetter>,
) -> anyhow::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let (shops, orders): (Vec<Uuid>, Vec<String>) = keys.iter().cloned().unzip();
    // Filters keep the literal 'pending': a partial index (`refunds_pending_idx`) is
    // matched only against a literal in a cached generic plan, never a parameter.
    let pending = sqlx::query!(
        "SELECT r.shop_id, r.refund_id, r.order_id, r.amount, r.received_at FROM refunds r
         JOIN UNNEST($1::uuid[], $2::text[]) AS k(shop_id, order_id)
           ON r.shop_id = k.shop_id AND r.order_id = k.order_id
         WHERE r.status = 'pending' ORDER BY r.received_at, r.refund_id",
        &shops,
        &orders
    )
    .fetch_all(&mut **tx)
    .await?;
    for p in pending {
        if let Some(reason) = settle(tx, p.shop_id, &p.refund_id, outcome).await? {
            let message = RefundMessage {
                shop_id: ShopId(p.shop_id),
                refund_id: RefundId::parse(&p.refund_id).map_err(anyhow::Error::msg)?,
                order_id: OrderId::parse(&p.order_id).map_err(anyhow::Error::msg)?,
                amount: Money::from_decimal(p.amount)?,
                received_at: p.received_at,
            };
            dead.push(DeadLetter {
                subject: format!("refund:{}:{}", p.shop_id, p.refund_id),
                reason,
                detail: format!(
                    "refund {} (pending until its purchase landed) exceeds what remains of the purchase",
                    p.refund_id
                ),
                payload: serde_json::to_vec(&message)?,
                stream_seq: 0,
                index: 0,
            });
        }
    }
    Ok(())
}

fn letter(d: &Delivered, reason: DeadLetterReason, detail: &str) -> DeadLetter {
    DeadLetter::of(d, reason, detail)
}

/// Whose totals the batch's refunds may move: the beneficiaries of the settled purchases
/// they refund (a refund of a purchase settled in the same batch moves that purchase's
/// beneficiaries, locked with it anyway). Ids, not locks: the caller locks them with the
/// purchases' beneficiaries in one acquisition.
pub(super) async fn beneficiaries(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[Delivered],
) -> anyhow::Result<Vec<Uuid>> {
    let (mut shops, mut orders) = (Vec::new(), Vec::new());
    for d in batch {
        if let Item::Refund(r) = &d.item {
            shops.push(r.shop_id.as_uuid());
            orders.push(r.order_id.to_string());
        }
    }
    if shops.is_empty() {
        return Ok(Vec::new());
    }
    let users = sqlx::query_file_scalar!("sql/refund_beneficiaries.sql", &shops, &orders[..])
        .fetch_all(&mut **tx)
        .await?;
    Ok(users)
}

/// Applies a recorded refund if its purchase is settled; returns a reason if refused.
async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    shop: Uuid,
    refund_id: &str,
    outcome: &mut Outcome,
) -> anyhow::Result<Option<DeadLetterReason>> {
    let refund = sqlx::query!(
        "SELECT order_id, amount FROM refunds WHERE shop_id = $1 AND refund_id = $2 AND status = 'pending'",
        shop,
        refund_id
    )
    .fetch_one(&mut **tx)
    .await?;
    let Some(p) = sqlx::query!(
        "SELECT p.id, p.amount, p.refunded, p.plan_version FROM purchase_requests r
         JOIN purchases p ON p.id = r.purchase_id
         WHERE r.shop_id = $1 AND r.order_id = $2 FOR UPDATE OF p",
        shop,
        refund.order_id
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None); // stays pending until the purchase arrives
    };
    let amount = Money::from_decimal(p.amount)?;
    let before = Money::from_decimal(p.refunded)?;
    let after = before + Money::from_decimal(refund.amount)?;
    if after > amount {
        sqlx::query!(
            "UPDATE refunds SET status = $4, purchase_id = $3 WHERE shop_id = $1 AND refund_id = $2",
            shop,
            refund_id,
            p.id,
            RefundStatus::Rejected.as_str()
        )
        .execute(&mut **tx)
        .await?;
        return Ok(Some(DeadLetterReason::RefundExceedsPurchase));
    }
    let refunded = Refunded {
        purchase_id: p.id,
        plan_version: u32::try_from(p.plan_version).context("plan version out of range")?,
        amount,
        before,
        after,
    };
    let entries = reverse(tx, ShopId(shop), refund_id, &refunded).await?;
    let edge = (refund.order_id.as_str(), refund.amount, refund_id);
    record_refunded(tx, &refunded, shop, edge).await?;
    sqlx::query!(
        "UPDATE refunds SET status = $5, purchase_id = $3, applied_at = now(), refunded_before = $4
         WHERE shop_id = $1 AND refund_id = $2",
        shop,
        refund_id,
        p.id,
        before.as_decimal(),
        RefundStatus::Applied.as_str()
    )
    .execute(&mut **tx)
    .await?;
    outcome.new_entries += entries.len();
    outcome.entries.extend(entries.into_iter().map(|e| e.event));
    Ok(None)
}

/// The purchase's refunded sum after the refund, and the same refund in its order's
/// registry row when the edge did not record it there: the edge judges refunds against
/// that row, so one published straight to the stream counts there once applied, or a later
/// refund through the edge would be promised (202) and then refused here. `edge`: the
/// refund's order id, amount and id.
async fn record_refunded(
    tx: &mut Transaction<'_, Postgres>,
    r: &Refunded,
    shop: Uuid,
    (order_id, amount, refund_id): (&str, rust_decimal::Decimal, &str),
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE purchases SET refunded = $2 WHERE id = $1",
        r.purchase_id,
        r.after.as_decimal()
    )
    .execute(&mut **tx)
    .await?;
    // The row first: an edge recording this refund holds it until its commit, after
    // which the next statement (a snapshot of its own) sees what the edge recorded.
    let order = sqlx::query_scalar!(
        "SELECT refunded FROM purchase_requests WHERE shop_id = $1 AND order_id = $2 FOR UPDATE",
        shop,
        order_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    let recorded = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM refund_requests WHERE shop_id = $1 AND refund_id = $2) AS "recorded!""#,
        shop,
        refund_id
    )
    .fetch_one(&mut **tx)
    .await?;
    if order.is_some() && !recorded {
        sqlx::query!(
            "UPDATE purchase_requests SET refunded = LEAST(amount, refunded + $3)
             WHERE shop_id = $1 AND order_id = $2",
            shop,
            order_id,
            amount
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A settled purchase being refunded: refunded before this refund, and after it.
struct Refunded {
    purchase_id: Uuid,
    plan_version: u32,
    amount: Money,
    before: Money,
    after: Money,
}

/// Writes the reversal of each earning of the purchase, pro rata at its frozen rate
/// (none for a share that rounds to zero), under its beneficiary's totals lock.
async fn reverse(
    tx: &mut Transaction<'_, Postgres>,
    shop: ShopId,
    refund_id: &str,
    r: &Refunded,
) -> anyhow::Result<Vec<Entry>> {
    let earned = sqlx::query!(
        "SELECT beneficiary_id, level, leg_user_id, source_user_id, base, rate, amount FROM earnings
         WHERE purchase_id = $1 AND kind = 'earning' ORDER BY level",
        r.purchase_id
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut users: Vec<Uuid> = earned.iter().map(|e| e.beneficiary_id).collect();
    let mut totals = lock_totals(tx, &mut users).await?;
    let now = Utc::now().trunc_subsecs(6);
    let mut entries = Vec::new();
    for e in earned {
        let back = reversal(Money::from_decimal(e.amount)?, r.amount, r.before, r.after);
        if back.is_zero() {
            continue;
        }
        let (total, seq) = totals.entry(e.beneficiary_id).or_default().push(back);
        let level = u8::try_from(e.level).context("level out of range")?;
        entries.push(Entry {
            event: EarningEvent {
                earning_id: Uuid::now_v7(),
                seq,
                purchase_id: r.purchase_id,
                shop_id: shop,
                beneficiary_id: UserId(e.beneficiary_id),
                source_user_id: UserId(e.source_user_id),
                leg_user_id: UserId(e.leg_user_id),
                level,
                direct: level == 1,
                kind: EntryKind::Reversal,
                amount: back,
                total,
                plan_version: r.plan_version,
                created_at: now,
            },
            base: Money::from_decimal(e.base)?,
            rate: e.rate,
            refund_id: refund_id.to_owned(),
        });
    }
    write_entries(tx, &entries, &totals).await?;
    Ok(entries)
}
