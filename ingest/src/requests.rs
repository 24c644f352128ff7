//! What shops send, and the one place it is judged. Amounts stay as sent until judged
//! here, so a bad one is refused with its own field's code (and, in a batch, on its
//! own); the idempotency hash is taken over what a request means, not how it was spelled.
use crate::error::IngestError;
use chrono::{DateTime, SubsecRound, Utc};
use schemas::{Money, OrderId, RefundId, UserId, CURRENCY};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// An amount as sent: the text of a JSON string, or `None` for any other JSON value.
#[derive(Debug, Clone)]
pub struct AmountText(Option<String>);

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AmountText(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        }))
    }
}

/// In the API description: rupees as a decimal string with no sign (responses may carry
/// negative amounts, reversals; a request never does).
impl utoipa::PartialSchema for AmountText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^(0|[1-9]\d*)(\.\d{1,2})?$"))
            .description(Some(
                "Rupees as a decimal string with at most two decimal places, no sign",
            ))
            .examples([serde_json::json!("2000.00")])
            .into()
    }
}

impl utoipa::ToSchema for AmountText {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Amount")
    }
}

impl AmountText {
    /// The amount, or `code` with a detail naming `field` and what is wrong with it.
    fn money(&self, field: &str, code: &'static str) -> Result<Money, IngestError> {
        let Some(text) = &self.0 else {
            return Err(IngestError::Invalid(
                code,
                format!("{field} must be a JSON string such as \"2000.00\", not a number or other value"),
            ));
        };
        Money::parse_non_negative(text)
            .map_err(|e| IngestError::Invalid(code, format!("{field} {e}")))
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub order_id: OrderId,
    pub user_id: UserId,
    /// Rupees: `^(0|[1-9]\d*)(\.\d{1,2})?$`, greater than zero.
    pub amount: AmountText,
    /// Defaults to `amount`; at most `amount`.
    #[serde(default)]
    pub profit: Option<AmountText>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "platform::wire_time::opt_instant")]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A purchase request once judged: every field parsed and within its bounds.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount: Money,
    pub profit: Money,
    /// At the microsecond the ledger keeps; `None`: when it is received.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl PurchaseRequest {
    pub fn judge(&self) -> Result<Purchase, IngestError> {
        let amount = self.amount.money("amount", "invalid_amount")?;
        if amount.is_zero() {
            return Err(IngestError::Invalid(
                "invalid_amount",
                "amount must be greater than zero".into(),
            ));
        }
        let profit = match &self.profit {
            Some(p) => p.money("profit", "invalid_profit")?,
            None => amount,
        };
        if profit > amount {
            return Err(IngestError::Invalid(
                "invalid_profit",
                "profit must not exceed the amount".into(),
            ));
        }
        if let Some(at) = self.occurred_at {
            if !schemas::messages::plausible_time(at, Utc::now()) {
                return Err(IngestError::Invalid(
                    "invalid_occurred_at",
                    format!(
                        "occurred_at must be in or after {} and not more than a day ahead",
                        schemas::messages::EARLIEST_PURCHASE_YEAR
                    ),
                ));
            }
        }
        if self.currency.as_deref().is_some_and(|c| c != CURRENCY) {
            return Err(IngestError::Invalid(
                "unknown_currency",
                format!("currency must be {CURRENCY}"),
            ));
        }
        Ok(Purchase {
            order_id: self.order_id.clone(),
            user_id: self.user_id,
            amount,
            profit,
            occurred_at: self.occurred_at.map(|t| t.trunc_subsecs(6)),
        })
    }
}

impl Purchase {
    /// sha256 (hex) of the purchase in canonical form: amounts at two places; a profit
    /// equal to the amount and the one currency written as absent (they are the
    /// defaults). The shape is the one requests were hashed in before, so a request that
    /// left the defaults out hashes as it did then.
    pub fn body_hash(&self) -> Result<String, IngestError> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            order_id: &'a OrderId,
            user_id: UserId,
            amount: Money,
            profit: Option<Money>,
            currency: Option<&'a str>,
            occurred_at: Option<DateTime<Utc>>,
        }
        let canonical = Canonical {
            order_id: &self.order_id,
            user_id: self.user_id,
            amount: self.amount,
            profit: (self.profit != self.amount).then_some(self.profit),
            currency: None,
            occurred_at: self.occurred_at,
        };
        let json = serde_json::to_vec(&canonical).map_err(anyhow::Error::from)?;
        Ok(hex::encode(Sha256::digest(json)))
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    /// Rupees: `^(0|[1-9]\d*)(\.\d{1,2})?$`, greater than zero.
    pub amount: AmountText,
}

/// A refund request once judged.
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub amount: Money,
}

impl RefundRequest {
    pub fn judge(&self) -> Result<Refund, IngestError> {
        let amount = self.amount.money("amount", "invalid_amount")?;
        if amount.is_zero() {
            return Err(IngestError::Invalid(
                "invalid_amount",
                "amount must be greater than zero".into(),
            ));
        }
        Ok(Refund {
            refund_id: self.refund_id.clone(),
            order_id: self.order_id.clone(),
            amount,
        })
    }
}

impl Refund {
    /// sha256 of the refund in canonical form (the amount at two places).
    pub fn body_hash(&self) -> Result<Vec<u8>, IngestError> {
        let json = serde_json::to_vec(self).map_err(anyhow::Error::from)?;
        Ok(Sha256::digest(json).to_vec())
    }
}

#[cfg(test)]
#[path = "requests_test.rs"]
mod tests;
