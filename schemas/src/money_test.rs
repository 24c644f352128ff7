use super::*;

#[test]
fn parses_and_formats_at_two_places() {
    assert_eq!(Money::parse("12.5").unwrap().to_string(), "12.50");
    assert_eq!(Money::parse("1000").unwrap().to_string(), "1000.00");
    assert_eq!(Money::parse("0.10").unwrap().to_string(), "0.10");
    assert_eq!(Money::parse("1.001"), Err(MoneyError::TooPrecise));
    assert_eq!(Money::parse("abc"), Err(MoneyError::NotANumber));
    assert_eq!(Money::parse("1e3"), Err(MoneyError::NotANumber));
    assert_eq!(Money::parse_non_negative("-1"), Err(MoneyError::Negative));
    assert_eq!(Money::parse("-6.25").unwrap().to_string(), "-6.25");
    assert_eq!(Money::parse("0").unwrap().to_string(), "0.00");
}

#[test]
fn only_the_wire_form_parses() {
    for s in [
        "1_000", "+10.00", ".5", "10.", "00010.00", "01", " 10.00", "10.00 ", "\t1", "1 000",
        "1,000.00", "NaN", "inf", "", "-", "--1", "1.2.3", "1e3", "0x10", "१०", "10.0a",
    ] {
        assert_eq!(Money::parse(s), Err(MoneyError::NotANumber), "{s:?}");
    }
    assert_eq!(Money::parse("1.500"), Err(MoneyError::TooPrecise));
    assert_eq!(
        Money::parse("99999999999999999999999999999999"),
        Err(MoneyError::OutOfRange)
    );
    assert_eq!(
        Money::parse("100000000000000000000000000"),
        Err(MoneyError::OutOfRange)
    );
    // A sum may pass the largest single amount; a request may not.
    let sum = "99999999999999999999999999.99";
    assert_eq!(Money::parse(sum).unwrap().to_string(), sum);
    assert_eq!(
        Money::parse("-1000000000000.01").unwrap().to_string(),
        "-1000000000000.01"
    );
    assert_eq!(
        Money::parse_non_negative("1000000000000.01"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_non_negative("1000000000000.00")
            .unwrap()
            .to_string(),
        "1000000000000.00"
    );
    for s in ["-1", "-0", "-0.00"] {
        assert_eq!(
            Money::parse_non_negative(s),
            Err(MoneyError::Negative),
            "{s:?}"
        );
    }
    for (s, shown) in [
        ("0.5", "0.50"),
        ("10.0", "10.00"),
        ("10.00", "10.00"),
        ("7", "7.00"),
    ] {
        assert_eq!(Money::parse_non_negative(s).unwrap().to_string(), shown);
    }
}

proptest::proptest! {
    /// Whatever Money prints, it parses back to itself.
    #[test]
    fn printed_amounts_parse_back(paise in -100_000_000_000_000i64..100_000_000_000_000i64) {
        let m = Money::from_paise(paise);
        proptest::prop_assert_eq!(Money::parse(&m.to_string()), Ok(m));
    }
}

#[test]
fn share_rounds_half_to_even_at_the_paisa() {
    let five = Rate::new(Decimal::new(5, 2)).unwrap();
    assert_eq!(
        Money::parse("500.00").unwrap().share(five).to_string(),
        "25.00"
    );
    // 0.50 × 5% = 0.025 → 0.02 (even); 0.70 × 5% = 0.035 → 0.04 (even)
    assert_eq!(
        Money::parse("0.50").unwrap().share(five).to_string(),
        "0.02"
    );
    assert_eq!(
        Money::parse("0.70").unwrap().share(five).to_string(),
        "0.04"
    );
}

#[test]
fn pro_rata_of_the_whole_is_the_whole() {
    let e = Money::parse("33.33").unwrap();
    let a = Money::parse("999.99").unwrap();
    assert_eq!(e.pro_rata(a, a), e);
    assert_eq!(e.pro_rata(Money::ZERO, a), Money::ZERO);
}
