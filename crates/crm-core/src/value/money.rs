// Money, counts and durations here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An ISO 4217 currency code (`EUR`, `USD`, `CNY`, ...), checked against the `iso_currency`
/// crate's table of the standard.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
///
/// Every `Money` is bounded, whichever way it was made (constructor or serde):
///
/// - its magnitude is at most [`Money::MAX_AMOUNT`] (10<sup>15</sup>, a thousand trillion,
///   in the currency's major unit), so that profiles and reports summing amounts stay far
///   from [`Decimal`]'s limit of about 7.9 × 10<sup>28</sup>: more than 7.9 × 10<sup>13</sup>
///   purchases of the largest amount would be needed to reach it, more rows than any of the
///   adapters can hold for one customer;
/// - it has no more decimals than the currency's minor unit (2 for EUR, 0 for JPY, 3 for
///   KWD; at most [`Money::MAX_DECIMALS_UNSPECIFIED`] for codes without a minor unit, such
///   as XAU). Trailing zeros are allowed (`1.500 EUR`): the value, not the spelling, counts.
///
/// Sums of amounts go through checked arithmetic ([`Money::checked_add`], the profile merge)
/// and report [`Error::Validation`] on overflow instead of panicking.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "MoneyRepr", into = "MoneyRepr")]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

/// The serde form of [`Money`]: the amount as a string (never a float) and the currency.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
struct MoneyRepr {
    amount: Decimal,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = Error;
    fn try_from(r: MoneyRepr) -> Result<Self, Error> {
        Money::from_parts(r.amount, r.currency)
    }
}

impl From<Money> for MoneyRepr {
    fn from(m: Money) -> Self {
        MoneyRepr {
            amount: m.amount(),
            currency: m.currency(),
        }
    }
}

impl Money {
    /// The largest magnitude of an amount: 10<sup>15</sup> in the currency's major unit.
    pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);

    /// Decimals allowed for a currency code that defines no minor unit (XAU, XDR, ...).
    pub const MAX_DECIMALS_UNSPECIFIED: u32 = 4;

    /// Money from an amount and a currency code; the error names `currency`, or `amount`
    /// when the amount is out of bounds (see [`Money`]).
    pub fn new(amount: Decimal, currency: &str) -> Result<Self, Error> {
        Money::from_parts(amount, Currency::parse(currency)?)
    }

    /// Money from an amount and a parsed currency, checked against the bounds.
    pub fn from_parts(amount: Decimal, currency: Currency) -> Result<Self, Error> {
        if amount.abs() > Self::MAX_AMOUNT {
            return Err(Error::validation(
                "amount",
                format!(
                    "{amount} is beyond the largest amount ({} in magnitude)",
                    Self::MAX_AMOUNT
                ),
            ));
        }
        let allowed = Self::decimals_of(currency);
        if amount.normalize().scale() > allowed {
            return Err(Error::validation(
                "amount",
                format!("{amount} has more decimals than {currency} allows ({allowed})"),
            ));
        }
        Ok(Money { amount, currency })
    }

    /// Money from an amount rounded to the currency's decimals (half away from zero), for
    /// computed amounts such as predictions; still refused beyond [`Money::MAX_AMOUNT`].
    pub fn rounded(amount: Decimal, currency: Currency) -> Result<Self, Error> {
        let places = Self::decimals_of(currency);
        let value = amount
            .round_dp_with_strategy(places, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        Money::from_parts(value, currency)
    }

    /// Parses an amount written as text (`"12.50"`, `"-3"`) and a currency code. Only
    /// digits, one optional sign and one optional decimal point are accepted; the text is
    /// checked before it is converted, so nothing is rounded away silently.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, Error> {
        let text = amount.trim();
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let well_formed = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && !(digits.contains('.') && fraction.is_empty());
        if !well_formed {
            return Err(Error::validation(
                "amount",
                format!("{amount:?} is not a decimal number (digits with an optional sign and decimal point)"),
            ));
        }
        let currency = Currency::parse(currency)?;
        let significant = fraction.trim_end_matches('0').len();
        let allowed = Self::decimals_of(currency);
        if significant > allowed as usize {
            return Err(Error::validation(
                "amount",
                format!("{amount:?} has more decimals than {currency} allows ({allowed})"),
            ));
        }
        // At most 16 integer digits can be within bounds; longer text (leading zeros aside)
        // is out of bounds without converting it.
        if whole.trim_start_matches('0').len() > 16 {
            return Err(Error::validation(
                "amount",
                format!(
                    "{amount:?} is beyond the largest amount ({} in magnitude)",
                    Self::MAX_AMOUNT
                ),
            ));
        }
        let sign = if text.starts_with('-') { "-" } else { "" };
        let whole = match whole.trim_start_matches('0') {
            "" => "0",
            w => w,
        };
        // Trailing zeros beyond the currency's decimals go; those within it stay (`0.10`).
        let canonical = match &fraction[..fraction.len().min(allowed as usize)] {
            "" => format!("{sign}{whole}"),
            f => format!("{sign}{whole}.{f}"),
        };
        let value = Decimal::from_str(&canonical).map_err(|e| {
            Error::validation("amount", format!("{amount:?} is not a decimal number: {e}"))
        })?;
        Money::from_parts(value, currency)
    }

    /// The amount, in the currency's major unit.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The decimals an amount in `currency` may have.
    pub fn decimals_of(currency: Currency) -> u32 {
        currency
            .minor_units()
            .map_or(Self::MAX_DECIMALS_UNSPECIFIED, u32::from)
    }

    /// The sum of two amounts in the same currency; a validation error on `amount` when the
    /// currencies differ or the sum is beyond [`Money::MAX_AMOUNT`].
    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        if self.currency != other.currency {
            return Err(Error::validation(
                "amount.currency",
                format!("cannot add {} to {}", other.currency, self.currency),
            ));
        }
        let sum = self.amount.checked_add(other.amount).ok_or_else(|| {
            Error::validation("amount", "the sum is beyond the range of a decimal")
        })?;
        Money::from_parts(sum, self.currency)
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

