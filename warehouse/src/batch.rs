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
    pub earnings: Vec<Row>,
    pub purchases: Vec<Row>,
    /// Messages that carry nothing for the warehouse (unknown subject, unparsable).
    pub skipped: usize,
}

/// One JSONEachRow line, its key, and the month (`YYYYMM`) of the table's partition it
/// goes to.
#[derive(Debug)]
pub struct Row {
    pub key: Key,
    pub month: u32,
    pub line: String,
}

impl Row {
    fn earning(e: &EarningEvent) -> Row {
        let key = Key::new(e.created_at, e.earning_id);
        Row {
            key,
            month: month(e.created_at),
            line: rows::earning(e),
        }
    }

    fn purchase(p: &ProcessedPurchase) -> Row {
        let key = Key::new(p.processed_at, p.purchase_id);
        Row {
            key,
            month: month(p.occurred_at),
            line: rows::purchase(p),
        }
    }
}

fn month(t: chrono::DateTime<chrono::Utc>) -> u32 {
    use chrono::Datelike;
    u32::try_from(t.year()).unwrap_or(0) * 100 + t.month()
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
                                rows.earnings.push(Row::earning(&e));
                            }
                        }
                    }),
                // One entry per message, as releases before `ledger.entries` published them.
                Some(("earnings", _)) => serde_json::from_slice::<EarningEvent>(payload).map(|e| {
                    if seen_earnings.insert(e.earning_id) {
                        rows.earnings.push(Row::earning(&e));
                    }
                }),
                // The processor publishes each batch's settled purchases as one array.
                Some(("ledger", "purchases")) => {
                    serde_json::from_slice::<Vec<ProcessedPurchase>>(payload).map(|batch| {
                        for p in batch {
                            if seen_purchases.insert(p.purchase_id) {
                                rows.purchases.push(Row::purchase(&p));
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

    /// Entries and settled purchases read from the ledger (`crate::backfill`) as rows.
    pub fn from_ledger(entries: &[EarningEvent], purchases: &[ProcessedPurchase]) -> Rows {
        Rows {
            earnings: entries.iter().map(Row::earning).collect(),
            purchases: purchases.iter().map(Row::purchase).collect(),
            skipped: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.earnings.is_empty() && self.purchases.is_empty()
    }

    /// Inserts the rows ClickHouse does not hold yet, each insert spanning at most
    /// `months` partitions. Safe to repeat after any failure: a repeat finds what an
    /// earlier attempt stored and inserts only the rest.
    pub async fn write(&self, ch: &Clickhouse, months: usize) -> Result<Written, ClickhouseError> {
        let (earnings, purchases) = (&self.earnings, &self.purchases);
        let e = insert_new(ch, EARNING_EVENTS, EARNING_EVENT_KEYS, earnings, months).await?;
        let p = insert_new(ch, PURCHASE_EVENTS, PURCHASE_EVENT_KEYS, purchases, months).await?;
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
    rows: &[Row],
    months: usize,
) -> Result<Written, ClickhouseError> {
    if rows.is_empty() {
        return Ok(Written::default());
    }
    let asked: Vec<Key> = rows.iter().map(|row| row.key).collect();
    let stored = ch.existing_ids(keys, &asked).await?;
    let fresh: Vec<&Row> = rows
        .iter()
        .filter(|row| !stored.contains(&row.key.id))
        .collect();
    let inserted = fresh.len();
    for insert in by_months(fresh, months) {
        ch.insert(table, &insert).await?;
    }
    metrics()
        .warehouse_rows
        .with_label_values(&[table])
        .inc_by(inserted as u64);
    Ok(Written {
        inserted,
        already_stored: rows.len() - inserted,
    })
}

/// The rows' lines in inserts of at most `months` distinct months each (at least one),
/// in month order.
fn by_months(mut rows: Vec<&Row>, months: usize) -> Vec<Vec<&str>> {
    rows.sort_by_key(|row| row.month);
    let mut inserts: Vec<Vec<&str>> = Vec::new();
    let (mut current, mut seen, mut last) = (Vec::new(), 0usize, None);
    for row in rows {
        if last != Some(row.month) {
            if seen == months.max(1) {
                inserts.push(std::mem::take(&mut current));
                seen = 0;
            }
            seen += 1;
            last = Some(row.month);
        }
        current.push(row.line.as_str());
    }
    if !current.is_empty() {
        inserts.push(current);
    }
    inserts
}

#[cfg(test)]
#[path = "batch_test.rs"]
mod tests;
