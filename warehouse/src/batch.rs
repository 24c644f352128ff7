//! One batch of EARNINGS stream messages as warehouse rows, and writing them once: ids
//! already in ClickHouse are left out, because the rollup views count every insert.
use crate::rows::{self, EARNING_EVENTS, EARNING_EVENT_KEYS, PURCHASE_EVENTS, PURCHASE_EVENT_KEYS};
use async_nats::jetstream::Message;
use platform::clickhouse::{Clickhouse, ClickhouseError};
use platform::clickhouse_lookup::{Key, KeyTable};
use platform::metrics::metrics;
use platform::nats::Subjects;
use schemas::messages::ProcessedPurchase;
use schemas::EarningEvent;
use std::collections::HashSet;

/// Rows with their keys, each id at most once (a stream may deliver a message twice).
#[derive(Debug, Default)]
pub struct Rows {
    pub earnings: Vec<(Key, String)>,
    pub purchases: Vec<(Key, String)>,
    /// Messages that carry nothing for the warehouse (unknown subject, unparsable).
    pub skipped: usize,
}

/// How many rows ClickHouse accepted, and how many it already had.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: usize,
    pub already_stored: usize,
}

impl Rows {
    pub fn from_messages(subjects: &Subjects, messages: &[Message]) -> Rows {
        Rows::parse(
            subjects,
            messages
                .iter()
                .map(|m| (m.subject.as_str(), &m.payload[..])),
        )
    }

    /// `(subject, payload)` pairs as rows.
    pub fn parse<'a>(
        subjects: &Subjects,
        messages: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Rows {
        let mut rows = Rows::default();
        let (mut seen_earnings, mut seen_purchases) = (HashSet::new(), HashSet::new());
        for (subject, payload) in messages {
            let parsed = match subjects.tail(subject) {
                // A processor batch's entries, as one or a few arrays.
                Some(("ledger", "entries")) => serde_json::from_slice::<Vec<EarningEvent>>(payload)
                    .map(|entries| {
                        for e in entries {
                            if seen_earnings.insert(e.earning_id) {
                                rows.earnings.push((earning_key(&e), rows::earning(&e)));
                            }
                        }
                    }),
                // One entry per message, as releases before `ledger.entries` published them.
                Some(("earnings", _)) => serde_json::from_slice::<EarningEvent>(payload).map(|e| {
                    if seen_earnings.insert(e.earning_id) {
                        rows.earnings.push((earning_key(&e), rows::earning(&e)));
                    }
                }),
                // The processor publishes each batch's settled purchases as one array.
                Some(("ledger", "purchases")) => {
                    serde_json::from_slice::<Vec<ProcessedPurchase>>(payload).map(|batch| {
                        for p in batch {
                            if seen_purchases.insert(p.purchase_id) {
                                rows.purchases.push((
                                    Key::new(p.processed_at, p.purchase_id),
                                    rows::purchase(&p),
                                ));
                            }
                        }
                    })
                }
                _ => {
                    rows.skipped += 1;
                    continue;
                }
            };
            if let Err(e) = parsed {
                // The processor wrote it, so this is a contract break; skip it loudly
                // rather than stall the warehouse behind it.
                tracing::error!(subject, error = %e, "unparsable message skipped by the warehouse");
                rows.skipped += 1;
            }
        }
        rows
    }

    pub fn is_empty(&self) -> bool {
        self.earnings.is_empty() && self.purchases.is_empty()
    }

    /// Inserts the rows ClickHouse does not hold yet. Safe to repeat after any failure:
    /// a repeat finds what an earlier attempt stored and inserts only the rest.
    pub async fn write(&self, ch: &Clickhouse) -> Result<Written, ClickhouseError> {
        let e = insert_new(ch, EARNING_EVENTS, EARNING_EVENT_KEYS, &self.earnings).await?;
        let p = insert_new(ch, PURCHASE_EVENTS, PURCHASE_EVENT_KEYS, &self.purchases).await?;
        Ok(Written {
            inserted: e.inserted + p.inserted,
            already_stored: e.already_stored + p.already_stored,
        })
    }
}

async fn insert_new(
    ch: &Clickhouse,
    table: &'static str,
    keys: KeyTable,
    rows: &[(Key, String)],
) -> Result<Written, ClickhouseError> {
    if rows.is_empty() {
        return Ok(Written::default());
    }
    let asked: Vec<Key> = rows.iter().map(|(key, _)| *key).collect();
    let stored = ch.existing_ids(keys, &asked).await?;
    let fresh: Vec<&str> = rows
        .iter()
        .filter(|(key, _)| !stored.contains(&key.id))
        .map(|(_, row)| row.as_str())
        .collect();
    ch.insert(table, &fresh).await?;
    metrics()
        .warehouse_rows
        .with_label_values(&[table])
        .inc_by(fresh.len() as u64);
    Ok(Written {
        inserted: fresh.len(),
        already_stored: rows.len() - fresh.len(),
    })
}

fn earning_key(e: &EarningEvent) -> Key {
    Key::new(e.created_at, e.earning_id)
}

#[cfg(test)]
#[path = "batch_test.rs"]
mod tests;
