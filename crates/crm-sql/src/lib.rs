//! Driver-free building blocks for SQL storage adapters of `crm-core`.
//!
//! The SQLite and PostgreSQL adapters store the same tables and answer the same rules; what
//! differs between them is a dialect (placeholders, JSON access, collation, timestamp
//! parsing), not the logic. This crate holds the logic once:
//!
//! - [`rule`]: the segment rule compiler. A [`Rule`](crm_core::segment::Rule) becomes a
//!   boolean SQL expression over the customer, its profile and its value scores, with every
//!   value bound as a [`Value`]; a [`Dialect`] supplies the few fragments that differ.
//! - [`sales`]: the forecast's aggregation in SQL and the indexed columns of a deal;
//!   [`accounts`]: the relationships and the organisation hierarchy.
//! - [`codec!`]: the small conversions every adapter needs (JSON records, microsecond
//!   timestamps, stored ids), bound to the adapter's backend name so errors say where a
//!   corrupt value was read.
//!
//! The crate depends on no database driver: an adapter converts each [`Value`] into its
//! driver's parameter type and runs the text. An adapter for another SQL database
//! implements [`Dialect`] and gets the rule language with the same semantics; the
//! differential test of `crm-testkit` (random rules against the in-memory evaluator) is how
//! it checks that.
//!
//! Dependencies: `crm-core` (the rule types), `chrono` and `rust_decimal` (the types of
//! literals), `serde`/`serde_json` (the JSON records of the codec). Nothing else.

pub mod accounts;
pub mod rule;
pub mod sales;

#[doc(hidden)]
pub use serde_json as __serde_json;

pub use rule::{Dialect, Scalar, Sql, Value, Writer};

use crm_core::case::Case;
use crm_core::handover::{CustomerHandOver, HandOver};
use crm_core::task::Task;

/// Defines the codec helpers of an adapter crate, bound to its backend name.
///
/// Expands, at the place of the call, to `pub(crate)` functions that every SQL adapter
/// needs and that differ only in the backend they name in errors:
///
/// - `corrupt(what)`: an [`Error::Corrupt`](crm_core::Error::Corrupt) of the backend;
/// - `micros(t)` / `from_micros(us)` / `opt_from_micros(us)`: instants as microseconds
///   since the Unix epoch, and back (out of range is corrupt);
/// - `id_bytes(blob)`: the 16 bytes of a stored id (another length is corrupt);
/// - `json(text, what)` / `to_json(value)`: JSON records, decoded (undecodable is
///   [`Error::Corrupt`](crm_core::Error::Corrupt)) and encoded (a failure is
///   [`Error::Encoding`](crm_core::Error::Encoding)).
///
/// ```
/// mod codec {
///     crm_sql::codec!("example");
/// }
/// let at = chrono::DateTime::from_timestamp(1, 0).unwrap();
/// assert_eq!(codec::from_micros(codec::micros(at)).unwrap(), at);
/// assert!(codec::id_bytes(vec![1, 2]).is_err());
/// ```
#[macro_export]
macro_rules! codec {
    ($backend:expr) => {
        /// A `Corrupt` error of this backend saying what could not be decoded.
        #[allow(dead_code)]
        pub(crate) fn corrupt(what: impl Into<String>) -> ::crm_core::Error {
            ::crm_core::ports::stored::corrupt($backend, what)
        }

        /// Microseconds since the Unix epoch.
        #[allow(dead_code)]
        pub(crate) fn micros(t: ::chrono::DateTime<::chrono::Utc>) -> i64 {
            t.timestamp_micros()
        }

        /// The instant `us` microseconds after the Unix epoch; out of range is corrupt.
        #[allow(dead_code)]
        pub(crate) fn from_micros(
            us: i64,
        ) -> ::std::result::Result<::chrono::DateTime<::chrono::Utc>, ::crm_core::Error> {
            ::crm_core::ports::stored::from_micros($backend, us)
        }

        /// [`from_micros`] of a nullable column.
        #[allow(dead_code)]
        pub(crate) fn opt_from_micros(
            us: Option<i64>,
        ) -> ::std::result::Result<Option<::chrono::DateTime<::chrono::Utc>>, ::crm_core::Error> {
            us.map(from_micros).transpose()
        }

        /// The 16 bytes of a stored id; another length is corrupt.
        #[allow(dead_code)]
        pub(crate) fn id_bytes(
            blob: Vec<u8>,
        ) -> ::std::result::Result<[u8; 16], ::crm_core::Error> {
            ::crm_core::ports::stored::id_bytes($backend, blob)
        }

        /// A stored JSON record, decoded; undecodable text is corrupt (naming `what`).
        #[allow(dead_code)]
        pub(crate) fn json<T: ::serde::de::DeserializeOwned>(
            text: &str,
            what: &str,
        ) -> ::std::result::Result<T, ::crm_core::Error> {
            $crate::__serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
        }

        /// A value encoded as a JSON record.
        #[allow(dead_code)]
        pub(crate) fn to_json<T: ::serde::Serialize>(
            value: &T,
        ) -> ::std::result::Result<String, ::crm_core::Error> {
            $crate::__serde_json::to_string(value)
                .map_err(|e| ::crm_core::Error::encoding("a stored record", e))
        }
    };
}

