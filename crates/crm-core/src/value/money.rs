use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An ISO 4217 currency code (`EUR`, `USD`, `CNY`, ...), checked against the `iso_currency`
/// crate's table of the standard.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a three-letter code (case-insensitive); the error's field is `currency`.
    pub fn parse(code: &str) -> Result<Self, Error> {
        Self::parse_field(code, "currency")
    }

    /// Parses a three-letter code; the error names `field`.
    pub fn parse_field(code: &str, field: &str) -> Result<Self, Error> {
        let upper = code.trim().to_ascii_uppercase();
        if iso_currency::Currency::from_code(&upper).is_none() {
            return Err(Error::validation(
                field,
                format!("{code:?} is not an ISO 4217 currency code"),
            ));
        }
        let bytes = upper.as_bytes();
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored (checked in `parse_field`).
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point of the currency's minor unit (2 for EUR, 0 for JPY),
    /// where the standard defines one.
    pub fn minor_units(&self) -> Option<u16> {
        iso_currency::Currency::from_code(self.code()).and_then(|c| c.exponent())
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.code().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An exact amount of money in one currency. Amounts are [`Decimal`], never floating point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount (may be negative, for refunds); serialised as a string, never a float.
    pub amount: Decimal,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Money from an amount and a currency code; the error names `currency`.
    pub fn new(amount: Decimal, currency: &str) -> Result<Self, Error> {
        Ok(Money {
            amount,
            currency: Currency::parse(currency)?,
        })
    }

    /// Parses an amount written as text (`"12.50"`) and a currency code.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, Error> {
        let value = Decimal::from_str(amount.trim()).map_err(|e| {
            Error::validation("amount", format!("{amount:?} is not a decimal number: {e}"))
        })?;
        Self::new(value, currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_checked() {
        assert_eq!(Currency::parse("eur").unwrap().code(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), Some(0));
        for bad in ["", "EU", "EURO", "ZZZ", "€", "ÉUR"] {
            assert_eq!(Currency::parse(bad).unwrap_err().field(), Some("currency"));
        }
    }

    #[test]
    fn money_is_exact_and_round_trips() {
        let m = Money::parse("0.10", "usd").unwrap();
        let sum = m.amount + m.amount + m.amount;
        assert_eq!(sum, Decimal::from_str("0.30").unwrap());
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"0.10","currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"XYZ"}"#).is_err());
        assert_eq!(
            Money::parse("1,5", "EUR").unwrap_err().field(),
            Some("amount")
        );
    }
}
