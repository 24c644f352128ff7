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
