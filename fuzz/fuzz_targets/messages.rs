//! The processor's decoding of what the PURCHASES stream carries, on arbitrary bytes.
//!
//! `processor::intake::parse` takes JetStream messages, so this replays its decode path
//! on the payload (the group decoding is `schemas::messages::decode_group` itself): on a `purchases` subject a
//! payload whose first non-blank byte is `[` is a group (a JSON array of raw values, each
//! item decoded on its own by intake's `parse_group`), anything else one
//! `PurchaseMessage`; on a `refunds` subject one `RefundMessage` (all `serde_json`, the
//! types in `schemas::messages`). Checked: no panic; what decodes holds the types'
//! invariants; `PurchaseMessage::check` agrees with its rules; an item's raw bytes (what a
//! dead letter keeps) decode to the item; re-encoding decodes to the same value.
#![no_main]

use chrono::{Datelike, Utc};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use schemas::messages::{DeadLetterReason, PurchaseMessage, RefundMessage};
use schemas::{Money, CURRENCY};

/// The decoding the processor's `intake::parse_group` calls, each item a purchase.
use schemas::messages::decode_group as parse_group;

/// `Money`'s own invariants. A message may carry more than the largest single amount
/// (10^12): `Money` holds sums up to 10^26, and the single-amount bound is the checks'
/// (`PurchaseMessage::check`, agreed with below; the processor's refund check).
fn money_holds(m: Money) {
    let d = m.as_decimal();
    assert_eq!(d.scale(), 2, "{m:?}");
    assert!(d.abs() < Decimal::from_i128_with_scale(10i128.pow(26), 0), "{m:?}");
    assert_eq!(Money::parse(&m.to_string()), Ok(m));
}

fn id_holds(s: &str) {
    assert!(!s.is_empty() && s.len() <= 128, "id {s:?}");
    assert!(
        s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)),
        "id {s:?}"
    );
}

fn round_trips<T>(v: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = serde_json::to_vec(v).expect("a decoded message encodes");
    match serde_json::from_slice::<T>(&bytes) {
        Ok(back) => assert_eq!(&back, v, "re-encoded as {}", String::from_utf8_lossy(&bytes)),
        Err(e) => panic!(
            "{v:?} re-encoded as {} does not decode: {e}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

fn purchase_holds(p: &PurchaseMessage) {
    money_holds(p.amount);
    money_holds(p.profit);
    id_holds(p.order_id.as_str());
    let want = if p.currency != CURRENCY {
        Err(DeadLetterReason::UnknownCurrency)
    } else if p.amount <= Money::ZERO || p.profit.is_negative() || p.profit > p.amount {
        Err(DeadLetterReason::InvalidAmounts)
    } else if p.occurred_at.year() < 2000 || p.occurred_at > Utc::now() + chrono::Duration::days(1) {
        Err(DeadLetterReason::InvalidTime)
    } else {
        Ok(())
    };
    let got = p.check();
    // The clock moves between the two reads; only a time right at the edge may differ.
    if got != want && !matches!(want, Err(DeadLetterReason::InvalidTime) | Ok(())) {
        panic!("check() = {got:?}, the rules say {want:?} for {p:?}");
    }
    if got.is_ok() {
        assert!(p.amount > Money::ZERO && !p.profit.is_negative() && p.profit <= p.amount);
        assert_eq!(p.currency, CURRENCY);
    }
    round_trips(p);
}

fn refund_holds(r: &RefundMessage) {
    money_holds(r.amount);
    id_holds(r.order_id.as_str());
    id_holds(r.refund_id.as_str());
    round_trips(r);
}

fuzz_target!(|data: &[u8]| {
    // A purchases subject.
    if data.trim_ascii_start().starts_with(b"[") {
        if let Ok(items) = parse_group(data) {
            let mut good = Vec::new();
            for (p, bytes) in items.into_iter().flatten() {
                purchase_holds(&p);
                // The item's own bytes (kept in a dead letter, replayed later) decode alike.
                let alone = serde_json::from_slice::<PurchaseMessage>(&bytes).ok();
                assert_eq!(alone.as_ref(), Some(&p), "item bytes {:?}", String::from_utf8_lossy(&bytes));
                good.push(p);
            }
            // The good items, re-encoded as a group, come back as the same items.
            let again = serde_json::to_vec(&good).expect("a group encodes");
            let back: Vec<PurchaseMessage> = parse_group(&again)
                .expect("a re-encoded group is an array")
                .into_iter()
                .map(|i| i.map(|(p, _)| p).expect("a re-encoded item decodes"))
                .collect();
            assert_eq!(back, good);
        }
        // An array that decodes whole decodes item by item to the same purchases.
        if let Ok(whole) = serde_json::from_slice::<Vec<PurchaseMessage>>(data) {
            let items: Vec<PurchaseMessage> = parse_group(data)
                .expect("an array")
                .into_iter()
                .map(|i| i.map(|(p, _)| p).expect("each item of a good array decodes"))
                .collect();
            assert_eq!(items, whole);
        }
    } else if let Ok(p) = serde_json::from_slice::<PurchaseMessage>(data) {
        purchase_holds(&p);
    }
    // A refunds subject.
    if let Ok(r) = serde_json::from_slice::<RefundMessage>(data) {
        refund_holds(&r);
    }
});
