//! The rule language's syntax tree.
//!
//! A chain such as `a and b and c` is one [`Rule::And`] node with three terms, so a tree's
//! depth grows with nesting (parentheses and `not`), never with the length of a chain; the
//! parser bounds the nesting ([`MAX_DEPTH`](super::MAX_DEPTH)) and the number of terms
//! ([`MAX_TERMS`](super::MAX_TERMS)), so every recursive walk of a rule has a small,
//! fixed bound on its stack.
//!
//! A rule's serde form is its canonical text (a JSON string, for example), read back
//! through the parser: whatever was stored reads back within the same limits.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A rule: a boolean expression over a customer, its profile and its value scores.
///
/// Serialised as its canonical text ([`Rule`]'s `Display`) and deserialised through
/// [`parse`](super::parse), so a stored rule is bounded like a typed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every term holds (two or more terms; see [`Rule::and`]).
    And {
        /// The terms, in order.
        rules: Vec<Rule>,
    },
    /// At least one term holds (two or more terms; see [`Rule::or`]).
    Or {
        /// The terms, in order.
        rules: Vec<Rule>,
    },
    /// The inner rule does not hold.
    Not {
        /// The negated rule.
        rule: Box<Rule>,
    },
    /// `left <op> right`.
    Compare {
        /// Left operand.
        left: Operand,
        /// The comparison.
        cmp: CmpOp,
        /// Right operand.
        right: Operand,
    },
    /// `item in set`: membership in a list literal or a list field.
    In {
        /// The value looked for.
        item: Operand,
        /// The list.
        set: Operand,
    },
    /// `text contains needle` (substring), or `list contains item`.
    Contains {
        /// The text or list searched.
        haystack: Operand,
        /// What is looked for.
        needle: Operand,
    },
    /// `text starts_with prefix`.
    StartsWith {
        /// The text.
        text: Operand,
        /// The prefix.
        prefix: Operand,
    },
    /// `operand is null` / `operand is not null`.
    IsNull {
        /// The operand tested.
        operand: Operand,
        /// `is not null`.
        negated: bool,
    },
    /// `operand between low and high` (both ends included).
    Between {
        /// The operand tested.
        operand: Operand,
        /// Lower bound.
        low: Operand,
        /// Upper bound.
        high: Operand,
    },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `ordering` (left compared to right) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }
}

/// An operand: a field, a literal, or a time relative to now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// A field by name (`lifecycle`, `revenue`, `attr.industry`).
    Field(String),
    /// A literal value.
    Literal(Literal),
    /// `now`, `now - 90d` or `now + 2w`: an instant relative to the evaluation time.
    Now {
        /// Offset from now (negative: in the past).
        offset: Span,
    },
}

/// A literal value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Literal {
    /// `"text"`.
    Text(String),
    /// `42`, `-3.5`.
    Number(Decimal),
    /// `true`, `false`.
    Bool(bool),
    /// `2025-01-31`.
    Date(NaiveDate),
    /// `["a", "b"]`.
    List(Vec<Literal>),
}

/// A signed length of time written with a unit (`90d`, `12h`, `2w`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// The amount (negative: before now).
    pub amount: i64,
    /// The unit.
    pub unit: SpanUnit,
}

impl Span {
    /// No offset.
    pub const ZERO: Span = Span {
        amount: 0,
        unit: SpanUnit::Days,
    };

    /// The span in microseconds (saturating).
    pub fn micros(self) -> i64 {
        let per = match self.unit {
            SpanUnit::Hours => 3_600_000_000i64,
            SpanUnit::Days => 86_400_000_000,
            SpanUnit::Weeks => 604_800_000_000,
        };
        self.amount.saturating_mul(per)
    }
}

/// The unit of a [`Span`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanUnit {
    /// `h`
    Hours,
    /// `d`
    Days,
    /// `w`
    Weeks,
}

impl SpanUnit {
    /// The unit's letter.
    pub fn letter(self) -> char {
        match self {
            SpanUnit::Hours => 'h',
            SpanUnit::Days => 'd',
            SpanUnit::Weeks => 'w',
        }
    }
}

impl Rule {
    /// `left and right`: a chain grows by one term (`Rule::and(Rule::and(a, b), c)` is the
    /// chain `a and b and c`, as parsed), so chains built in a loop stay shallow.
    pub fn and(left: Rule, right: Rule) -> Rule {
        let mut rules = match left {
            Rule::And { rules } => rules,
            other => vec![other],
        };
        rules.push(right);
        Rule::And { rules }
    }

