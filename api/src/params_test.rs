use super::*;

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> &'static str {
    match r {
        Err(ApiError::Invalid(code, _)) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn last_event_id_is_read_from_one_header_only() {
    use axum::http::{HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    assert_eq!(last_event_id_header(&headers).unwrap(), None);
    headers.append("last-event-id", HeaderValue::from_static("5"));
    assert_eq!(last_event_id_header(&headers).unwrap(), Some(5));
    headers.append("Last-Event-ID", HeaderValue::from_static("x"));
    assert_eq!(
        code(last_event_id_header(&headers)),
        "invalid_last_event_id"
    );
    let mut same = HeaderMap::new();
    same.append("last-event-id", HeaderValue::from_static("5"));
    same.append("last-event-id", HeaderValue::from_static("5"));
    assert_eq!(code(last_event_id_header(&same)), "invalid_last_event_id");
}

#[test]
fn event_ids_and_cursors_are_canonical_integers() {
    assert_eq!(last_event_id(None).unwrap(), None);
    assert_eq!(last_event_id(Some(b"0")).unwrap(), Some(0));
    assert_eq!(last_event_id(Some(b"41")).unwrap(), Some(41));
    let max = u64::MAX.to_string();
    assert_eq!(last_event_id(Some(max.as_bytes())).unwrap(), Some(u64::MAX));
    for bad in [
        &b""[..],
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"01",
        b"1.0",
        b"abc",
        b"18446744073709551616",
        b"\xff",
    ] {
        assert_eq!(
            code(last_event_id(Some(bad))),
            "invalid_last_event_id",
            "{bad:?}"
        );
    }
    assert_eq!(cursor(Some("1234")).unwrap(), Some(1234));
    for bad in ["-1", "0", "+5", "zzz", "9223372036854775808", ""] {
        assert_eq!(code(cursor(Some(bad))), "invalid_cursor", "{bad:?}");
    }
}

#[test]
fn limits_levels_and_ranges_have_one_rule_each() {
    let reports = ReportsConfig {
        default_page_size: 5,
        max_page_size: 10,
        ..ReportsConfig::default()
    };
    assert_eq!(page_limit(None, &reports).unwrap(), 5);
    assert_eq!(page_limit(Some(10), &reports).unwrap(), 10);
    for bad in [-1, 0, 11] {
        assert_eq!(code(page_limit(Some(bad), &reports)), "invalid_limit");
    }
    assert_eq!(
        tree_depth(None, &reports).unwrap(),
        reports.default_tree_depth
    );
    assert_eq!(tree_depth(Some(8), &reports).unwrap(), 8);
    for bad in [-1, 0, 9, 256, i32::MAX] {
        assert_eq!(
            code(tree_depth(Some(bad), &reports)),
            "invalid_depth",
            "{bad}"
        );
    }
    assert_eq!(level(Some(1)).unwrap(), Some(1));
    for bad in [-1, 0, 17, i64::MAX] {
        assert_eq!(code(level(Some(bad))), "invalid_level", "{bad}");
    }
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert_eq!(code(ordered(Some(&2), Some(&1))), "invalid_range");
    assert!(ordered(Some(&1), Some(&1)).is_ok());
    assert_eq!(code(days(Some(d("1969-12-31")), None)), "invalid_range");
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    for (from, to) in [
        (Some(t("-4714-01-01T00:00:00Z")), None),
        (None, Some(t("-262143-01-01T00:00:00Z"))),
        (Some(t("1969-12-31T23:59:59Z")), None),
        (None, Some(t("2106-01-01T00:00:00Z"))),
        (
            Some(t("2026-02-01T00:00:00Z")),
            Some(t("2026-01-01T00:00:00Z")),
        ),
    ] {
        assert_eq!(code(instants(from, to)), "invalid_range", "{from:?} {to:?}");
    }
    assert!(instants(
        Some(t("1970-01-01T00:00:00Z")),
        Some(t("2105-12-31T23:59:59Z"))
    )
    .is_ok());
    assert_eq!(
        code(series(Some(d("2026-02-01")), Some(d("2026-01-01")))),
        "invalid_range"
    );
    assert_eq!(
        code(series(Some(d("2024-12-31")), Some(d("2026-01-01")))),
        "invalid_range"
    );
    assert_eq!(
        series(None, Some(d("2026-01-30"))).unwrap(),
        (d("2026-01-01"), d("2026-01-30"))
    );
}
