use super::*;

#[test]
fn a_burst_is_allowed_then_refused_with_a_wait() {
    let l = RateLimiter::new(1, 3);
    assert!(l.check(b"k").is_ok());
    assert!(l.check(b"k").is_ok());
    assert!(l.check(b"k").is_ok());
    assert_eq!(l.check(b"k"), Err(1));
    assert!(l.check(b"other").is_ok(), "buckets are per credential");
}

#[test]
fn peeking_takes_nothing() {
    let l = RateLimiter::new(1, 1);
    assert!(l.peek(b"k").is_ok());
    assert!(l.peek(b"k").is_ok());
    assert!(l.check(b"k").is_ok());
    assert_eq!(l.peek(b"k"), Err(1));
}

#[test]
fn a_charge_is_admitted_on_one_token_and_its_debt_paid_by_what_follows() {
    let l = RateLimiter::new(10, 20);
    assert!(l.charge(b"k", 15).is_ok());
    assert!(l.charge(b"k", 15).is_ok(), "five tokens left: admitted");
    // Ten below zero at 10 a second: about a second until one token is back.
    assert!(matches!(l.charge(b"k", 1), Err(1..=2)));
    assert!(l.charge(b"other", 20).is_ok(), "buckets are per key");
}