/// The query for one page of JSON `record`s of `table` for `tenant`, by `id` after `after`
/// (all ids when `None`), with each `(column, value)` filter, the `extra` condition and at
/// most `limit` + 1 rows (one more than a page, to know whether another follows).
///
/// `table`, the filter columns and `extra` are trusted SQL text written by the adapter,
/// never input; values are bound.
pub fn records_page(
    dialect: &dyn Dialect,
    table: &str,
    tenant: &[u8],
    after: Option<[u8; 16]>,
    filters: Vec<(&str, Value)>,
    extra: &str,
    limit: u32,
) -> Sql {
    let mut w = Writer::new(dialect);
    w.push("SELECT record FROM ");
    w.push(table);
    w.push(" WHERE tenant_id = ");
    w.bind(Value::Bytes(tenant.to_vec()));
    w.push(" AND id > ");
    w.bind(Value::Bytes(after.unwrap_or([0; 16]).to_vec()));
    for (column, value) in filters {
        w.push(" AND ");
        w.push(column);
        w.push(" = ");
        w.bind(value);
    }
    w.push(extra);
    w.push(" ORDER BY id LIMIT ");
    w.bind(Value::Integer(i64::from(limit) + 1));
    w.finish()
}

/// A [`HandOver`] checked ([`HandOver::check`]) and each record encoded as its JSON text,
/// ready for the writes of one transaction: customers with their transfer, cases and tasks
/// with the version each must still be at.
#[derive(Debug)]
pub struct EncodedHandOver {
    /// Each customer's hand-over and the JSON of its new record.
    pub customers: Vec<(CustomerHandOver, String)>,
    /// Each case, its JSON, and the version it was read at.
    pub cases: Vec<(Case, String, u64)>,
    /// Each task, its JSON, and the version it was read at.
    pub tasks: Vec<(Task, String, u64)>,
    /// The grants moved: whose grant is revoked, and the new grant with its JSON.
    pub grants: Vec<(crm_core::access::Grantee, crm_core::access::Grant, String)>,
}

/// Checks `plan` and encodes its records. Errors: the plan's validation; encoding errors.
pub fn encode_hand_over(plan: &HandOver) -> Result<EncodedHandOver, crm_core::Error> {
    plan.check()?;
    Ok(EncodedHandOver {
        customers: plan
            .customers
            .iter()
            .map(|h| Ok((h.clone(), json(&h.customer)?)))
            .collect::<Result<_, crm_core::Error>>()?,
        cases: plan
            .cases
            .iter()
            .map(|(c, v)| Ok((c.clone(), json(c)?, *v)))
            .collect::<Result<_, crm_core::Error>>()?,
        tasks: plan
            .tasks
            .iter()
            .map(|(t, v)| Ok((t.clone(), json(t)?, *v)))
            .collect::<Result<_, crm_core::Error>>()?,
        grants: plan
            .grants
            .iter()
            .map(|g| Ok((g.from, g.grant.clone(), json(&g.grant)?)))
            .collect::<Result<_, crm_core::Error>>()?,
    })
}

