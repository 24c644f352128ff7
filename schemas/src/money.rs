use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Rupees with paise. Always held at scale 2; never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal string of digits with at most two decimal places, such as \"2000\" or \"2000.50\" (no sign, spaces, separators, exponent or leading zeros)")]
    NotANumber,
    #[error("has more than two decimal places (paise are the smallest unit)")]
    TooPrecise,
    #[error("is larger than the largest amount accepted, 1000000000000.00")]
    TooLarge,
    #[error("is beyond any sum the ledger holds (10^26 rupees)")]
    OutOfRange,
    #[error("must not be negative")]
    Negative,
}

/// Largest single amount a purchase or refund may carry, from a request or the stream.
const MAX_AMOUNT_RUPEES: i64 = 1_000_000_000_000;
/// Largest magnitude any `Money` holds. Sums (a beneficiary's total and balance, a shop's
/// day in the warehouse) outgrow the largest single amount, and reading one back must
/// never fail: that once stalled every payout of a beneficiary whose total passed 10^12.
/// 10^26 leaves rust_decimal's 96-bit mantissa room to add such sums.
const MAX_RUPEES_POW10: u32 = 26;

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses the wire form `^-?(0|[1-9]\d*)(\.\d{1,2})?$`, such as "2000", "12.5" or
    /// "-6.25": nothing else ("1_000", "+10", ".5", "10.", "007", " 1", "1e3" are refused).
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let whole_ok = all_digits(whole) && (whole == "0" || !whole.starts_with('0'));
        if !whole_ok || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(MoneyError::NotANumber);
        }
        if fraction.is_some_and(|f| f.len() > 2) {
            return Err(MoneyError::TooPrecise);
        }
        let d = Decimal::from_str_exact(s).map_err(|_| MoneyError::OutOfRange)?;
        Self::from_decimal(d)
    }

    /// Accepts a decimal that already exists (from the database); same rules as `parse`.
    pub fn from_decimal(d: Decimal) -> Result<Self, MoneyError> {
        let d = d.normalize();
        if d.scale() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        if d.abs() >= Decimal::from_i128_with_scale(10i128.pow(MAX_RUPEES_POW10), 0) {
            return Err(MoneyError::OutOfRange);
        }
        let mut d = d;
        d.rescale(2);
        Ok(Money(d))
    }

    /// What requests carry: like `parse`, without the sign ("-0" is refused too), and at
    /// most the largest single amount.
    pub fn parse_non_negative(s: &str) -> Result<Self, MoneyError> {
        let m = Self::parse(s)?;
        if s.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        if !m.is_single_amount() {
            return Err(MoneyError::TooLarge);
        }
        Ok(m)
    }

    /// Whether a purchase or refund may carry this amount (at most 1000000000000.00 in
    /// magnitude); sums may be larger.
    pub fn is_single_amount(self) -> bool {
        self.0.abs() <= Decimal::from(MAX_AMOUNT_RUPEES)
    }

    pub fn from_paise(paise: i64) -> Self {
        Money(Decimal::new(paise, 2))
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `self × rate`, rounded half to even at the paisa: the one place a share is rounded.
    pub fn share(self, rate: Rate) -> Money {
        Money::round(self.0 * rate.as_decimal())
    }

    /// `self × numerator / denominator`, rounded half to even at the paisa (pro-rata refunds).
    /// A zero denominator yields zero.
    pub fn pro_rata(self, numerator: Money, denominator: Money) -> Money {
        if denominator.is_zero() {
            return Money::ZERO;
        }
        Money::round(self.0 * numerator.0 / denominator.0)
    }

    fn round(d: Decimal) -> Money {
        let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
        r.rescale(2);
        Money(r)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub fn negated(self) -> Money {
        Money(-self.0)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Money::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^-?(0|[1-9]\d*)(\.\d{1,2})?$"))
            .description(Some(
                "Rupees as a decimal string with at most two decimal places",
            ))
            .examples([serde_json::json!("2000.00")])
            .into()
    }
}
impl utoipa::ToSchema for Money {}

/// A share of a base, between 0 and 1 inclusive (0.05 is 5%). At most six decimal places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    pub fn new(d: Decimal) -> Result<Self, String> {
        let d = d.normalize();
        if d.is_sign_negative() && !d.is_zero() || d > Decimal::ONE {
            return Err(format!("rate {d} is outside 0..=1"));
        }
        if d.scale() > 6 {
            return Err(format!("rate {d} has more than six decimal places"));
        }
        Ok(Rate(d))
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let dec = Decimal::from_str_exact(s.trim()).map_err(serde::de::Error::custom)?;
        Rate::new(dec).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Rate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A share between 0 and 1 as a decimal string (\"0.05\" is 5%)",
            ))
            .examples([serde_json::json!("0.05")])
            .into()
    }
}
impl utoipa::ToSchema for Rate {}

#[cfg(test)]
#[path = "money_test.rs"]
mod tests;
