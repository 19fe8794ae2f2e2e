//! Money as a non-negative, bounded amount of integer cents.

use serde::{Deserialize, Serialize};

/// A non-negative amount of money in integer cents, at most [`Money::MAX`].
/// Arithmetic is checked: money never goes negative, never passes the bound and
/// never wraps. It deserializes through [`Money::from_cents`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "u64")]
pub struct Money(u64);

/// Why an amount of money was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount was below zero.
    #[error("amount must not be negative, got {0} cents")]
    Negative(i64),
    /// The amount was above [`Money::MAX`].
    #[error("amount must be at most {max} cents, got {0}", max = Money::MAX.0)]
    TooLarge(i64),
    /// A sum or product passed [`Money::MAX`].
    #[error("amount passes the bound of {max} cents", max = Money::MAX.0)]
    Overflow,
}

impl TryFrom<i64> for Money {
    type Error = MoneyError;

    fn try_from(cents: i64) -> Result<Self, MoneyError> {
        Money::from_cents(cents)
    }
}

impl From<Money> for u64 {
    fn from(money: Money) -> u64 {
        money.0
    }
}

impl Money {
    /// Zero cents.
    pub const ZERO: Money = Money(0);

    /// The largest amount: 10^10 cents (100 million in the currency unit), a
    /// business bound far below 2^53, so every JSON client reads it exactly.
    pub const MAX: Money = Money(10_000_000_000);

    /// Parses a signed amount of cents, refusing negatives and amounts above [`Money::MAX`].
    ///
    /// # Errors
    /// [`MoneyError::Negative`] when `cents < 0`, [`MoneyError::TooLarge`] above the bound.
    pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
        let value = u64::try_from(cents).map_err(|_| MoneyError::Negative(cents))?;
        Self::bounded(value).ok_or(MoneyError::TooLarge(cents))
    }

    /// `cents` if it is within the bound.
    fn bounded(cents: u64) -> Option<Money> {
        (cents <= Self::MAX.0).then_some(Money(cents))
    }

    /// The amount in cents.
    pub const fn cents(self) -> u64 {
        self.0
    }

    /// Adds two amounts.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the sum does not fit.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_add(other.0)
            .and_then(Self::bounded)
            .ok_or(MoneyError::Overflow)
    }

    /// Multiplies an amount by a count.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the product does not fit.
    pub fn checked_times(self, count: u32) -> Result<Money, MoneyError> {
        self.0
            .checked_mul(u64::from(count))
            .and_then(Self::bounded)
            .ok_or(MoneyError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Money::from_cents(-1), Err(MoneyError::Negative(-1)));
        assert_eq!(Money::from_cents(0).map(Money::cents), Ok(0));
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Money(u64::MAX);
        assert_eq!(max.checked_add(Money(1)), Err(MoneyError::Overflow));
        assert_eq!(max.checked_times(2), Err(MoneyError::Overflow));
        assert_eq!(Money(250).checked_times(3), Ok(Money(750)));
    }

    #[test]
    fn amounts_are_bounded_where_json_clients_read_them_exactly() {
        let bound = i64::try_from(Money::MAX.cents()).unwrap();
        assert_eq!(Money::from_cents(bound), Ok(Money::MAX));
        assert_eq!(
            Money::from_cents(bound + 1),
            Err(MoneyError::TooLarge(bound + 1))
        );
        assert_eq!(Money::MAX.checked_add(Money(1)), Err(MoneyError::Overflow));
        assert_eq!(Money::MAX.checked_times(2), Err(MoneyError::Overflow));
        assert!(Money::MAX.cents() < 1 << 53);
        assert!(serde_json::from_str::<Money>("10000000001").is_err());
        assert!(serde_json::from_str::<Money>("-1").is_err());
        assert_eq!(serde_json::from_str::<Money>("250").unwrap(), Money(250));
    }
}
