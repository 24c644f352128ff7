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
    assert_eq!(Money::parse("1.500").unwrap().to_string(), "1.50");
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
