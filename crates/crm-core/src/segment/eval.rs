//! In-memory evaluation: the reference semantics every storage adapter's compiled rules
//! must match.
//!
//! Missing values are `null`, and logic is three-valued as in SQL: a comparison with null is
//! unknown, `not unknown` is unknown, `false and unknown` is false, `true or unknown` is true;
//! a customer is a member only when the rule is true. `x in []` is false, even for null `x`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::ast::{CmpOp, Literal, Operand, Rule};
use super::schema::{AttrType, Builtin, FieldSchema, FieldSource};
use crate::clv::{ValueClasses, ValueScores};
use crate::customer::Customer;
use crate::error::Error;
use crate::id::CustomerId;
use crate::profile::Profile;
use crate::value::{AttrValue, Currency, Money};

/// What a rule is evaluated against.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The customer record.
    pub customer: &'a Customer,
    /// Its profile.
    pub profile: &'a Profile,
    /// Its value scores, if scored.
    pub scores: Option<&'a ValueScores>,
    /// Its value classes (RFM, ABC), if classified.
    pub classes: Option<&'a ValueClasses>,
    /// Its accounts and deals (`None` reads as [`SalesFacts::default`]).
    pub sales: Option<&'a SalesFacts>,
}

/// What the rule language reads of the sales side for one customer: the fields
/// `contacts_count`, `account.id`, `account.revenue`, `open_deals`, `open_deal_amount` and
/// `deals.<stage>.amount`. A [`Subject`] without them reads as [`SalesFacts::default`]:
/// no contacts, no account, no open deals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SalesFacts {
    /// How many people are related to the customer as an organisation.
    pub contacts: u64,
    /// The person's primary account, if it has one.
    pub account: Option<CustomerId>,
    /// That account's revenue per currency (its profile's).
    pub account_revenue: BTreeMap<Currency, Decimal>,
    /// The open deals with the customer as their account: stage key and amount.
    pub open_deals: Vec<(String, Money)>,
}

/// A value during evaluation.
#[derive(Clone, Debug, PartialEq)]
enum Val<'a> {
    Null,
    Text(&'a str),
    OwnedText(String),
    Num(Decimal),
    /// A binary floating-point figure (probabilities, expectations): compared with numbers
    /// in double precision, as SQL compares REAL values.
    Float(f64),
    Bool(bool),
    /// Microseconds since the Unix epoch.
    Time(i64),
    List(Vec<&'a str>),
}

impl Val<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            Val::Text(t) => Some(t),
            Val::OwnedText(t) => Some(t),
            _ => None,
        }
    }

    fn cmp(&self, other: &Val<'_>) -> Option<Ordering> {
        match (self, other) {
            (Val::Num(a), Val::Num(b)) => Some(a.cmp(b)),
            (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
            (Val::Float(a), Val::Num(b)) => a.partial_cmp(&b.to_f64()?),
            (Val::Num(a), Val::Float(b)) => a.to_f64()?.partial_cmp(b),
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (Val::Time(a), Val::Time(b)) => Some(a.cmp(b)),
            (a, b) => Some(a.text()?.cmp(b.text()?)),
        }
    }
}

/// Whole days from `then` to `now`, truncated toward zero (as SQL integer division does).
pub fn whole_days(now_micros: i64, then_micros: i64) -> i64 {
    now_micros.saturating_sub(then_micros) / 86_400_000_000
}

fn date_micros(d: chrono::NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

/// A rule checked against a schema and resolved for fast repeated evaluation.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    root: Node,
    schema: FieldSchema,
    /// Whether it reads a field of [`SalesFacts`].
    sales: bool,
}

#[derive(Clone, Debug)]
enum Arg {
    Field(FieldSource),
    Lit(Lit),
    Now(i64),
}

#[derive(Clone, Debug)]
enum Lit {
    Text(String),
    Num(Decimal),
    Bool(bool),
    Time(i64),
}

#[derive(Clone, Debug)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp(Arg, CmpOp, Arg),
    InList(Arg, Vec<Lit>),
    InField(Arg, Arg),
    Contains(Arg, Arg),
    StartsWith(Arg, Arg),
    IsNull(Arg, bool),
    Between(Arg, Arg, Arg),
}

fn lit(l: &Literal) -> Lit {
    match l {
        Literal::Text(t) => Lit::Text(t.clone()),
        Literal::Number(n) => Lit::Num(*n),
        Literal::Bool(b) => Lit::Bool(*b),
        Literal::Date(d) => Lit::Time(date_micros(*d)),
        // Lists only stand on the right of `in`, which is compiled separately.
        Literal::List(_) => Lit::Bool(false),
    }
}

