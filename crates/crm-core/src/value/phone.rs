use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A phone number normalised to E.164 (`+4930123456`), validated against the numbering plan
/// of its country with the `phonenumber` crate (Google's libphonenumber metadata).
///
/// Input must be international (start with `+` or `00`), or be parsed with
/// [`PhoneNumber::parse_national`] and an ISO 3166 region code. A number with an
/// extension (`+49 30 1234567 ext. 99`) is refused: E.164 cannot hold it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses an international number; the error's field is `phone`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_field(text, "phone")
    }

    /// Parses an international number; the error names `field`.
    pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        not_masked(trimmed, field)?;
        let international = if let Some(rest) = trimmed.strip_prefix("00") {
            format!("+{rest}")
        } else if trimmed.starts_with('+') {
            trimmed.to_string()
        } else {
            return Err(Error::validation(
                field,
                "must be international (start with + and the country code)",
            ));
        };
        Self::checked(phonenumber::parse(None, &international), field)
    }

    /// Parses a national number in the given region (ISO 3166 alpha-2, like `DE` or `CN`).
    pub fn parse_national(text: &str, region: &str, field: &str) -> Result<Self, Error> {
        let country: phonenumber::country::Id = region
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| Error::validation(field, format!("unknown region {region:?}")))?;
        not_masked(text, field)?;
        Self::checked(phonenumber::parse(Some(country), text.trim()), field)
    }

    fn checked(
        parsed: Result<phonenumber::PhoneNumber, phonenumber::ParseError>,
        field: &str,
    ) -> Result<Self, Error> {
        let number =
            parsed.map_err(|e| Error::validation(field, format!("not a phone number: {e}")))?;
        // E.164 has no room for an extension: refused rather than dropped silently.
        if number.extension().is_some() {
            return Err(Error::validation(
                field,
                "has an extension, which a phone number here cannot keep: give the number without it",
            ));
        }
        if !phonenumber::is_valid(&number) {
            return Err(Error::validation(
                field,
                "not a valid number in its country's numbering plan",
            ));
        }
        Ok(PhoneNumber(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The E.164 form, for example `+4930123456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as a principal who may not see contact points reads it: the leading
    /// digits (the country code and more), `*` for the middle third of the digits or at
    /// least three, and up to four trailing digits (`+86138****5678`, `+4930***820`).
    pub fn masked(&self) -> PhoneNumber {
        let digits: Vec<char> = self.0.chars().filter(char::is_ascii_digit).collect();
        let n = digits.len();
        let hidden = (n / 3).max(3).min(n);
        let tail = ((n - hidden) / 2).min(4);
        let head = n - hidden - tail;
        let mut out = String::from("+");
        out.extend(digits.iter().take(head));
        out.extend(std::iter::repeat_n('*', hidden));
        out.extend(digits.iter().skip(head + hidden));
        PhoneNumber(out)
    }

    /// Whether this is a masked number ([`PhoneNumber::masked`]). Customers refuse to
    /// store masked numbers.
    pub fn is_masked(&self) -> bool {
        self.0.contains('*')
    }

    /// A masked number as text gives it back (`+`, digits, `*`s, digits), so a masked
    /// record read by a host survives its own serialisation round trip.
    fn parse_masked(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('+')?;
        let stars = rest.find('*')?;
        let (head, after) = rest.split_at(stars);
        let tail = after.trim_start_matches('*');
        let well_formed = !head.is_empty()
            && head.chars().all(|c| c.is_ascii_digit())
            && tail.chars().all(|c| c.is_ascii_digit())
            && text.len() <= 24;
        well_formed.then(|| PhoneNumber(text.to_string()))
    }
}

/// The number parser skips characters it does not know: a masked number
/// (`+86138****5678`) must not pass for a shorter real one.
fn not_masked(text: &str, field: &str) -> Result<(), Error> {
    if text.contains('*') {
        return Err(Error::validation(
            field,
            "is masked (has `*`): give the full number",
        ));
    }
    Ok(())
}

impl TryFrom<String> for PhoneNumber {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        if value.contains('*') {
            return Self::parse_masked(&value)
                .ok_or_else(|| Error::validation("phone", "not a phone number or a masked one"));
        }
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> String {
        value.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_middle_digits_and_reads_the_mask_back() {
        let long = PhoneNumber::parse("+86 138 1234 5678").unwrap();
        assert!(!long.is_masked());
        assert_eq!(long.masked().as_str(), "+86138****5678");
        let short = PhoneNumber::parse("+4930901820").unwrap();
        assert_eq!(short.masked().as_str(), "+4930***820");
        for m in [long.masked(), short.masked()] {
            assert!(m.is_masked());
            assert_eq!(PhoneNumber::try_from(m.as_str().to_string()).unwrap(), m);
        }
        for bad in [
            "+*123",
            "+12*3a",
            "12**34",
            "+12",
            "+1234*5678901234567890123456",
        ] {
            assert!(PhoneNumber::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert!(
            PhoneNumber::parse("+4930***820").is_err(),
            "not a shorter real number"
        );
        assert!(PhoneNumber::parse_national("030 ***820", "DE", "phone").is_err());
    }

    #[test]
    fn normalises_to_e164() {
        assert_eq!(
            PhoneNumber::parse("+49 30 1234567").unwrap().as_str(),
            "+49301234567"
        );
        assert_eq!(
            PhoneNumber::parse("0044 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            PhoneNumber::parse_national("(202) 555-0143", "us", "phone")
                .unwrap()
                .as_str(),
            "+12025550143"
        );
        assert_eq!(
            PhoneNumber::parse("+86 138 0013 8000").unwrap().as_str(),
            "+8613800138000"
        );
    }

    #[test]
    fn rejects_bad_numbers_naming_the_field() {
        for bad in [
            "",
            "12345",
            "+1 12",
            "+999 1234567",
            "phone",
            "+49 30 1234567 8901 2345",
        ] {
            let err = PhoneNumber::parse_field(bad, "phones[0]").unwrap_err();
            assert_eq!(err.field(), Some("phones[0]"), "{bad:?}");
        }
        assert!(PhoneNumber::parse_national("2025550143", "XX", "phone").is_err());
    }

    #[test]
    fn extensions_are_refused_not_dropped() {
        assert!(PhoneNumber::parse("+44 20 7946 0958;ext=12").is_err());
        for with_ext in ["+49 30 1234567 ext. 99", "+1 650-253-0000 x123"] {
            let e = PhoneNumber::parse(with_ext).unwrap_err();
            assert_eq!(e.field(), Some("phone"), "{with_ext}");
            assert!(e.to_string().contains("extension"), "{with_ext}: {e}");
        }
        let e = PhoneNumber::parse_national("030 1234567 ext. 99", "DE", "phones[0]").unwrap_err();
        assert_eq!(e.field(), Some("phones[0]"));
    }
}
