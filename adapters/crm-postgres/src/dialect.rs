//! The PostgreSQL dialect of the shared rule compiler (`crm_sql::rule`).

use crm_sql::rule::Expr;
use crm_sql::{Dialect, Scalar, Value, Writer};

/// PostgreSQL's side of the shared rule compiler: explicitly typed `$n` placeholders,
/// `#>>` with a bound `text[]` path on `jsonb`, texts compared `COLLATE "C"` (by bytes, as
/// in memory, whatever the database's collation), timestamps parsed by the server.
pub(crate) struct Postgres;

fn path(parts: &[&str]) -> Value {
    Value::TextArray(parts.iter().map(|p| p.to_string()).collect())
}

impl Dialect for Postgres {
    fn placeholder(&self, out: &mut String, index: usize, value: &Value) {
        let ty = match value {
            Value::Text(_) => "text",
            Value::Real(_) => "float8",
            Value::Integer(_) => "int8",
            Value::Bool(_) => "bool",
            Value::Bytes(_) => "bytea",
            Value::TextArray(_) => "text[]",
        };
        out.push_str(&format!("${index}::{ty}"));
    }

    fn bytewise(&self, w: &mut Writer<'_>, expr: Expr<'_>) {
        expr(w);
        w.push(" COLLATE \"C\"");
    }

    fn json_at(&self, w: &mut Writer<'_>, column: &str, path_parts: &[&str]) {
        w.push("(");
        w.push(column);
        w.push("::jsonb #>> ");
        w.bind(path(path_parts));
        w.push(")");
    }

    fn convert(&self, w: &mut Writer<'_>, to: Scalar, expr: Expr<'_>) {
        let (open, close) = match to {
            Scalar::Real => ("(", ")::float8"),
            Scalar::Bool => ("(", ")::bool"),
            Scalar::Instant => ("(extract(epoch FROM (", ")::timestamptz) * 1000000)::int8"),
            Scalar::Date => (
                "(extract(epoch FROM (",
                ")::date::timestamp) * 1000000)::int8",
            ),
        };
        w.push(open);
        expr(w);
        w.push(close);
    }

    fn json_array_has(
        &self,
        w: &mut Writer<'_>,
        column: &str,
        path_parts: &[&str],
        needle: Expr<'_>,
    ) {
        w.push("EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(");
        w.push(column);
        w.push(" #> ");
        w.bind(path(path_parts));
        w.push(") = 'array' THEN ");
        w.push(column);
        w.push(" #> ");
        w.bind(path(path_parts));
        w.push(" ELSE '[]'::jsonb END) j(v) WHERE j.v = ");
        needle(w);
        w.push(")");
    }

    fn text_contains(&self, w: &mut Writer<'_>, haystack: Expr<'_>, needle: Expr<'_>) {
        w.push("strpos(");
        haystack(w);
        w.push(", ");
        needle(w);
        w.push(") > 0");
    }
}
