//! Stream messages as ClickHouse JSONEachRow lines: ids, amounts, levels and times
//! only (no personal data). Decimals are unquoted numbers at scale 2 and times are
//! `YYYY-MM-DD hh:mm:ss` in UTC, the forms ClickHouse 18.16 parses.
use chrono::{DateTime, Datelike, Timelike, Utc};
use platform::clickhouse_lookup::KeyTable;
use schemas::messages::ProcessedPurchase;
use schemas::{EarningEvent, Money};
use std::fmt::Write as _;
use uuid::Uuid;

pub const EARNING_EVENTS: &str = "earning_events";
pub const PURCHASE_EVENTS: &str = "purchase_events";
pub const USER_EVENTS: &str = "user_events";
/// Where the sink asks which earnings and purchases are stored (schemas/clickhouse/0016, 0019).
pub const EARNING_EVENT_KEYS: KeyTable = KeyTable {
    table: "earning_event_keys",
    time: "created_at",
    id: "event_id",
};
pub const PURCHASE_EVENT_KEYS: KeyTable = KeyTable {
    table: "purchase_event_keys",
    time: "processed_at",
    id: "purchase_id",
};

/// One row of `earning_events`, keyed by the earning id.
pub fn earning(e: &EarningEvent) -> String {
    JsonRow::default()
        .uuid("event_id", e.earning_id)
        .uuid("purchase_id", e.purchase_id)
        .uuid("shop_id", e.shop_id.as_uuid())
        .uuid("beneficiary_id", e.beneficiary_id.as_uuid())
        .uuid("source_user_id", e.source_user_id.as_uuid())
        .uuid("leg_user_id", e.leg_user_id.as_uuid())
        .number("level", e.level)
        .text("kind", e.kind.as_str())
        .money("amount", e.amount)
        .number("plan_version", e.plan_version)
        .time("created_at", e.created_at)
        .finish()
}

/// One row of `purchase_events`, keyed by the purchase id.
pub fn purchase(p: &ProcessedPurchase) -> String {
    JsonRow::default()
        .uuid("purchase_id", p.purchase_id)
        .uuid("shop_id", p.shop_id.as_uuid())
        .uuid("user_id", p.user_id.as_uuid())
        .money("amount", p.amount)
        .money("profit", p.profit)
        .number("qualifying", u8::from(p.qualifying))
        .number("plan_version", p.plan_version)
        .text("status", p.status.as_str())
        .time("occurred_at", p.occurred_at)
        .time("processed_at", p.processed_at)
        .finish()
}

/// One row of `user_events` (a referral-graph change; `referrer_id` null for none).
pub fn user_event(
    seq: u64,
    user_id: Uuid,
    referrer_id: Option<Uuid>,
    kind: &str,
    at: DateTime<Utc>,
) -> String {
    JsonRow::default()
        .uuid("user_id", user_id)
        .nullable_uuid("referrer_id", referrer_id)
        .text("kind", kind)
        .number("seq", seq)
        .time("at", at)
        .finish()
}

/// Builds one JSON object by hand, so a decimal can be written as a bare number. Every
/// value is written straight into the row's one buffer (no string per field, no strftime
/// format parsed per row): the sink formats every entry it stores.
struct JsonRow(String);

/// Enough for an `earning_events` row (about 330 bytes), so a row allocates once.
const ROW_CAPACITY: usize = 384;

impl Default for JsonRow {
    fn default() -> Self {
        JsonRow(String::with_capacity(ROW_CAPACITY))
    }
}

impl JsonRow {
    fn key(mut self, key: &str) -> Self {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        self
    }

    fn uuid(self, key: &str, id: Uuid) -> Self {
        let mut row = self.key(key);
        let mut buf = Uuid::encode_buffer();
        row.0.push('"');
        row.0.push_str(id.hyphenated().encode_lower(&mut buf));
        row.0.push('"');
        row
    }

    fn nullable_uuid(self, key: &str, id: Option<Uuid>) -> Self {
        match id {
            Some(id) => self.uuid(key, id),
            None => {
                let mut row = self.key(key);
                row.0.push_str("null");
                row
            }
        }
    }

    fn number(self, key: &str, n: impl Into<u64>) -> Self {
        let mut row = self.key(key);
        // Writing into a String cannot fail.
        let _ = write!(row.0, "{}", n.into());
        row
    }

    /// `Money` is held at scale 2, so this prints e.g. `25.00` or `-5.10`.
    fn money(self, key: &str, m: Money) -> Self {
        let mut row = self.key(key);
        let _ = write!(row.0, "{}", m.as_decimal());
        row
    }

    fn text(self, key: &str, s: &str) -> Self {
        let mut row = self.key(key);
        // A &str always serializes; the fallback keeps the row valid JSON regardless.
        row.0
            .push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
        row
    }

    /// `"YYYY-MM-DD hh:mm:ss"` in UTC (whole seconds), the form ClickHouse 18.16 parses.
    fn time(self, key: &str, t: DateTime<Utc>) -> Self {
        let mut row = self.key(key);
        let _ = write!(
            row.0,
            "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\"",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        row
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

#[cfg(test)]
#[path = "rows_test.rs"]
mod tests;
