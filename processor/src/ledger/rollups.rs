//! The report rollups (`earnings_by_source`, keyed by the entry's leg too, and
//! `earnings_daily` with each day's lowest and highest ledger position; migrations 0004,
//! 0008 and 0010), moved by a batch's entries in the same
//! transaction as the entries. The by-leg report groups the source rows by leg.
//! Every row is keyed by beneficiary, and a batch writes a beneficiary's entries only
//! while it holds that beneficiary's `account_totals` row (locked in user-id order), so
//! concurrent batches serialize on these rows without deadlocking. One statement for both
//! tables: each is grouped per key first, so no row is updated twice.
use super::Entry;
use anyhow::Context;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Adds `entries` (already inserted into `earnings`) to the two rollups.
pub(super) async fn add(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Entry) -> Uuid| entries.iter().map(f).collect::<Vec<_>>();
    let beneficiaries = col(|e| e.event.beneficiary_id.as_uuid());
    let sources = col(|e| e.event.source_user_id.as_uuid());
    let legs = col(|e| e.event.leg_user_id.as_uuid());
    let levels: Vec<i16> = entries.iter().map(|e| i16::from(e.event.level)).collect();
    let amounts: Vec<Decimal> = entries
        .iter()
        .map(|e| e.event.amount.as_decimal())
        .collect();
    let created: Vec<DateTime<Utc>> = entries.iter().map(|e| e.event.created_at).collect();
    let seqs: Vec<i64> = entries
        .iter()
        .map(|e| i64::try_from(e.event.seq))
        .collect::<Result<_, _>>()?;
    sqlx::query!(
        "WITH e AS (
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::smallint[], $5::numeric[],
                                  $6::timestamptz[], $7::bigint[])
                 AS e(beneficiary_id, source_user_id, leg_user_id, level, amount, created_at, user_seq)
         ),
         by_source AS (
             INSERT INTO earnings_by_source AS r (beneficiary_id, source_user_id, level, leg_user_id, total, entries)
             SELECT beneficiary_id, source_user_id, level, leg_user_id, sum(amount), count(*) FROM e GROUP BY 1, 2, 3, 4
             ON CONFLICT (beneficiary_id, source_user_id, level, leg_user_id) DO UPDATE
             SET total = r.total + EXCLUDED.total, entries = r.entries + EXCLUDED.entries
         )
         INSERT INTO earnings_daily AS r (beneficiary_id, day, total, entries, first_seq, last_seq)
         SELECT beneficiary_id, (created_at AT TIME ZONE 'UTC')::date, sum(amount), count(*),
                min(user_seq), max(user_seq)
         FROM e GROUP BY 1, 2
         ON CONFLICT (beneficiary_id, day) DO UPDATE
         SET total = r.total + EXCLUDED.total, entries = r.entries + EXCLUDED.entries,
             first_seq = least(r.first_seq, EXCLUDED.first_seq),
             last_seq = greatest(r.last_seq, EXCLUDED.last_seq)",
        &beneficiaries,
        &sources,
        &legs,
        &levels,
        &amounts,
        &created,
        &seqs
    )
    .execute(&mut **tx)
    .await
    .context("moving report rollups")?;
    Ok(())
}