impl CompiledRule {
    /// Type-checks `rule` against `schema` and compiles it.
    pub fn new(rule: &Rule, schema: &FieldSchema) -> Result<Self, Error> {
        schema.check(rule)?;
        let root = compile(rule, schema);
        Ok(CompiledRule {
            sales: reads_sales(&root),
            root,
            schema: schema.clone(),
        })
    }

    /// Whether the rule reads accounts or deals: without, a [`Subject`]'s `sales` makes no
    /// difference, and callers need not read [`SalesFacts`].
    pub fn reads_sales(&self) -> bool {
        self.sales
    }

    /// Whether the subject is a member at `now` (the rule is true, not false or unknown).
    pub fn matches(&self, subject: &Subject<'_>, now: DateTime<Utc>) -> bool {
        let ctx = Ctx {
            subject,
            now: now.timestamp_micros(),
            schema: &self.schema,
        };
        ctx.eval(&self.root) == Some(true)
    }

    /// The three-valued result: `Some(true)`, `Some(false)` or `None` (unknown).
    pub fn evaluate(&self, subject: &Subject<'_>, now: DateTime<Utc>) -> Option<bool> {
        let ctx = Ctx {
            subject,
            now: now.timestamp_micros(),
            schema: &self.schema,
        };
        ctx.eval(&self.root)
    }
}

/// Whether a compiled rule reads a field of [`SalesFacts`] (rules are at most
/// [`MAX_DEPTH`](super::MAX_DEPTH) deep, so the walk is shallow).
fn reads_sales(node: &Node) -> bool {
    let field = |a: &Arg| {
        matches!(
            a,
            Arg::Field(
                FieldSource::StageAmount(_)
                    | FieldSource::Builtin(
                        Builtin::ContactsCount
                            | Builtin::AccountId
                            | Builtin::AccountRevenue
                            | Builtin::OpenDeals
                            | Builtin::OpenDealAmount
                    )
            )
        )
    };
    match node {
        Node::And(nodes) | Node::Or(nodes) => nodes.iter().any(reads_sales),
        Node::Not(inner) => reads_sales(inner),
        Node::Cmp(a, _, b)
        | Node::InField(a, b)
        | Node::Contains(a, b)
        | Node::StartsWith(a, b) => field(a) || field(b),
        Node::InList(a, _) | Node::IsNull(a, _) => field(a),
        Node::Between(a, b, c) => field(a) || field(b) || field(c),
    }
}

fn arg(o: &Operand, schema: &FieldSchema) -> Arg {
    match o {
        Operand::Field(name) => match schema.resolve(name) {
            Some((source, _)) => Arg::Field(source),
            None => Arg::Lit(Lit::Bool(false)),
        },
        Operand::Literal(l) => Arg::Lit(lit(l)),
        Operand::Now { offset } => Arg::Now(offset.micros()),
    }
}

fn compile(rule: &Rule, s: &FieldSchema) -> Node {
    match rule {
        Rule::And { rules } => Node::And(rules.iter().map(|r| compile(r, s)).collect()),
        Rule::Or { rules } => Node::Or(rules.iter().map(|r| compile(r, s)).collect()),
        Rule::Not { rule } => Node::Not(Box::new(compile(rule, s))),
        Rule::Compare { left, cmp, right } => Node::Cmp(arg(left, s), *cmp, arg(right, s)),
        Rule::In { item, set } => match set {
            Operand::Literal(Literal::List(items)) => {
                Node::InList(arg(item, s), items.iter().map(lit).collect())
            }
            other => Node::InField(arg(item, s), arg(other, s)),
        },
        Rule::Contains { haystack, needle } => Node::Contains(arg(haystack, s), arg(needle, s)),
        Rule::StartsWith { text, prefix } => Node::StartsWith(arg(text, s), arg(prefix, s)),
        Rule::IsNull { operand, negated } => Node::IsNull(arg(operand, s), *negated),
        Rule::Between { operand, low, high } => {
            Node::Between(arg(operand, s), arg(low, s), arg(high, s))
        }
    }
}

struct Ctx<'a, 'b> {
    subject: &'b Subject<'a>,
    now: i64,
    schema: &'b FieldSchema,
}

fn count(n: u64) -> Val<'static> {
    Val::Num(Decimal::from(n))
}

fn time(t: Option<DateTime<Utc>>) -> Val<'static> {
    t.map_or(Val::Null, |t| Val::Time(t.timestamp_micros()))
}

fn float(v: f64) -> Val<'static> {
    if v.is_finite() {
        Val::Float(v)
    } else {
        Val::Null
    }
}

