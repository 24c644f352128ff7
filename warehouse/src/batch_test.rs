#![allow(clippy::unwrap_used)]
use super::*;
use schemas::{EntryKind, Money, ShopId, UserId};
use uuid::Uuid;

fn event(id: Uuid) -> EarningEvent {
    let u = UserId(Uuid::now_v7());
    EarningEvent {
        earning_id: id,
        seq: 1,
        purchase_id: Uuid::now_v7(),
        shop_id: ShopId(Uuid::now_v7()),
        beneficiary_id: u,
        source_user_id: u,
        leg_user_id: u,
        level: 1,
        direct: true,
        kind: EntryKind::Earning,
        amount: Money::parse("25").unwrap(),
        total: Money::parse("25").unwrap(),
        plan_version: 1,
        created_at: chrono::Utc::now(),
    }
}

#[test]
fn a_duplicate_delivery_yields_one_row_and_strangers_are_skipped() {
    let subjects = Subjects::new("p");
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (ea, eb) = (event(a), event(b));
    // A batch's array, a replay of part of it in another array, and a legacy single entry.
    let first = serde_json::to_vec(&[&ea, &eb]).unwrap();
    let replayed = serde_json::to_vec(&[&eb]).unwrap();
    let single = serde_json::to_vec(&ea).unwrap();
    let rows = Rows::parse(
        &subjects,
        [
            ("p.ledger.entries", &first[..]),
            ("p.ledger.entries", &replayed[..]),
            ("p.earnings.x", &single[..]),
            ("p.ledger.refunds", &b"{}"[..]),
            ("p.ledger.entries", &b"not json"[..]),
        ],
    );
    let ids: Vec<Uuid> = rows.earnings.iter().map(|row| row.key.id).collect();
    assert_eq!(ids, vec![a, b]);
    assert!(rows.purchases.is_empty());
    assert_eq!(rows.skipped, 2);
}

#[test]
fn a_batch_spanning_many_months_is_inserted_a_few_months_at_a_time() {
    // 120 months, two rows each, shuffled: a shop's purchases dated back ten years.
    let rows: Vec<Row> = (0..240u32)
        .map(|i| {
            let m = (i * 7) % 120;
            Row {
                key: Key::new(chrono::Utc::now(), Uuid::now_v7()),
                month: 200_001 + (m / 12) * 100 + m % 12,
                line: format!("{m}:{i}"),
            }
        })
        .collect();
    let inserts = by_months(rows.iter().collect(), 50);
    assert_eq!(inserts.len(), 3);
    let months = |insert: &Vec<&str>| {
        let m: HashSet<&str> = insert
            .iter()
            .map(|l| l.split(':').next().unwrap())
            .collect();
        m.len()
    };
    assert_eq!(
        inserts.iter().map(months).collect::<Vec<_>>(),
        vec![50, 50, 20]
    );
    let mut lines: Vec<&str> = inserts.concat();
    lines.sort_unstable();
    let mut all: Vec<&str> = rows.iter().map(|r| r.line.as_str()).collect();
    all.sort_unstable();
    assert_eq!(lines, all, "every row once");
    assert_eq!(
        by_months(rows.iter().take(3).collect(), 0).len(),
        3,
        "0 is taken as 1"
    );
}
