#![allow(clippy::unwrap_used)]
use super::*;
use chrono::TimeZone;
use schemas::{EntryKind, ShopId, UserId};

#[test]
fn earning_rows_carry_bare_decimals_and_utc_seconds() {
    let id = Uuid::nil();
    let e = EarningEvent {
        seq: 7,
        earning_id: id,
        purchase_id: id,
        shop_id: ShopId(id),
        beneficiary_id: UserId(id),
        source_user_id: UserId(id),
        leg_user_id: UserId(id),
        level: 2,
        direct: false,
        kind: EntryKind::Reversal,
        amount: Money::parse("-5.1").unwrap(),
        total: Money::parse("20").unwrap(),
        plan_version: 3,
        created_at: Utc.with_ymd_and_hms(2024, 3, 1, 23, 59, 59).unwrap()
            + chrono::Duration::microseconds(999_999),
    };
    let line = earning(&e);
    assert!(line.contains("\"amount\":-5.10,"), "{line}");
    let row: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(row["level"], 2);
    assert_eq!(row["kind"], "reversal");
    assert_eq!(row["created_at"], "2024-03-01 23:59:59");
    assert_eq!(row["event_id"], id.to_string());
}

#[test]
fn a_user_without_referrer_has_a_null_referrer() {
    let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
    let row = user_event(7, Uuid::nil(), None, "created", at);
    let v: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert!(v["referrer_id"].is_null());
    assert_eq!(v["seq"], 7);
    assert_eq!(v["at"], "2024-01-02 03:04:05");
}
