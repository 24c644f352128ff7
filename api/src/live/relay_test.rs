use super::Stall;

#[test]
fn a_message_stored_just_before_a_check_is_given_a_period_to_arrive() {
    let mut stall = Stall::default();
    assert_eq!(stall.check(0, 1), None, "stored a moment ago, on its way");
    assert_eq!(stall.check(1, 1), None, "it arrived");
    assert_eq!(stall.check(1, 1), None, "nothing new: quiet, not stalled");
}

#[test]
fn a_consumer_that_does_not_reach_what_was_stored_a_check_ago_has_stalled() {
    let mut stall = Stall::default();
    assert_eq!(stall.check(4, 7), None);
    let reason = stall.check(5, 9).expect("7 was stored a whole period ago");
    assert!(reason.contains("stalled at 5 while 7"), "{reason}");
}

#[test]
fn progress_past_the_earlier_mark_is_judged_again_from_the_new_one() {
    let mut stall = Stall::default();
    assert_eq!(stall.check(4, 7), None);
    assert_eq!(stall.check(7, 9), None, "reached 7; 9 gets its own period");
    assert!(stall.check(8, 9).is_some());
}
