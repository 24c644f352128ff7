//! What no committed ledger holds, whatever the plan: an entry whose running balance is not
//! the sum of the beneficiary's entries up to it, a gap or a repeat in a beneficiary's
//! positions, a refund left pending beside its settled purchase (the transaction that
//! settles a purchase applies its pending refunds), and a refund refused for asking more
//! than remained while more than it asked still remains (what remains only shrinks, so
//! it remained when it was refused too).
use sqlx::PgConnection;
use uuid::Uuid;

/// Differences reported at most per check: one broken position breaks every later
/// running balance of the beneficiary, and a report of them all says no more.
const SHOWN: i64 = 100;

pub(super) async fn check(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    running_balances(&mut *db, user, diffs).await?;
    pending_refunds(&mut *db, user, diffs).await?;
    rejected_refunds(&mut *db, user, diffs).await
}

/// A refused refund of no more than its purchase still has refundable.
async fn rejected_refunds(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rows = sqlx::query!(
        r#"SELECT r.refund_id, r.amount, p.id AS purchase_id, p.amount - p.refunded AS "remaining!"
           FROM refunds r JOIN purchases p ON p.id = r.purchase_id
           WHERE r.status = 'rejected' AND r.amount <= p.amount - p.refunded
             AND ($1::uuid IS NULL OR p.user_id = $1)
           LIMIT $2"#,
        user,
        SHOWN
    )
    .fetch_all(&mut *db)
    .await?;
    for r in rows {
        diffs.push(format!(
            "refund {} of {} was refused, but purchase {} still has {} refundable",
            r.refund_id, r.amount, r.purchase_id, r.remaining
        ));
    }
    Ok(())
}

/// Along `(beneficiary_id, user_seq)`, the primary key's order: positions 1, 2, 3, … and
/// each `balance_after` the sum so far (it is what history and the live feed show).
async fn running_balances(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rows = sqlx::query!(
        r#"SELECT beneficiary_id AS "user_id!", user_seq AS "seq!", n AS "expected_seq!",
                  balance_after AS "balance!", running AS "running!"
           FROM (SELECT beneficiary_id, user_seq, balance_after,
                        sum(amount) OVER w AS running, row_number() OVER w AS n
                 FROM earnings WHERE $1::uuid IS NULL OR beneficiary_id = $1
                 WINDOW w AS (PARTITION BY beneficiary_id ORDER BY user_seq)) e
           WHERE balance_after IS DISTINCT FROM running OR user_seq <> n
           LIMIT $2"#,
        user,
        SHOWN
    )
    .fetch_all(&mut *db)
    .await?;
    for r in rows {
        diffs.push(format!(
            "entry {} of {} (position {} expected): balance after {} but the entries add up to {}",
            r.seq, r.user_id, r.expected_seq, r.balance, r.running
        ));
    }
    Ok(())
}

/// A refund still pending while its order's purchase is settled (for one user: refunds of
/// their purchases).
async fn pending_refunds(
    db: &mut PgConnection,
    user: Option<Uuid>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rows = sqlx::query!(
        "SELECT r.refund_id, p.id AS purchase_id FROM refunds r
         JOIN purchases p ON p.shop_id = r.shop_id AND p.order_id = r.order_id
         WHERE r.status = 'pending' AND ($1::uuid IS NULL OR p.user_id = $1)
         LIMIT $2",
        user,
        SHOWN
    )
    .fetch_all(&mut *db)
    .await?;
    for r in rows {
        diffs.push(format!(
            "refund {} is pending but purchase {} is settled",
            r.refund_id, r.purchase_id
        ));
    }
    Ok(())
}
