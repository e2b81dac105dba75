//! Text form of the rule language: the parser (with line/column errors) and the printer.
//!
//! ```text
//! rule      := or
//! or        := and ("or" and)*
//! and       := not ("and" not)*
//! not       := "not" not | "(" rule ")" | predicate
//! predicate := operand ("=" | "!=" | "<" | "<=" | ">" | ">=") operand
//!            | operand "in" operand
//!            | operand "contains" operand
//!            | operand "starts_with" operand
//!            | operand "is" ["not"] "null"
//!            | operand "between" operand "and" operand
//! operand   := field | "now" [("+" | "-") span] | literal
//! field     := name ("." name)*              lifecycle, revenue, attr.industry
//! literal   := "text" | number | -number | true | false | 2025-01-31 | [literal, ...]
//! span      := digits ("h" | "d" | "w")       90d
//! ```

use std::fmt::{self, Write};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::ast::{CmpOp, Literal, Operand, Rule, Span, SpanUnit};

/// Longest rule text accepted, in bytes.
pub const MAX_RULE_BYTES: usize = 64 * 1024;
/// Deepest nesting of `not` and parentheses accepted. A chain (`a and b and c ...`) is one
/// level however long it is.
pub const MAX_DEPTH: usize = 32;
/// Most terms (comparisons, `in`, `contains`, ... ) accepted in one rule.
pub const MAX_TERMS: usize = 1_000;

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "starts_with",
    "is",
    "null",
    "between",
    "true",
    "false",
    "now",
];

/// Why a rule text could not be parsed: where, what was expected and what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found.
    pub found: String,
}

impl From<ParseError> for crate::Error {
    fn from(e: ParseError) -> Self {
        crate::Error::validation("rule", e.to_string())
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Text(String),
    Number(Decimal),
    Date(NaiveDate),
    Span(i64, SpanUnit),
    Cmp(CmpOp),
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
    Dot,
    Plus,
    Minus,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Name(n) => write!(f, "`{n}`"),
            Tok::Text(_) => f.write_str("a text literal"),
            Tok::Number(n) => write!(f, "number {n}"),
            Tok::Date(d) => write!(f, "date {d}"),
            Tok::Span(n, u) => write!(f, "duration {n}{}", u.letter()),
            Tok::Cmp(c) => write!(f, "`{}`", c.symbol()),
            Tok::Open => f.write_str("`(`"),
            Tok::Close => f.write_str("`)`"),
            Tok::OpenList => f.write_str("`[`"),
            Tok::CloseList => f.write_str("`]`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Dot => f.write_str("`.`"),
            Tok::Plus => f.write_str("`+`"),
            Tok::Minus => f.write_str("`-`"),
            Tok::End => f.write_str("the end of the rule"),
        }
    }
}

struct Lexed {
    tok: Tok,
    line: usize,
    column: usize,
}

