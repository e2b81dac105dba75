//! The SQLite dialect of the shared rule compiler (`crm_sql::rule`).

use crm_sql::rule::Expr;
use crm_sql::{Dialect, Scalar, Value, Writer};

/// SQLite's side of the shared rule compiler: `?` placeholders, `json_extract` with a
/// bound path, `json_each` for lists, timestamps parsed with `unixepoch`.
pub(crate) struct Sqlite;

const DAY_MICROS: &str = "86400000000";

/// `$.a.b.c`; the parts are fixed names or attribute keys (`AttrKey`), which need no quotes.
fn json_path(path: &[&str]) -> Value {
    let mut p = String::from("$");
    for part in path {
        p.push('.');
        p.push_str(part);
    }
    Value::Text(p)
}

impl Dialect for Sqlite {
    fn placeholder(&self, out: &mut String, _index: usize, _value: &Value) {
        out.push('?');
    }

    fn json_at(&self, w: &mut Writer<'_>, column: &str, path: &[&str]) {
        w.push("json_extract(");
        w.push(column);
        w.push(", ");
        w.bind(json_path(path));
        w.push(")");
    }

    fn convert(&self, w: &mut Writer<'_>, to: Scalar, expr: Expr<'_>) {
        match to {
            Scalar::Real => {
                w.push("CAST(");
                expr(w);
                w.push(" AS REAL)");
            }
            Scalar::Bool => expr(w),
            Scalar::Instant => {
                // Whole seconds, plus the fraction's first six digits when there is one.
                w.push("(unixepoch(substr(");
                expr(w);
                w.push(", 1, 19)) * 1000000 + CASE WHEN substr(");
                expr(w);
                w.push(", 20, 1) = '.' THEN CAST(substr(substr(");
                expr(w);
                w.push(", 21, instr(");
                expr(w);
                w.push(", 'Z') - 21) || '000000', 1, 6) AS INTEGER) ELSE 0 END)");
            }
            Scalar::Date => {
                w.push("CAST((julianday(");
                expr(w);
                w.push(") - 2440587.5) * ");
                w.push(DAY_MICROS);
                w.push(" AS INTEGER)");
            }
        }
    }

    fn json_array_has(&self, w: &mut Writer<'_>, column: &str, path: &[&str], needle: Expr<'_>) {
        w.push("EXISTS (SELECT 1 FROM json_each(");
        w.push(column);
        w.push(", ");
        w.bind(json_path(path));
        w.push(") j WHERE j.value = ");
        needle(w);
        w.push(")");
    }
}
