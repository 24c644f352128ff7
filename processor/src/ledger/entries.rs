//! Ledger rows and the summaries they move: the beneficiaries' running totals (locked
//! in user-id order), the entries, the report rollups, balances per level and totals.
use super::{rollups, step};
use anyhow::Context;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemas::{EarningEvent, Money};
use sqlx::{Postgres, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A beneficiary's running total and entry count inside one batch.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Running {
    total: Money,
    /// How many entries the beneficiary's ledger holds: its last position.
    entries: u64,
}

impl Running {
    /// Adds one entry; returns the total after it and the entry's position in the
    /// beneficiary's ledger (its live event id).
    pub(super) fn push(&mut self, amount: Money) -> (Money, u64) {
        self.total = self.total + amount;
        self.entries += 1;
        (self.total, self.entries)
    }
}

/// Locks the running totals of `users` (in id order) and returns them.
pub(super) async fn lock_totals(
    tx: &mut Transaction<'_, Postgres>,
    users: &mut Vec<Uuid>,
) -> anyhow::Result<BTreeMap<Uuid, Running>> {
    users.sort();
    users.dedup();
    sqlx::query!(
        "INSERT INTO account_totals (user_id) SELECT * FROM UNNEST($1::uuid[]) ON CONFLICT DO NOTHING",
        &users[..]
    )
    .execute(&mut **tx)
    .await?;
    // One primary-key lookup and lock per user, in the order given (ids sorted above):
    // as `user_id = ANY`, the planner scanned every account in the ledger for a batch.
    let rows = sqlx::query!(
        r#"SELECT a.user_id AS "user_id!", a.total AS "total!", a.entries AS "entries!"
           FROM UNNEST($1::uuid[]) WITH ORDINALITY AS k(id, n)
           CROSS JOIN LATERAL (SELECT user_id, total, entries FROM account_totals a
                               WHERE a.user_id = k.id FOR UPDATE) a
           ORDER BY k.n"#,
        &users[..]
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            let total = Money::from_decimal(r.total)?;
            // A negative count would number the next entries wrongly: refuse the batch.
            let entries = u64::try_from(r.entries).map_err(|_| {
                anyhow::anyhow!("{} has a negative entry count {}", r.user_id, r.entries)
            })?;
            Ok((r.user_id, Running { total, entries }))
        })
        .collect()
}

/// One ledger row about to be written.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub event: EarningEvent,
    pub base: Money,
    pub rate: Decimal,
    pub refund_id: String,
}

/// Writes entries (whose `total` is already the running total) and moves the summaries
/// they add to: report rollups, balances per level, and the locked totals.
pub(super) async fn write_entries(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
    totals: &BTreeMap<Uuid, Running>,
) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    gapless(entries, totals)?;
    step("insert_entries", insert_entries(tx, entries)).await?;
    step("rollups", rollups::add(tx, entries)).await?;
    let touched = step("balances", move_balances(tx, entries)).await?;
    step("totals", move_totals(tx, totals, &touched)).await?;
    crate::metrics_entries(entries.iter().map(|e| e.event.kind));
    Ok(())
}

/// The ledger's invariant, checked before anything is written (a failure leaves the batch
/// uncommitted): each beneficiary's entries take the next positions with no gap, each
/// total is the one before plus the amount, and the last ones are the running total.
fn gapless(entries: &[Entry], totals: &BTreeMap<Uuid, Running>) -> anyhow::Result<()> {
    let mut last: BTreeMap<Uuid, (u64, Money)> = BTreeMap::new();
    for e in entries {
        let ev = &e.event;
        let who = ev.beneficiary_id.as_uuid();
        if let Some((seq, total)) = last.get(&who) {
            anyhow::ensure!(
                ev.seq == seq + 1 && ev.total == *total + ev.amount,
                "ledger invariant: {who}'s entry at {} does not follow {seq} (total {total})",
                ev.seq
            );
        }
        last.insert(who, (ev.seq, ev.total));
    }
    for (who, (seq, total)) in &last {
        let running = totals
            .get(who)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("ledger invariant: no locked total for {who}"))?;
        anyhow::ensure!(
            running.entries == *seq && running.total == *total,
            "ledger invariant: {who}'s last entry ({seq}, {total}) is not the running total"
        );
    }
    Ok(())
}

