//! Reading the CDNOW purchase log, the data set of the customer-base-analysis literature.
//!
//! Two layouts are accepted, told apart by their first line:
//! - the 1/10 sample: five whitespace-separated columns, no header
//!   (`full id`, `sample id`, `YYYYMMDD`, `CDs`, `dollars`); the customer is the sample id;
//! - the full set: a header line `customer_id date number_of_cds dollar_value`, then four
//!   columns (`id`, `YYYYMMDD`, `CDs`, `dollars`); the customer is the id.

use std::io::BufRead;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::summary::Purchase;
use crate::FitError;

/// Reads every purchase line. Errors name the line number and what was wrong.
pub fn read_cdnow(input: impl BufRead) -> Result<Vec<Purchase<u64>>, FitError> {
    let mut out = Vec::new();
    let mut layout: Option<usize> = None;
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| FitError::Input {
            line: n,
            reason: e.to_string(),
        })?;
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if layout.is_none() && cols[0].starts_with(|c: char| c.is_ascii_alphabetic()) {
            layout = Some(4);
            continue; // the full set's header
        }
        let width = *layout.get_or_insert(cols.len());
        if cols.len() != width || !(width == 4 || width == 5) {
            return Err(FitError::Input {
                line: n,
                reason: format!(
                    "expected {} columns, found {}",
                    width.clamp(4, 5),
                    cols.len()
                ),
            });
        }
        let (id, date, dollars) = if width == 5 {
            (cols[1], cols[2], cols[4])
        } else {
            (cols[0], cols[1], cols[3])
        };
        let bad = |what: &str, v: &str| FitError::Input {
            line: n,
            reason: format!("bad {what} {v:?}"),
        };
        out.push(Purchase {
            customer: id.parse().map_err(|_| bad("customer id", id))?,
            date: NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| bad("date", date))?,
            amount: Decimal::from_str(dollars).map_err(|_| bad("amount", dollars))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_read_the_same_purchases() {
        let sample = " 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n";
        let full =
            "customer_id date number_of_cds dollar_value\n1 19970101 2 29.33\n1 19970118 2 29.73\n";
        let a = read_cdnow(sample.as_bytes()).unwrap();
        let b = read_cdnow(full.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[1].amount, Decimal::new(2973, 2));
    }

    #[test]
    fn errors_name_the_line() {
        let err =
            read_cdnow("1 0001 19970101 2 1.0\n1 0001 1997x101 2 1.0\n".as_bytes()).unwrap_err();
        assert!(matches!(err, FitError::Input { line: 2, .. }), "{err:?}");
        let err = read_cdnow("1 0001 19970101 2 1.0\n1 19970101 2\n".as_bytes()).unwrap_err();
        assert!(matches!(err, FitError::Input { line: 2, .. }), "{err:?}");
    }
}
