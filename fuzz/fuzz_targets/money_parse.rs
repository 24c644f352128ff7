//! `Money` parsing, every public entry point: `Money::parse`, `FromStr`,
//! `Money::parse_non_negative`, serde `Deserialize` (from a JSON string, escapes and all)
//! and `Money::from_decimal`; `Rate`'s `Deserialize` too. Each is compared with a
//! reference reading of the wire form `^-?(0|[1-9]\d*)(\.\d{1,2})?$`, below 10^26 rupees
//! in magnitude (money.rs: sums may be that large), requests at most 1000000000000.00, and
//! whatever parses must print at two places and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use schemas::{Money, MoneyError, Rate};

/// Every `Money` is below this magnitude, in paise (10^26 rupees).
const BOUND_PAISE: i128 = 10i128.pow(28);
/// The largest single amount a request may carry, in paise (1000000000000.00 rupees).
const MAX_AMOUNT_PAISE: i128 = 100_000_000_000_000;

/// What `Money::parse` must answer for `s`, from the grammar alone: the value in paise.
fn reference(s: &str) -> Result<i128, MoneyError> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (whole, fraction) = match rest.find('.') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (whole.len() > 1 && whole.starts_with('0')) {
        return Err(MoneyError::NotANumber);
    }
    if fraction.is_some_and(|f| !digits(f)) {
        return Err(MoneyError::NotANumber);
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > 2 {
        return Err(MoneyError::TooPrecise);
    }
    // 27 digits of rupees are at least 10^26; no overflow below that.
    if whole.len() > 26 {
        return Err(MoneyError::OutOfRange);
    }
    let rupees: i128 = whole.parse().unwrap_or(i128::MAX);
    let paise: i128 = format!("{fraction:0<2}").parse().unwrap_or(0);
    let value = rupees * 100 + paise;
    if value >= BOUND_PAISE {
        return Err(MoneyError::OutOfRange);
    }
    Ok(if negative { -value } else { value })
}

/// The one printed form of an amount in paise: `-`, whole rupees, `.`, two digits.
fn printed(paise: i128) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", paise.abs() / 100, paise.abs() % 100)
}

fn paise_of(m: Money) -> i128 {
    let d = m.as_decimal() * Decimal::ONE_HUNDRED;
    assert!(d.fract().is_zero(), "{m:?} is not a whole number of paise");
    d.mantissa() / 10i128.pow(d.scale())
}

/// What every `Money` holds: scale 2, within the largest amount, printed at two places,
/// and that print parses back to the same value (and as JSON, to the same value).
fn holds(m: Money) {
    assert_eq!(m.as_decimal().scale(), 2, "{m:?} is not at scale 2");
    let p = paise_of(m);
    assert!(p.abs() < BOUND_PAISE, "{m:?} is beyond the bound");
    let shown = m.to_string();
    assert_eq!(shown, printed(p), "{m:?} printed as {shown:?}");
    assert_eq!(Money::parse(&shown), Ok(m), "{shown:?} does not parse back");
    let json = serde_json::to_string(&m).expect("Money serializes");
    assert_eq!(json, format!("\"{shown}\""));
    assert_eq!(serde_json::from_str::<Money>(&json).ok(), Some(m));
    assert_eq!(m.is_negative(), p < 0);
    assert_eq!(m.is_zero(), p == 0);
}

fn check_str(s: &str) {
    let got = Money::parse(s);
    let want = reference(s);
    match (&got, &want) {
        (Ok(m), Ok(p)) => {
            assert_eq!(paise_of(*m), *p, "{s:?} parsed to {m:?}");
            holds(*m);
        }
        _ => assert_eq!(got.clone().map(paise_of), want, "{s:?}"),
    }
    assert_eq!(s.parse::<Money>(), got, "FromStr differs from parse on {s:?}");

    // Requests: the same, nothing with a sign ("-0" included), nothing over the largest
    // single amount.
    let non_negative = Money::parse_non_negative(s);
    match &got {
        Ok(_) if s.starts_with('-') => assert_eq!(non_negative, Err(MoneyError::Negative), "{s:?}"),
        Ok(m) if paise_of(*m) > MAX_AMOUNT_PAISE => {
            assert_eq!(non_negative, Err(MoneyError::TooLarge), "{s:?}")
        }
        _ => assert_eq!(non_negative, got, "{s:?}"),
    }
    if let Ok(m) = &got {
        assert_eq!(m.is_single_amount(), paise_of(*m).abs() <= MAX_AMOUNT_PAISE, "{s:?}");
    }

    // Deserialize from a JSON string holding exactly `s`.
    let from_json = serde_json::from_value::<Money>(serde_json::Value::String(s.to_owned()));
    assert_eq!(from_json.ok(), got.clone().ok(), "Deserialize differs from parse on {s:?}");

    // Rate: in 0..=1, at most six places, and prints back to itself.
    if let Ok(r) = serde_json::from_value::<Rate>(serde_json::Value::String(s.to_owned())) {
        let d = r.as_decimal();
        assert!(d >= Decimal::ZERO && d <= Decimal::ONE, "rate {d} from {s:?}");
        assert!(d.scale() <= 6, "rate {d} from {s:?}");
        let again = serde_json::to_value(r).expect("Rate serializes");
        assert_eq!(serde_json::from_value::<Rate>(again).ok(), Some(r));
    }
}

/// Deserialize straight from the bytes as JSON (escapes, surrogates, whitespace).
fn check_json(data: &[u8]) {
    let text = serde_json::from_slice::<String>(data);
    let money = serde_json::from_slice::<Money>(data);
    match text {
        Ok(t) => assert_eq!(money.ok(), Money::parse(&t).ok(), "JSON {t:?}"),
        Err(_) => assert!(money.is_err(), "a JSON non-string became {money:?}"),
    }
}

/// `from_decimal` (the database's decimals) over any decimal: accepted exactly when it
/// has at most two places (trailing zeros aside) and is below 10^26.
fn check_decimal(data: &[u8]) {
    let Some(b) = data.get(..14) else { return };
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let d = Decimal::from_parts(word(0), word(4), word(8), b[12] & 1 == 1, u32::from(b[13]) % 29);
    let got = Money::from_decimal(d);
    let n = d.normalize();
    if n.scale() > 2 {
        assert_eq!(got, Err(MoneyError::TooPrecise), "{d}");
    } else if n.abs() >= Decimal::from_i128_with_scale(BOUND_PAISE, 2) {
        assert_eq!(got, Err(MoneyError::OutOfRange), "{d}");
    } else {
        let m = got.unwrap_or_else(|e| panic!("{d} refused: {e}"));
        assert_eq!(m.as_decimal(), d, "{d} became {m:?}");
        holds(m);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check_str(s);
    }
    check_json(data);
    check_decimal(data);
});