/// Adds `b` to `a` or reports a validation error on `field` when the sum is beyond the
/// range of [`Decimal`] (for profile and report totals, which may exceed
/// [`Money::MAX_AMOUNT`] but never [`Decimal::MAX`] unchecked).
pub fn checked_sum(a: Decimal, b: Decimal, field: &str) -> Result<Decimal, Error> {
    a.checked_add(b)
        .ok_or_else(|| Error::validation(field, format!("the total {a} + {b} overflows")))
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
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
        let sum = m.amount() + m.amount() + m.amount();
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

    #[test]
    fn amounts_are_bounded_and_nothing_is_rounded_away() {
        let max = "1000000000000000";
        assert_eq!(
            Money::parse(max, "EUR").unwrap().amount(),
            Money::MAX_AMOUNT
        );
        assert_eq!(
            Money::parse(&format!("-{max}"), "EUR").unwrap().amount(),
            -Money::MAX_AMOUNT
        );
        for bad in [
            "1000000000000000.01",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "99999999999999999999999999999999999999",
        ] {
            let e = Money::parse(bad, "EUR").unwrap_err();
            assert_eq!(e.field(), Some("amount"), "{bad}: {e}");
        }
        assert!(Money::new(Decimal::MAX, "EUR").is_err());
        // More decimals than the currency has are refused, never rounded.
        for (bad, cur) in [
            ("0.00000000000000000000000000001", "EUR"),
            ("1.005", "EUR"),
            ("1.5", "JPY"),
            ("0.0001", "KWD"),
            ("0.00001", "XAU"),
        ] {
            let e = Money::parse(bad, cur).unwrap_err();
            assert_eq!(e.field(), Some("amount"), "{bad} {cur}: {e}");
            assert!(e.to_string().contains("decimals"), "{e}");
        }
        assert!(Money::new(Decimal::new(1005, 3), "EUR").is_err());
        // Trailing zeros are only spelling; the value fits.
        assert_eq!(
            Money::parse("1.500", "EUR").unwrap().amount(),
            Decimal::new(150, 2)
        );
        assert_eq!(
            Money::parse("7.000", "JPY").unwrap().amount(),
            Decimal::from(7)
        );
        assert_eq!(
            Money::parse("-12.345", "KWD").unwrap().amount(),
            Decimal::new(-12345, 3)
        );
        assert_eq!(
            Money::parse("+0012.5", "EUR").unwrap().amount(),
            Decimal::new(125, 1)
        );
        assert_eq!(
            Money::parse("0.0001", "XAU").unwrap().amount(),
            Decimal::new(1, 4)
        );
        for bad in [
            "", "-", ".5", "5.", "1e5", "1_000", "١٢", "1.2.3", "--1", " 1 2",
        ] {
            assert_eq!(
                Money::parse(bad, "EUR").unwrap_err().field(),
                Some("amount"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn deserialising_checks_the_bounds_too() {
        for bad in [
            r#"{"amount":"79228162514264337593543950335","currency":"EUR"}"#,
            r#"{"amount":"1.005","currency":"EUR"}"#,
            r#"{"amount":"1.5","currency":"JPY"}"#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
        let ok: Money = serde_json::from_str(r#"{"amount":"-12.345","currency":"KWD"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"amount":"-12.345","currency":"KWD"}"#
        );
    }

    #[test]
    fn sums_are_checked() {
        let max = Money::from_parts(Money::MAX_AMOUNT, Currency::parse("EUR").unwrap()).unwrap();
        let cent = Money::parse("0.01", "EUR").unwrap();
        assert_eq!(max.checked_add(cent).unwrap_err().field(), Some("amount"));
        assert_eq!(
            cent.checked_add(Money::parse("1", "USD").unwrap())
                .unwrap_err()
                .field(),
            Some("amount.currency")
        );
        assert_eq!(cent.checked_add(cent).unwrap().amount(), Decimal::new(2, 2));
        assert!(checked_sum(Decimal::MAX, Decimal::ONE, "total").is_err());
        assert_eq!(
            Money::rounded(Decimal::new(12345, 3), Currency::parse("EUR").unwrap())
                .unwrap()
                .amount(),
            Decimal::new(1235, 2)
        );
    }
}
