#![allow(clippy::unwrap_used)]
use super::*;
use schemas::{EntryKind, Money, ShopId, UserId};

fn event(id: Uuid) -> Vec<u8> {
    let u = UserId(Uuid::now_v7());
    serde_json::to_vec(&EarningEvent {
        earning_id: id,
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
    })
    .unwrap()
}

#[test]
fn a_duplicate_delivery_yields_one_row_and_strangers_are_skipped() {
    let subjects = Subjects::new("p");
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (ea, eb) = (event(a), event(b));
    let rows = Rows::parse(
        &subjects,
        [
            ("p.earnings.x", &ea[..]),
            ("p.earnings.x", &eb[..]),
            ("p.earnings.x", &ea[..]),
            ("p.ledger.refunds", &b"{}"[..]),
            ("p.earnings.x", &b"not json"[..]),
        ],
    );
    let ids: Vec<Uuid> = rows.earnings.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![a, b]);
    assert!(rows.purchases.is_empty());
    assert_eq!(rows.skipped, 2);
}
