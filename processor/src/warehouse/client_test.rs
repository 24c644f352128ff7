use super::*;

#[test]
fn database_names_are_plain_identifiers() {
    assert!(is_identifier("referral"));
    assert!(is_identifier("referral_test_0a1b"));
    assert!(!is_identifier(""));
    assert!(!is_identifier("1abc"));
    assert!(!is_identifier("referral; DROP TABLE x"));
    assert!(!is_identifier("a.b"));
}