/// A record as JSON text.
fn json<T: serde::Serialize>(value: &T) -> Result<String, crm_core::Error> {
    serde_json::to_string(value).map_err(|e| crm_core::Error::encoding("a stored record", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use crm_core::segment::{parse, FieldSchema};
    use crm_core::Currency;

    /// Numbered placeholders and plain JSON access: enough to read the text.
    struct Numbered;

    impl Dialect for Numbered {
        fn placeholder(&self, out: &mut String, index: usize, _value: &Value) {
            out.push_str(&format!("${index}"));
        }
        fn json_at(&self, w: &mut Writer<'_>, column: &str, path: &[&str]) {
            w.push(column);
            w.push("->");
            w.bind(Value::Text(path.join(".")));
        }
        fn convert(&self, w: &mut Writer<'_>, _to: Scalar, expr: rule::Expr<'_>) {
            expr(w)
        }
        fn json_array_has(
            &self,
            w: &mut Writer<'_>,
            column: &str,
            path: &[&str],
            needle: rule::Expr<'_>,
        ) {
            self.json_at(w, column, path);
            w.push(" HAS ");
            needle(w);
        }
    }

    fn placeholders(sql: &Sql) -> usize {
        sql.text.matches('$').count()
    }

    #[test]
    fn a_page_of_records_binds_every_value_in_order() {
        let sql = records_page(
            &Numbered,
            "cases",
            &[7; 16],
            None,
            vec![("assignee", Value::Bytes(vec![1; 16]))],
            " AND NOT done",
            50,
        );
        assert_eq!(
            sql.text,
            "SELECT record FROM cases WHERE tenant_id = $1 AND id > $2 AND assignee = $3 \
             AND NOT done ORDER BY id LIMIT $4"
        );
        assert_eq!(sql.params[1], Value::Bytes(vec![0; 16]));
        assert_eq!(sql.params[3], Value::Integer(51));
    }

    #[test]
    fn rules_bind_literals_and_never_write_them() {
        let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
        let rule = parse(r#"name = "x' OR 1=1" and purchase_count >= 3"#).unwrap();
        let sql = rule::compile(&Numbered, &rule, &schema, DateTime::UNIX_EPOCH).unwrap();
        assert!(!sql.text.contains("OR 1=1"), "{}", sql.text);
        assert!(sql.params.contains(&Value::Text("x' OR 1=1".into())));
        assert_eq!(placeholders(&sql), sql.params.len());
    }

    #[test]
    fn long_chains_are_grouped_in_halves() {
        let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
        let text = vec!["purchase_count = 1"; 64].join(" or ");
        let rule = parse(&text).unwrap();
        let sql = rule::compile(&Numbered, &rule, &schema, DateTime::UNIX_EPOCH).unwrap();
        // 64 terms in groups of at most 8: nesting grows with log2(64 / 8), not 64.
        let mut depth = 0usize;
        let mut deepest = 0;
        for c in sql.text.chars() {
            match c {
                '(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        assert!(deepest < 12, "nesting {deepest}: {}", sql.text);
        assert_eq!(placeholders(&sql), 64);
    }

    #[test]
    fn an_ill_typed_rule_is_refused_before_any_sql() {
        let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
        let rule = parse(r#"purchase_count = "many""#).unwrap();
        let err = rule::compile(&Numbered, &rule, &schema, DateTime::UNIX_EPOCH).unwrap_err();
        assert!(err.is_validation(), "{err}");
    }
}
