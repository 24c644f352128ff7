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

#[test]
fn reads_the_error_code_of_old_and_new_servers() {
    assert_eq!(
        error_code("Code: 81, e.displayText() = DB::Exception: Database x doesn't exist"),
        Some(81)
    );
    assert_eq!(
        error_code("Code: 60. DB::Exception: Table x.y does not exist. (UNKNOWN_TABLE)"),
        Some(60)
    );
    assert_eq!(error_code("Bad request"), None);
}
