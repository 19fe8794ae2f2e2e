//! Money as a non-negative amount of integer cents.

use serde::{Deserialize, Serialize};

/// A non-negative amount of money in integer cents. Arithmetic is checked: money
/// never goes negative and never wraps.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(u64);

/// Why an amount of money was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount was below zero.
    #[error("amount must not be negative, got {0} cents")]
    Negative(i64),
    /// A sum or product left the representable range.
    #[error("amount overflows")]
    Overflow,
}

impl Money {
    /// Zero cents.
    pub const ZERO: Money = Money(0);

    /// Parses a signed amount of cents, refusing negatives.
    ///
    /// # Errors
    /// [`MoneyError::Negative`] when `cents < 0`.
    pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
        u64::try_from(cents)
            .map(Self)
            .map_err(|_| MoneyError::Negative(cents))
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
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    /// Multiplies an amount by a count.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the product does not fit.
    pub fn checked_times(self, count: u32) -> Result<Money, MoneyError> {
        self.0
            .checked_mul(u64::from(count))
            .map(Money)
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
}
