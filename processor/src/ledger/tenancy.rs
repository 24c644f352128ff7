//! Tenancy on the stream: a shop publishing straight to JetStream is held to the rule
//! ingest applies (a shop's purchases are for its own users).
use super::{DeadLetter, Delivered};
use anyhow::Context;
use schemas::messages::{DeadLetterReason, PurchaseMessage};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// Tenancy: a shop's purchases are for users it signed up (or that no shop signed up);
/// one for another shop's user (a direct publish, say) is dead-lettered.
pub(super) async fn owned_by_their_shops<'a>(
    tx: &mut Transaction<'_, Postgres>,
    valid: Vec<(&'a Delivered, &'a PurchaseMessage)>,
    dead_letters: &mut Vec<DeadLetter>,
) -> anyhow::Result<Vec<(&'a Delivered, &'a PurchaseMessage)>> {
    if valid.is_empty() {
        return Ok(valid);
    }
    let users: Vec<Uuid> = valid.iter().map(|(_, m)| m.user_id.as_uuid()).collect();
    // Primary-key lookups per buyer (LATERAL … LIMIT 1), not a scan of `users`.
    let owners: HashMap<Uuid, Uuid> = sqlx::query!(
        r#"SELECT u.id AS "id!", u.shop_id AS "shop_id!" FROM UNNEST($1::uuid[]) AS k(id)
           CROSS JOIN LATERAL (SELECT id, shop_id FROM users u WHERE u.id = k.id LIMIT 1) u
           WHERE u.shop_id IS NOT NULL"#,
        &users
    )
    .fetch_all(&mut **tx)
    .await
    .context("reading the buyers' shops")?
    .into_iter()
    .map(|r| (r.id, r.shop_id))
    .collect();
    let (owned, foreign): (Vec<_>, Vec<_>) = valid.into_iter().partition(|(_, m)| {
        owners
            .get(&m.user_id.as_uuid())
            .is_none_or(|shop| *shop == m.shop_id.as_uuid())
    });
    for (d, m) in foreign {
        let detail = format!(
            "purchase {}: the user belongs to another shop",
            m.purchase_id
        );
        dead_letters.push(DeadLetter::of(d, DeadLetterReason::ForeignUser, detail));
    }
    Ok(owned)
}