    /// `left or right`, growing a chain like [`Rule::and`].
    pub fn or(left: Rule, right: Rule) -> Rule {
        let mut rules = match left {
            Rule::Or { rules } => rules,
            other => vec![other],
        };
        rules.push(right);
        Rule::Or { rules }
    }

    /// Checks that the rule can be stored and read back unchanged: at most
    /// [`MAX_TERMS`](super::MAX_TERMS) terms, nesting within
    /// [`MAX_DEPTH`](super::MAX_DEPTH), every `and`/`or` with two or more terms, list
    /// literals holding only scalars, and a canonical text of at most
    /// [`MAX_RULE_BYTES`](super::MAX_RULE_BYTES) that parses back to this very rule (field
    /// names must be names). Errors are validation errors on `rule` naming the limit.
    ///
    /// The walk that checks the size is iterative, so a tree of any depth built by hand
    /// is refused without exhausting the stack; [`FieldSchema::check`](super::FieldSchema)
    /// (and so every operation taking a rule) runs this first.
    pub fn validate(&self) -> Result<(), Error> {
        use super::{MAX_DEPTH, MAX_RULE_BYTES, MAX_TERMS};
        // A parsed rule's tree is at most two nodes deeper per level of nesting (an `or`
        // holding an `and`), plus the chain at the top.
        let max_tree = 2 * MAX_DEPTH + 2;
        let mut terms = 0usize;
        let mut stack: Vec<(&Rule, usize)> = vec![(self, 1)];
        while let Some((rule, depth)) = stack.pop() {
            if depth > max_tree {
                return Err(Error::validation(
                    "rule",
                    format!("nests deeper than the limit of {MAX_DEPTH} levels"),
                ));
            }
            match rule {
                Rule::And { rules } | Rule::Or { rules } => {
                    if rules.len() < 2 {
                        return Err(Error::validation(
                            "rule",
                            "an `and` or `or` needs two or more terms",
                        ));
                    }
                    stack.extend(rules.iter().map(|r| (r, depth + 1)));
                }
                Rule::Not { rule } => stack.push((rule, depth + 1)),
                leaf => {
                    terms += 1;
                    if terms > MAX_TERMS {
                        return Err(Error::validation(
                            "rule",
                            format!("has more than the limit of {MAX_TERMS} terms"),
                        ));
                    }
                    for operand in leaf.operands() {
                        let Operand::Literal(literal) = operand else {
                            continue;
                        };
                        let items = match literal {
                            Literal::List(items) => items.as_slice(),
                            single => std::slice::from_ref(single),
                        };
                        for item in items {
                            match item {
                                Literal::List(_) => return Err(Error::validation(
                                    "rule",
                                    "a list literal holds only texts, numbers, dates and booleans",
                                )),
                                // No store keeps a NUL in text; refused alike everywhere.
                                Literal::Text(t) if t.contains('\0') => {
                                    return Err(Error::validation(
                                        "rule",
                                        "a text literal may not contain NUL",
                                    ))
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        let text = self.to_string();
        if text.len() > MAX_RULE_BYTES {
            return Err(Error::validation(
                "rule",
                format!(
                    "its text is {} bytes, beyond the limit of {MAX_RULE_BYTES}",
                    text.len()
                ),
            ));
        }
        match super::parse(&text) {
            Ok(back) if back == *self => Ok(()),
            Ok(_) => Err(Error::validation(
                "rule",
                format!("does not read back unchanged from its text {text:?}"),
            )),
            Err(e) => Err(Error::validation(
                "rule",
                format!("its text {text:?} does not parse: {e}"),
            )),
        }
    }

    /// The operands of a term (none for `and`, `or` and `not`).
    fn operands(&self) -> Vec<&Operand> {
        match self {
            Rule::And { .. } | Rule::Or { .. } | Rule::Not { .. } => Vec::new(),
            Rule::Compare { left, right, .. } => vec![left, right],
            Rule::In { item, set } => vec![item, set],
            Rule::Contains { haystack, needle } => vec![haystack, needle],
            Rule::StartsWith { text, prefix } => vec![text, prefix],
            Rule::IsNull { operand, .. } => vec![operand],
            Rule::Between { operand, low, high } => vec![operand, low, high],
        }
    }

    /// `not rule`.
    pub fn negate(rule: Rule) -> Rule {
        Rule::Not {
            rule: Box::new(rule),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}