/// The ledger rows themselves, in one statement.
async fn insert_entries(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
) -> anyhow::Result<()> {
    let col = |f: fn(&Entry) -> Uuid| entries.iter().map(f).collect::<Vec<_>>();
    let ids = col(|e| e.event.earning_id);
    let purchase_ids = col(|e| e.event.purchase_id);
    let beneficiaries = col(|e| e.event.beneficiary_id.as_uuid());
    let legs = col(|e| e.event.leg_user_id.as_uuid());
    let sources = col(|e| e.event.source_user_id.as_uuid());
    let levels: Vec<i16> = entries.iter().map(|e| i16::from(e.event.level)).collect();
    let bases: Vec<Decimal> = entries.iter().map(|e| e.base.as_decimal()).collect();
    let rates: Vec<Decimal> = entries.iter().map(|e| e.rate).collect();
    let amounts: Vec<Decimal> = entries
        .iter()
        .map(|e| e.event.amount.as_decimal())
        .collect();
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| e.event.kind.as_str().to_owned())
        .collect();
    let refund_ids: Vec<String> = entries.iter().map(|e| e.refund_id.clone()).collect();
    let versions: Vec<i32> = entries
        .iter()
        .map(|e| e.event.plan_version as i32)
        .collect();
    let after: Vec<Decimal> = entries.iter().map(|e| e.event.total.as_decimal()).collect();
    let user_seqs: Vec<i64> = entries
        .iter()
        .map(|e| i64::try_from(e.event.seq))
        .collect::<Result<_, _>>()?;
    let created: Vec<DateTime<Utc>> = entries.iter().map(|e| e.event.created_at).collect();
    sqlx::query!(
        "INSERT INTO earnings (id, purchase_id, beneficiary_id, leg_user_id, source_user_id, level, base, rate,
                               amount, kind, refund_id, plan_version, balance_after, created_at, user_seq)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::smallint[],
                              $7::numeric[], $8::numeric[], $9::numeric[], $10::text[], $11::text[], $12::int[],
                              $13::numeric[], $14::timestamptz[], $15::bigint[])",
        &ids,
        &purchase_ids,
        &beneficiaries,
        &legs,
        &sources,
        &levels,
        &bases,
        &rates,
        &amounts,
        &kinds,
        &refund_ids,
        &versions,
        &after,
        &created,
        &user_seqs
    )
    .execute(&mut **tx)
    .await
    .context("inserting earnings")?;
    Ok(())
}

/// Adds the entries to `balances` (grouped per beneficiary and level first); returns the
/// beneficiaries they touched.
async fn move_balances(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[Entry],
) -> anyhow::Result<BTreeSet<Uuid>> {
    let mut by_level: BTreeMap<(Uuid, i16), (Decimal, i64)> = BTreeMap::new();
    let mut touched: BTreeSet<Uuid> = BTreeSet::new();
    for e in entries {
        let slot = by_level
            .entry((e.event.beneficiary_id.as_uuid(), i16::from(e.event.level)))
            .or_default();
        slot.0 += e.event.amount.as_decimal();
        slot.1 += 1;
        touched.insert(e.event.beneficiary_id.as_uuid());
    }
    let (keys, sums): (Vec<_>, Vec<_>) = by_level.into_iter().unzip();
    let (users, lvls): (Vec<Uuid>, Vec<i16>) = keys.into_iter().unzip();
    let (deltas, ns): (Vec<Decimal>, Vec<i64>) = sums.into_iter().unzip();
    sqlx::query!(
        "INSERT INTO balances (user_id, level, total, entries)
         SELECT * FROM UNNEST($1::uuid[], $2::smallint[], $3::numeric[], $4::bigint[])
         ON CONFLICT (user_id, level) DO UPDATE
         SET total = balances.total + EXCLUDED.total, entries = balances.entries + EXCLUDED.entries",
        &users,
        &lvls,
        &deltas,
        &ns
    )
    .execute(&mut **tx)
    .await
    .context("moving balances")?;
    Ok(touched)
}

/// Totals and counts as they stand after the batch (the rows are locked by us;
/// `sql/move_totals.sql`).
async fn move_totals(
    tx: &mut Transaction<'_, Postgres>,
    totals: &BTreeMap<Uuid, Running>,
    touched: &BTreeSet<Uuid>,
) -> anyhow::Result<()> {
    let touched: Vec<(&Uuid, &Running)> = totals
        .iter()
        .filter(|(u, _)| touched.contains(*u))
        .collect();
    let tusers: Vec<Uuid> = touched.iter().map(|(u, _)| **u).collect();
    let finals: Vec<Decimal> = touched.iter().map(|(_, r)| r.total.as_decimal()).collect();
    let tcounts: Vec<i64> = touched
        .iter()
        .map(|(_, r)| i64::try_from(r.entries))
        .collect::<Result<_, _>>()?;
    let moved = sqlx::query_file!("sql/move_totals.sql", &tusers, &finals, &tcounts)
        .execute(&mut **tx)
        .await
        .context("moving totals")?;
    // Every touched total exists and is locked (`gapless` refused a beneficiary without
    // one before anything was written), so each takes the upsert's update path; the count
    // says one row was written per touched total.
    anyhow::ensure!(
        moved.rows_affected() == tusers.len() as u64,
        "ledger invariant: {} of {} locked totals written",
        moved.rows_affected(),
        tusers.len()
    );
    Ok(())
}
