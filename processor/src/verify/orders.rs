//! Each order is settled once, as the order registry names it: the purchase the registry
//! holds for `(shop, order)`, at the amount it was reserved with. Purchases hold no unique
//! key on the order since the registry took that job (migration 0006), so a writer that
//! settled an order twice would pay twice with every entry of each copy correct; this is
//! where that shows.
use super::Scope;
use sqlx::PgConnection;

/// Differences reported at most per check.
const SHOWN: i64 = 100;

pub(super) async fn check(
    db: &mut PgConnection,
    scope: Scope,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let user = scope.user.map(|u| u.as_uuid());
    let twice = sqlx::query!(
        r#"SELECT shop_id AS "shop_id!", order_id AS "order_id!", count(*) AS "settled!"
           FROM purchases
           WHERE ($1::uuid IS NULL OR user_id = $1)
             AND ($2::timestamptz IS NULL OR processed_at >= $2)
             AND ($3::timestamptz IS NULL OR processed_at < $3)
           GROUP BY shop_id, order_id HAVING count(*) > 1
           LIMIT $4"#,
        user,
        scope.from,
        scope.to,
        SHOWN
    )
    .fetch_all(&mut *db)
    .await?;
    for r in twice {
        diffs.push(format!(
            "order {:?} of shop {} is settled {} times",
            r.order_id, r.shop_id, r.settled
        ));
    }
    let unregistered = sqlx::query!(
        r#"SELECT p.id AS "purchase_id!", p.amount AS "amount!", r.purchase_id AS "registered?",
                  r.amount AS "registered_amount?"
           FROM purchases p
           LEFT JOIN purchase_requests r ON r.shop_id = p.shop_id AND r.order_id = p.order_id
           WHERE ($1::uuid IS NULL OR p.user_id = $1)
             AND ($2::timestamptz IS NULL OR p.processed_at >= $2)
             AND ($3::timestamptz IS NULL OR p.processed_at < $3)
             AND (r.purchase_id IS DISTINCT FROM p.id OR r.amount IS DISTINCT FROM p.amount)
           LIMIT $4"#,
        user,
        scope.from,
        scope.to,
        SHOWN
    )
    .fetch_all(&mut *db)
    .await?;
    for r in unregistered {
        diffs.push(match (r.registered, r.registered_amount) {
            (Some(id), Some(amount)) if id == r.purchase_id => format!(
                "purchase {} is settled at {} but its order was reserved at {amount}",
                r.purchase_id, r.amount
            ),
            (Some(id), _) => format!(
                "purchase {} is settled but its order's registry names purchase {id}",
                r.purchase_id
            ),
            (None, _) => format!(
                "purchase {} is settled but its order is not registered",
                r.purchase_id
            ),
        });
    }
    Ok(())
}