fn lex(text: &str) -> Result<Vec<Lexed>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let err = |line, column, expected: &str, found: String| ParseError {
        line,
        column,
        expected: expected.to_string(),
        found,
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        let (start_line, start_col, start) = (line, col, i);
        let tok = match c {
            '(' => Tok::Open,
            ')' => Tok::Close,
            '[' => Tok::OpenList,
            ']' => Tok::CloseList,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '=' => Tok::Cmp(CmpOp::Eq),
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 1;
                Tok::Cmp(CmpOp::Ne)
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                if eq {
                    i += 1;
                }
                Tok::Cmp(match (c, eq) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    ('>', false) => CmpOp::Gt,
                    _ => CmpOp::Ge,
                })
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err(err(
                            start_line,
                            start_col,
                            "a closing `\"`",
                            "the end of the rule".into(),
                        ));
                    };
                    match ch {
                        '"' => break,
                        '\\' => {
                            i += 1;
                            match chars.get(i) {
                                Some('"') => s.push('"'),
                                Some('\\') => s.push('\\'),
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('u') if chars.get(i + 1) == Some(&'{') => {
                                    let close = chars[i + 2..].iter().position(|c| *c == '}');
                                    let hex: Option<String> =
                                        close.map(|n| chars[i + 2..i + 2 + n].iter().collect());
                                    let decoded = hex
                                        .as_deref()
                                        .filter(|h| !h.is_empty() && h.len() <= 6)
                                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                                        .and_then(char::from_u32);
                                    match (decoded, close) {
                                        (Some(ch), Some(n)) => {
                                            s.push(ch);
                                            i += n + 2;
                                        }
                                        _ => {
                                            return Err(err(
                                                line,
                                                col + (i - start),
                                                "a `\\u{...}` escape of a character",
                                                "an invalid escape".into(),
                                            ))
                                        }
                                    }
                                }
                                other => {
                                    return Err(err(
                                        line,
                                        col + (i - start),
                                        "an escape (\\\" \\\\ \\n \\t \\r \\u{...})",
                                        other.map_or("the end of the rule".into(), |c| {
                                            format!("`\\{c}`")
                                        }),
                                    ))
                                }
                            }
                        }
                        '\n' => {
                            return Err(err(
                                line,
                                col + (i - start),
                                "a closing `\"` on the same line",
                                "a line break".into(),
                            ))
                        }
                        ch => s.push(ch),
                    }
                    i += 1;
                }
                Tok::Text(s)
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while j < chars.len()
                    && (chars[j].is_ascii_digit() || chars[j] == '.' || chars[j] == '-')
                {
                    // A date has dashes at fixed places; a number has at most one dot.
                    if chars[j] == '-' && !(j - i == 4 || j - i == 7) {
                        break;
                    }
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let unit = chars.get(j).and_then(|u| match u {
                    'h' => Some(SpanUnit::Hours),
                    'd' => Some(SpanUnit::Days),
                    'w' => Some(SpanUnit::Weeks),
                    _ => None,
                });
                let ends = |k: usize| {
                    chars
                        .get(k)
                        .is_none_or(|c| !(c.is_alphanumeric() || *c == '_'))
                };
                let tok =
                    if word.len() == 10 && word.as_bytes()[4] == b'-' && word.as_bytes()[7] == b'-'
                    {
                        NaiveDate::parse_from_str(&word, "%Y-%m-%d")
                            .map(Tok::Date)
                            .map_err(|_| {
                                err(
                                    start_line,
                                    start_col,
                                    "a valid date YYYY-MM-DD",
                                    format!("`{word}`"),
                                )
                            })?
                    } else if word.contains('-') {
                        return Err(err(
                            start_line,
                            start_col,
                            "a number or a date YYYY-MM-DD",
                            format!("`{word}`"),
                        ));
                    } else if let (Some(u), true) = (unit, ends(j + 1)) {
                        let n: i64 = word.parse().map_err(|_| {
                            err(
                                start_line,
                                start_col,
                                "a whole number of hours, days or weeks",
                                format!("`{word}`"),
                            )
                        })?;
                        j += 1;
                        Tok::Span(n, u)
                    } else {
                        if !ends(j) {
                            return Err(err(
                                start_line,
                                start_col,
                                "a number",
                                format!("`{}`", chars[i..=j].iter().collect::<String>()),
                            ));
                        }
                        Decimal::from_str(&word).map(Tok::Number).map_err(|_| {
                            err(start_line, start_col, "a number", format!("`{word}`"))
                        })?
                    };
                i = j - 1;
                tok
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                i = j - 1;
                Tok::Name(word)
            }
            other => {
                return Err(err(
                    line,
                    col,
                    "an operand, operator or parenthesis",
                    format!("`{other}`"),
                ))
            }
        };
        i += 1;
        col += i - start;
        out.push(Lexed {
            tok,
            line: start_line,
            column: start_col,
        });
    }
    out.push(Lexed {
        tok: Tok::End,
        line,
        column: col,
    });
    Ok(out)
}

