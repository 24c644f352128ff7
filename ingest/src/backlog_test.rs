use super::*;

fn ack(sequence: u64, duplicate: bool) -> PublishAck {
    serde_json::from_value(serde_json::json!({
        "stream": "PURCHASES", "seq": sequence, "duplicate": duplicate
    }))
    .unwrap()
}

const ROOMY: u64 = u64::MAX;

fn held(first_sequence: u64, bytes: u64) -> Held {
    Held {
        first_sequence,
        bytes,
    }
}

#[test]
fn a_shop_past_its_share_waits_while_another_is_admitted() {
    let backlog = Backlog::new(1_000);
    let (greedy, other) = (ShopId::new(), ShopId::new());
    backlog.stored(greedy, &ack(1, false), 600);
    assert!(backlog.admit(greedy).is_ok(), "600 of 1,000");
    backlog.stored(greedy, &ack(2, false), 400);
    assert!(backlog.admit(greedy).is_err(), "1,000 of 1,000");
    assert!(backlog.admit(other).is_ok(), "another shop holds nothing");
    backlog.stored(other, &ack(3, false), 10);
    assert!(backlog.admit(other).is_ok());
}

#[test]
fn what_the_stream_no_longer_holds_stops_counting() {
    let backlog = Backlog::new(1_000);
    let greedy = ShopId::new();
    backlog.stored(greedy, &ack(7, false), 600);
    backlog.stored(greedy, &ack(9, false), 600);
    assert!(backlog.admit(greedy).is_err());
    backlog.advance(held(8, ROOMY));
    assert!(backlog.admit(greedy).is_ok(), "only sequence 9 is held");
    backlog.stored(greedy, &ack(10, false), 300);
    assert!(backlog.admit(greedy).is_ok(), "900 of 1,000");
    backlog.advance(held(11, ROOMY));
    assert!(backlog.admit(greedy).is_ok());
    assert!(
        backlog.counted().by_shop.is_empty(),
        "a drained shop is forgotten"
    );
    assert_eq!(backlog.counted().total, 0);
}

/// One message never settled keeps the first sequence where it is; what the stream holds
/// in all still bounds what is counted, the oldest going first.
#[test]
fn a_message_never_settled_does_not_keep_everything_after_it_counted() {
    let backlog = Backlog::new(1_000);
    let (stuck, greedy) = (ShopId::new(), ShopId::new());
    backlog.stored(stuck, &ack(1, false), 100);
    for sequence in 2..12 {
        backlog.stored(greedy, &ack(sequence, false), 100);
    }
    assert!(backlog.admit(greedy).is_err(), "1,000 of 1,000");
    // The stream holds sequence 1 and the last four: 500 bytes.
    backlog.advance(held(1, 500));
    assert!(
        backlog.admit(greedy).is_ok(),
        "the oldest counted went first"
    );
    assert_eq!(backlog.counted().total, 500);
}

#[test]
fn a_duplicate_the_stream_had_stored_is_counted_once() {
    let backlog = Backlog::new(1_000);
    let retrying = ShopId::new();
    backlog.stored(retrying, &ack(4, false), 600);
    backlog.stored(retrying, &ack(4, true), 600);
    assert!(backlog.admit(retrying).is_ok(), "600 of 1,000, not 1,200");
}
