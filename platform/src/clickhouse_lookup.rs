//! Which rows of a batch ClickHouse already holds, asked of a keys table ordered by
//! `(time, id)` (schemas/clickhouse/0016, 0019) and bounded by the batch's seconds, so a
//! lookup reads the granules of those seconds whatever the table's size. Asked of the
//! rows' own tables (ordered by random ids), the same lookup read the whole id column.
//! The ids go as external data, not as SQL literals (docs/performance.md, stop 30).
use crate::clickhouse::{Clickhouse, ClickhouseError, External};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use uuid::Uuid;

/// Ids per lookup: few round trips per batch, each request under a megabyte (37 bytes an
/// id and its newline).
const IDS_PER_LOOKUP: usize = 25_000;
/// The external table a lookup reads its ids from.
const IDS_TABLE: &str = "asked_ids";
/// Widest time range one lookup covers. A batch is seconds of the ledger; a redelivered
/// old row among new ones gets a lookup of its own instead of widening the range to it.
const LOOKUP_SPAN_SECS: i64 = 3_600;

/// A keys table: its name and its time and id columns.
#[derive(Debug, Clone, Copy)]
pub struct KeyTable {
    pub table: &'static str,
    pub time: &'static str,
    pub id: &'static str,
}

/// A row's key: when it was written (the keys table's time column) and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Seconds since the epoch: the column is a `DateTime`, whole seconds.
    pub at: i64,
    pub id: Uuid,
}

impl Key {
    pub fn new(at: DateTime<Utc>, id: Uuid) -> Key {
        Key {
            at: at.timestamp(),
            id,
        }
    }
}

impl Clickhouse {
    /// Which of `keys` are already stored in `keys_table`.
    pub async fn existing_ids(
        &self,
        keys_table: KeyTable,
        keys: &[Key],
    ) -> Result<HashSet<Uuid>, ClickhouseError> {
        let mut found = HashSet::new();
        let table = self.table(keys_table.table);
        for group in lookups(keys) {
            let mut rows = String::with_capacity(group.len() * 37);
            for key in &group {
                rows.push_str(&key.id.to_string());
                rows.push('\n');
            }
            let ids = External {
                name: IDS_TABLE,
                structure: "id UUID",
                rows: &rows,
            };
            let sql = lookup_sql(&table, keys_table, &group);
            let body = self.execute_with_external(&sql, &ids).await?;
            for line in body.lines() {
                let id = line
                    .parse::<Uuid>()
                    .map_err(|_| ClickhouseError::Unexpected(format!("{line:?} is not a UUID")))?;
                found.insert(id);
            }
        }
        Ok(found)
    }
}

/// `keys` in time order, cut into lookups of at most `IDS_PER_LOOKUP` ids spanning at
/// most `LOOKUP_SPAN_SECS`.
pub fn lookups(keys: &[Key]) -> Vec<Vec<Key>> {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let mut groups: Vec<Vec<Key>> = Vec::new();
    for key in sorted {
        match groups.last_mut() {
            Some(group)
                if group.len() < IDS_PER_LOOKUP
                    && group
                        .first()
                        .is_some_and(|first| key.at - first.at <= LOOKUP_SPAN_SECS) =>
            {
                group.push(key)
            }
            _ => groups.push(vec![key]),
        }
    }
    groups
}

/// One lookup: the time range leads, so ClickHouse reads only the granules within it;
/// the ids are the external table `asked_ids`. `table` is `<database>.<table>`; `group`
/// is one of `lookups`, in time order.
pub fn lookup_sql(table: &str, keys: KeyTable, group: &[Key]) -> String {
    let from = group.first().map_or(0, |k| k.at);
    let to = group.last().map_or(0, |k| k.at);
    let (time, id) = (keys.time, keys.id);
    format!(
        "SELECT toString({id}) FROM {table} \
         WHERE {time} >= toDateTime({from}) AND {time} <= toDateTime({to}) \
         AND {id} IN {IDS_TABLE} FORMAT TabSeparated"
    )
}

#[cfg(test)]
#[path = "clickhouse_lookup_test.rs"]
mod tests;