struct Parser {
    toks: Vec<Lexed>,
    pos: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn fail<T>(&self, expected: &str) -> Result<T, ParseError> {
        let here = &self.toks[self.pos];
        Err(ParseError {
            line: here.line,
            column: here.column,
            expected: expected.to_string(),
            found: here.tok.to_string(),
        })
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if t != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Tok::Name(n) if n == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(&format!("at most {MAX_DEPTH} levels of nesting"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Rule, ParseError> {
        let mut rules = vec![self.and()?];
        while self.keyword("or") {
            rules.push(self.and()?);
        }
        Ok(if rules.len() == 1 {
            rules.swap_remove(0)
        } else {
            Rule::Or { rules }
        })
    }

    fn and(&mut self) -> Result<Rule, ParseError> {
        let mut rules = vec![self.not()?];
        while self.keyword("and") {
            rules.push(self.not()?);
        }
        Ok(if rules.len() == 1 {
            rules.swap_remove(0)
        } else {
            Rule::And { rules }
        })
    }

    fn not(&mut self) -> Result<Rule, ParseError> {
        self.deeper()?;
        let rule = if self.keyword("not") {
            Rule::negate(self.not()?)
        } else if *self.peek() == Tok::Open {
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Tok::Close {
                self.pos -= 1;
                return self.fail("`)` or `and`/`or`");
            }
            inner
        } else {
            self.predicate()?
        };
        self.depth -= 1;
        Ok(rule)
    }

    fn predicate(&mut self) -> Result<Rule, ParseError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return self.fail(&format!("at most {MAX_TERMS} terms in a rule"));
        }
        let left = self.operand()?;
        if let Tok::Cmp(cmp) = *self.peek() {
            self.pos += 1;
            let right = self.operand()?;
            return Ok(Rule::Compare { left, cmp, right });
        }
        if self.keyword("in") {
            return Ok(Rule::In {
                item: left,
                set: self.operand()?,
            });
        }
        if self.keyword("contains") {
            return Ok(Rule::Contains {
                haystack: left,
                needle: self.operand()?,
            });
        }
        if self.keyword("starts_with") {
            return Ok(Rule::StartsWith {
                text: left,
                prefix: self.operand()?,
            });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return self.fail("`null`");
            }
            return Ok(Rule::IsNull {
                operand: left,
                negated,
            });
        }
        if self.keyword("between") {
            let low = self.operand()?;
            if !self.keyword("and") {
                return self.fail("`and` (between LOW and HIGH)");
            }
            let high = self.operand()?;
            return Ok(Rule::Between {
                operand: left,
                low,
                high,
            });
        }
        self.fail(
            "a comparison (= != < <= > >=), `in`, `contains`, `starts_with`, `is` or `between`",
        )
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        match self.peek().clone() {
            Tok::Name(n) if n == "now" => {
                self.pos += 1;
                let sign = match self.peek() {
                    Tok::Plus => 1,
                    Tok::Minus => -1,
                    _ => return Ok(Operand::Now { offset: Span::ZERO }),
                };
                self.pos += 1;
                match self.next() {
                    Tok::Span(n, unit) => Ok(Operand::Now {
                        offset: Span {
                            amount: sign * n,
                            unit,
                        },
                    }),
                    _ => {
                        self.pos -= 1;
                        self.fail("a duration such as 90d, 12h or 2w")
                    }
                }
            }
            Tok::Name(n) if n != "true" && n != "false" && KEYWORDS.contains(&n.as_str()) => {
                self.fail("an operand (a field, a literal or `now`)")
            }
            Tok::Name(_) => {
                let mut path = String::new();
                loop {
                    match self.next() {
                        Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) || path.is_empty() => {
                            path.push_str(&n)
                        }
                        _ => {
                            self.pos -= 1;
                            return self.fail("a field name after `.`");
                        }
                    }
                    if *self.peek() != Tok::Dot {
                        break;
                    }
                    self.pos += 1;
                    path.push('.');
                }
                Ok(match path.as_str() {
                    "true" => Operand::Literal(Literal::Bool(true)),
                    "false" => Operand::Literal(Literal::Bool(false)),
                    _ => Operand::Field(path),
                })
            }
            Tok::OpenList => {
                self.pos += 1;
                let mut items = Vec::new();
                if *self.peek() == Tok::CloseList {
                    self.pos += 1;
                    return Ok(Operand::Literal(Literal::List(items)));
                }
                loop {
                    match self.scalar()? {
                        Some(l) => items.push(l),
                        None => return self.fail("a text, number, date or boolean in the list"),
                    }
                    match self.next() {
                        Tok::Comma => continue,
                        Tok::CloseList => return Ok(Operand::Literal(Literal::List(items))),
                        _ => {
                            self.pos -= 1;
                            return self.fail("`,` or `]`");
                        }
                    }
                }
            }
            _ => match self.scalar()? {
                Some(l) => Ok(Operand::Literal(l)),
                None => self.fail("an operand (a field, a literal or `now`)"),
            },
        }
    }

    fn scalar(&mut self) -> Result<Option<Literal>, ParseError> {
        let lit = match self.peek().clone() {
            Tok::Text(s) => Literal::Text(s),
            Tok::Number(n) => Literal::Number(n),
            Tok::Date(d) => Literal::Date(d),
            Tok::Name(n) if n == "true" => Literal::Bool(true),
            Tok::Name(n) if n == "false" => Literal::Bool(false),
            Tok::Minus => {
                self.pos += 1;
                return match self.peek().clone() {
                    Tok::Number(n) => {
                        self.pos += 1;
                        Ok(Some(Literal::Number(-n)))
                    }
                    _ => self.fail("a number after `-`"),
                };
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(lit))
    }
}