impl<'a> Ctx<'a, '_> {
    fn value(&self, a: &Arg) -> Val<'a> {
        match a {
            Arg::Lit(Lit::Text(t)) => Val::OwnedText(t.clone()),
            Arg::Lit(Lit::Num(n)) => Val::Num(*n),
            Arg::Lit(Lit::Bool(b)) => Val::Bool(*b),
            Arg::Lit(Lit::Time(t)) => Val::Time(*t),
            Arg::Now(offset) => Val::Time(self.now.saturating_add(*offset)),
            Arg::Field(FieldSource::Builtin(b)) => self.builtin(*b),
            Arg::Field(FieldSource::Attr(key, ty)) => self.attr(key, *ty),
            Arg::Field(FieldSource::StageAmount(stage)) => self.stage_amount(stage),
        }
    }

    fn builtin(&self, b: Builtin) -> Val<'a> {
        let c: &'a Customer = self.subject.customer;
        let p: &'a Profile = self.subject.profile;
        let days = |t: Option<DateTime<Utc>>| {
            t.map_or(Val::Null, |t| {
                Val::Num(Decimal::from(whole_days(self.now, t.timestamp_micros())))
            })
        };
        match b {
            Builtin::Id => Val::OwnedText(c.id.to_string()),
            Builtin::Name => Val::Text(c.name.as_str()),
            Builtin::Kind => Val::Text(c.kind.as_str()),
            Builtin::Lifecycle => Val::Text(c.lifecycle.as_str()),
            Builtin::Owner => c.owner.map_or(Val::Null, |o| Val::OwnedText(o.to_string())),
            Builtin::Team => c.team.map_or(Val::Null, |t| Val::OwnedText(t.to_string())),
            Builtin::Tags => Val::List(c.tags.iter().map(|t| t.as_str()).collect()),
            Builtin::CreatedAt => Val::Time(c.created_at.timestamp_micros()),
            Builtin::UpdatedAt => Val::Time(c.updated_at.timestamp_micros()),
            Builtin::ConsentEmail => Val::Bool(c.consent.email),
            Builtin::ConsentSms => Val::Bool(c.consent.sms),
            Builtin::ConsentPhone => Val::Bool(c.consent.phone),
            Builtin::InteractionCount => count(p.interaction_count),
            Builtin::PurchaseCount => count(p.purchase_count),
            Builtin::ComplaintCount => count(p.complaint_count),
            Builtin::ServiceRequestCount => count(p.service_request_count),
            Builtin::Revenue => Val::Num(p.revenue_in(self.schema.currency)),
            Builtin::FirstContactAt => time(p.first_contact_at),
            Builtin::LastContactAt => time(p.last_contact_at),
            Builtin::FirstPurchaseAt => time(p.first_purchase_at),
            Builtin::LastPurchaseAt => time(p.last_purchase_at),
            Builtin::DaysSinceLastPurchase => days(p.last_purchase_at),
            Builtin::DaysSinceLastContact => days(p.last_contact_at),
            Builtin::DaysSinceFirstPurchase => days(p.first_purchase_at),
            Builtin::PAlive => self.subject.scores.map_or(Val::Null, |s| float(s.p_alive)),
            Builtin::ExpectedPurchases90d => self
                .subject
                .scores
                .map_or(Val::Null, |s| float(s.expected_purchases_90d)),
            Builtin::PredictedClv => self
                .subject
                .scores
                .filter(|s| s.predicted_clv.currency() == self.schema.currency)
                .map_or(Val::Null, |s| Val::Num(s.predicted_clv.amount())),
            Builtin::RScore => self
                .subject
                .classes
                .map_or(Val::Null, |c| Val::Num(Decimal::from(c.r))),
            Builtin::FScore => self
                .subject
                .classes
                .map_or(Val::Null, |c| Val::Num(Decimal::from(c.f))),
            Builtin::MScore => self
                .subject
                .classes
                .map_or(Val::Null, |c| Val::Num(Decimal::from(c.m))),
            Builtin::RfmSegment => self
                .subject
                .classes
                .map_or(Val::Null, |c| Val::Text(c.segment.as_str())),
            Builtin::AbcClass => self
                .subject
                .classes
                .map_or(Val::Null, |c| Val::Text(c.abc.as_str())),
            Builtin::ContactsCount => count(self.sales().contacts),
            Builtin::AccountId => self
                .sales()
                .account
                .map_or(Val::Null, |a| Val::OwnedText(a.to_string())),
            Builtin::AccountRevenue => {
                let facts = self.sales();
                facts.account.map_or(Val::Null, |_| {
                    let revenue = facts.account_revenue.get(&self.schema.currency);
                    Val::Num(revenue.copied().unwrap_or_default())
                })
            }
            Builtin::OpenDeals => count(self.sales().open_deals.len() as u64),
            Builtin::OpenDealAmount => self
                .open_amounts(None)
                .try_fold(Decimal::ZERO, |sum, a| sum.checked_add(a))
                .map_or(Val::Null, Val::Num),
        }
    }

    fn sales(&self) -> &'a SalesFacts {
        static NONE: SalesFacts = SalesFacts {
            contacts: 0,
            account: None,
            account_revenue: BTreeMap::new(),
            open_deals: Vec::new(),
        };
        self.subject.sales.unwrap_or(&NONE)
    }

    /// The amounts of the open deals in the schema's currency, of one stage or all.
    fn open_amounts<'s>(&'s self, stage: Option<&'s str>) -> impl Iterator<Item = Decimal> + 's {
        let currency = self.schema.currency;
        self.sales()
            .open_deals
            .iter()
            .filter(move |(s, m)| m.currency() == currency && stage.is_none_or(|k| k == s))
            .map(|(_, m)| m.amount())
    }

    fn stage_amount(&self, stage: &str) -> Val<'a> {
        self.open_amounts(Some(stage))
            .max()
            .map_or(Val::Null, Val::Num)
    }

    fn attr(&self, key: &str, ty: AttrType) -> Val<'a> {
        let c: &'a Customer = self.subject.customer;
        match (c.attributes.get(key), ty) {
            (Some(AttrValue::Text(t)), AttrType::Text) => Val::Text(t),
            (Some(AttrValue::Number(n)), AttrType::Number) => Val::Num(*n),
            (Some(AttrValue::Bool(b)), AttrType::Bool) => Val::Bool(*b),
            (Some(AttrValue::Date(d)), AttrType::Date) => Val::Time(date_micros(*d)),
            (Some(AttrValue::Money(m)), AttrType::Money)
                if m.currency() == self.schema.currency =>
            {
                Val::Num(m.amount())
            }
            (Some(AttrValue::TextList(items)), AttrType::TextList) => {
                Val::List(items.iter().map(String::as_str).collect())
            }
            (_, AttrType::TextList) => Val::List(Vec::new()),
            // Missing, or stored with another type than the schema says: null.
            _ => Val::Null,
        }
    }

    fn eval(&self, n: &Node) -> Option<bool> {
        match n {
            // Three-valued, as in SQL: false wins an `and`, true wins an `or`, else
            // unknown stays unknown.
            Node::And(terms) => {
                let mut all = Some(true);
                for t in terms {
                    match self.eval(t) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => all = None,
                    }
                }
                all
            }
            Node::Or(terms) => {
                let mut any = Some(false);
                for t in terms {
                    match self.eval(t) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => any = None,
                    }
                }
                any
            }
            Node::Not(a) => self.eval(a).map(|v| !v),
            Node::Cmp(a, op, b) => {
                let (x, y) = (self.value(a), self.value(b));
                if x == Val::Null || y == Val::Null {
                    return None;
                }
                x.cmp(&y).map(|o| op.holds(o))
            }
            Node::Between(a, lo, hi) => {
                let x = self.value(a);
                let ge = self.compare(&x, &self.value(lo), CmpOp::Ge);
                let le = self.compare(&x, &self.value(hi), CmpOp::Le);
                match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }
            }
            Node::InList(a, items) => {
                if items.is_empty() {
                    return Some(false);
                }
                let x = self.value(a);
                if x == Val::Null {
                    return None;
                }
                let found = items
                    .iter()
                    .any(|l| x.cmp(&self.value(&Arg::Lit(l.clone()))) == Some(Ordering::Equal));
                Some(found)
            }
            Node::InField(a, list) | Node::Contains(list, a) if self.is_list(list) => {
                let x = self.value(a);
                let needle = x.text()?;
                match self.value(list) {
                    Val::List(items) => Some(items.contains(&needle)),
                    _ => None,
                }
            }
            Node::InField(..) => None,
            Node::Contains(h, needle) => {
                let (h, n) = (self.value(h), self.value(needle));
                Some(h.text()?.contains(n.text()?))
            }
            Node::StartsWith(t, prefix) => {
                let (t, p) = (self.value(t), self.value(prefix));
                Some(t.text()?.starts_with(p.text()?))
            }
            Node::IsNull(a, negated) => Some((self.value(a) == Val::Null) != *negated),
        }
    }

    fn is_list(&self, a: &Arg) -> bool {
        matches!(
            a,
            Arg::Field(FieldSource::Builtin(Builtin::Tags))
                | Arg::Field(FieldSource::Attr(_, AttrType::TextList))
        )
    }

    fn compare(&self, x: &Val<'_>, y: &Val<'_>, op: CmpOp) -> Option<bool> {
        if *x == Val::Null || *y == Val::Null {
            return None;
        }
        x.cmp(y).map(|o| op.holds(o))
    }
}
