use super::{parse_date, parse_instant};

#[test]
fn one_spelling_of_a_day() {
    assert_eq!(parse_date("2026-01-05").unwrap().to_string(), "2026-01-05");
    for bad in [
        "2026-1-5",
        "2026-01-5",
        "26-01-05",
        "+2026-01-05",
        "2026-02-30",
        "2026/01/05",
        "2026-01-05 ",
        " 2026-01-05",
        "２026-01-05",
        "20260-01-05",
        "",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn one_spelling_of_an_instant() {
    for good in [
        "2026-01-05T10:00:00Z",
        "2026-01-05t10:00:00z",
        "2026-01-05T15:30:00+05:30",
        "2026-01-05T10:00:00.123456Z",
    ] {
        assert!(parse_instant(good).is_some(), "{good}");
    }
    assert_eq!(
        parse_instant("2026-01-05T15:30:00+05:30")
            .unwrap()
            .to_rfc3339(),
        "2026-01-05T10:00:00+00:00"
    );
    for bad in [
        "2026-1-5T10:00:00Z",
        "2026-01-05 10:00:00Z",
        "2026-01-05",
        "2026-01-05T10:00Z",
        "2026-01-05T1:00:00Z",
        "2026-01-05T10:00:00",
        "2026-01-05T10:00:00+0530",
        "2026-01-05T24:00:00Z",
        "",
        "2026-01-0",
    ] {
        assert_eq!(parse_instant(bad), None, "{bad}");
    }
}
