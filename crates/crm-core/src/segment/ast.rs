//! The rule language's syntax tree (its serde form is the stored form).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A rule: a boolean expression over a customer, its profile and its value scores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Rule {
    /// Both hold.
    And {
        /// Left side.
        left: Box<Rule>,
        /// Right side.
        right: Box<Rule>,
    },
    /// Either holds.
    Or {
        /// Left side.
        left: Box<Rule>,
        /// Right side.
        right: Box<Rule>,
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
    /// `left and right`.
    pub fn and(left: Rule, right: Rule) -> Rule {
        Rule::And {
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    /// `left or right`.
    pub fn or(left: Rule, right: Rule) -> Rule {
        Rule::Or {
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    /// `not rule`.
    pub fn negate(rule: Rule) -> Rule {
        Rule::Not {
            rule: Box::new(rule),
        }
    }
}