/// The two largest rules the parser accepts, as text: the deepest (`MAX_DEPTH` levels of
/// nesting, two tree levels each) and the longest chain (`MAX_TERMS` terms). Adapters that
/// compile rules run both through their compiler on a small stack in their tests.
pub fn largest_rules() -> [String; 2] {
    let levels = MAX_DEPTH - 1;
    let mut deepest = "revenue > 1 or purchase_count > 2 and (".repeat(levels);
    deepest.push_str("\"vip\" in tags");
    deepest.push_str(&")".repeat(levels));
    let longest = vec!["revenue >= 1"; MAX_TERMS].join(" and ");
    [deepest, longest]
}

/// Parses a rule's text form.
pub fn parse(text: &str) -> Result<Rule, ParseError> {
    if text.len() > MAX_RULE_BYTES {
        return Err(ParseError {
            line: 1,
            column: 1,
            expected: format!("a rule of at most {MAX_RULE_BYTES} bytes"),
            found: format!("{} bytes", text.len()),
        });
    }
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    let rule = p.or()?;
    if *p.peek() != Tok::End {
        return p.fail("`and`, `or` or the end of the rule");
    }
    Ok(rule)
}

fn write_text(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_literal(out: &mut String, l: &Literal) {
    match l {
        Literal::Text(s) => write_text(out, s),
        Literal::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::Date(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Literal::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_literal(out, item);
            }
            out.push(']');
        }
    }
}

fn write_operand(out: &mut String, o: &Operand) {
    match o {
        Operand::Field(f) => out.push_str(f),
        Operand::Literal(l) => write_literal(out, l),
        Operand::Now { offset } => {
            out.push_str("now");
            if *offset != Span::ZERO {
                let sign = if offset.amount < 0 { '-' } else { '+' };
                let _ = write!(
                    out,
                    " {sign} {}{}",
                    offset.amount.unsigned_abs(),
                    offset.unit.letter()
                );
            }
        }
    }
}

fn write_rule(out: &mut String, r: &Rule) {
    // Parentheses exactly where re-parsing would otherwise build another tree.
    let child = |out: &mut String, r: &Rule, wrap: bool| {
        if wrap {
            out.push('(');
            write_rule(out, r);
            out.push(')');
        } else {
            write_rule(out, r);
        }
    };
    match r {
        Rule::And { rules } => {
            for (i, term) in rules.iter().enumerate() {
                if i > 0 {
                    out.push_str(" and ");
                }
                child(
                    out,
                    term,
                    matches!(term, Rule::Or { .. } | Rule::And { .. }),
                );
            }
        }
        Rule::Or { rules } => {
            for (i, term) in rules.iter().enumerate() {
                if i > 0 {
                    out.push_str(" or ");
                }
                child(out, term, matches!(term, Rule::Or { .. }));
            }
        }
        Rule::Not { rule } => {
            out.push_str("not ");
            child(
                out,
                rule,
                matches!(**rule, Rule::Or { .. } | Rule::And { .. }),
            );
        }
        Rule::Compare { left, cmp, right } => {
            write_operand(out, left);
            let _ = write!(out, " {} ", cmp.symbol());
            write_operand(out, right);
        }
        Rule::In { item, set } => {
            write_operand(out, item);
            out.push_str(" in ");
            write_operand(out, set);
        }
        Rule::Contains { haystack, needle } => {
            write_operand(out, haystack);
            out.push_str(" contains ");
            write_operand(out, needle);
        }
        Rule::StartsWith { text, prefix } => {
            write_operand(out, text);
            out.push_str(" starts_with ");
            write_operand(out, prefix);
        }
        Rule::IsNull { operand, negated } => {
            write_operand(out, operand);
            out.push_str(if *negated { " is not null" } else { " is null" });
        }
        Rule::Between { operand, low, high } => {
            write_operand(out, operand);
            out.push_str(" between ");
            write_operand(out, low);
            out.push_str(" and ");
            write_operand(out, high);
        }
    }
}

impl fmt::Display for Rule {
    /// The canonical text form: `parse(&rule.to_string()) == Ok(rule)` for every rule whose
    /// field names are names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_rule(&mut out, self);
        f.write_str(&out)
    }
}

impl FromStr for Rule {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse(s)
    }
}
