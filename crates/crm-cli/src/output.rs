//! One model of tabular output, three renderings: aligned text for a person, CSV and JSON
//! for machines.

use std::io::{self, Write};

use serde_json::{Map, Value};

/// How a command writes its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a person.
    #[default]
    Table,
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv,
    /// One JSON array of objects keyed by column name.
    Json,
}

/// Rows under named columns. Cells are JSON values: text and numbers print as they are,
/// `null` prints as an empty cell (and stays `null` in JSON).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(columns: &[&'static str]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are `null`, extra ones are dropped).
    pub fn push(&mut self, mut row: Vec<Value>) {
        row.resize(self.columns.len(), Value::Null);
        self.rows.push(row);
    }

    /// Writes the table in `format` to `out`.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Table => self.write_text(out),
            Format::Csv => self.write_csv(out),
            Format::Json => {
                let rows: Vec<Value> = self
                    .rows
                    .iter()
                    .map(|row| {
                        let object: Map<String, Value> = self
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| ((*c).to_string(), v.clone()))
                            .collect();
                        Value::Object(object)
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &rows)?;
                writeln!(out)
            }
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(text).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        // Numbers align right, like in a spreadsheet; a column is numeric when every
        // non-empty cell of it is a number.
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                let mut any = false;
                let all = self.rows.iter().all(|r| match &r[i] {
                    Value::Number(_) => {
                        any = true;
                        true
                    }
                    Value::Null => true,
                    _ => false,
                });
                any && all
            })
            .collect();
        let line = |out: &mut dyn Write, row: &[String]| -> io::Result<()> {
            let mut text = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                if numeric[i] {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        let header: Vec<String> = self.columns.iter().map(|c| (*c).to_string()).collect();
        line(out, &header)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(out, &rule)?;
        for row in &cells {
            line(out, row)?;
        }
        Ok(())
    }

    fn write_csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
        writeln!(out, "{}", header.join(","))?;
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(|v| csv_field(&text(v))).collect();
            writeln!(out, "{}", fields.join(","))?;
        }
        Ok(())
    }
}

/// A cell as text: strings unquoted, `null` empty, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Quotes a CSV field when it holds a comma, a quote or a line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["name", "count", "note"]);
        t.push(vec![json!("Ann"), json!(12), json!("a, \"b\"")]);
        t.push(vec![json!("Bartholomew"), json!(3)]);
        t
    }

    fn render(t: &Table, f: Format) -> String {
        let mut out = Vec::new();
        t.write(f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_aligns_words_left_and_numbers_right() {
        assert_eq!(
            render(&sample(), Format::Table),
            "name         count  note\n\
             -----------  -----  ------\n\
             Ann             12  a, \"b\"\n\
             Bartholomew      3\n"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            render(&sample(), Format::Csv),
            "name,count,note\nAnn,12,\"a, \"\"b\"\"\"\nBartholomew,3,\n"
        );
    }

    #[test]
    fn json_keys_rows_by_column_and_keeps_nulls() {
        let back: Value = serde_json::from_str(&render(&sample(), Format::Json)).unwrap();
        assert_eq!(
            back,
            json!([
                {"name": "Ann", "count": 12, "note": "a, \"b\""},
                {"name": "Bartholomew", "count": 3, "note": null}
            ])
        );
    }
}
