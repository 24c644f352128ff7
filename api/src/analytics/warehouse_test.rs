use super::error_code;

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
