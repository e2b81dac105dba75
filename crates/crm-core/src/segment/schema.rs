//! Fields a rule may use, their types, and the type checker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ast::{Literal, Operand, Rule};
use crate::error::Error;
use crate::value::Currency;

/// The type of a field or literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text.
    Text,
    /// An exact number.
    Number,
    /// True or false.
    Bool,
    /// A calendar date (compares with instants as midnight UTC).
    Date,
    /// An instant.
    Timestamp,
    /// A list of texts.
    TextList,
}

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Timestamp => "timestamp",
            FieldType::TextList => "text list",
        }
    }

    fn is_time(self) -> bool {
        matches!(self, FieldType::Date | FieldType::Timestamp)
    }

    /// Whether values of the two types can be compared with `<`, `=`...
    fn comparable(self, other: FieldType) -> bool {
        self == other && self != FieldType::TextList || self.is_time() && other.is_time()
    }
}

/// A built-in field: where its value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Builtin {
    /// The `id` field: the customer's id as text.
    Id,
    /// The `name` field.
    Name,
    /// The `kind` field.
    Kind,
    /// The `lifecycle` field.
    Lifecycle,
    /// The `owner` field.
    Owner,
    /// The `team` field.
    Team,
    /// The `tags` field.
    Tags,
    /// The `created_at` field.
    CreatedAt,
    /// The `updated_at` field.
    UpdatedAt,
    /// The `consent.email` field.
    ConsentEmail,
    /// The `consent.sms` field.
    ConsentSms,
    /// The `consent.phone` field.
    ConsentPhone,
    /// The `interaction_count` field.
    InteractionCount,
    /// The `purchase_count` field.
    PurchaseCount,
    /// The `complaint_count` field.
    ComplaintCount,
    /// The `service_request_count` field.
    ServiceRequestCount,
    /// The `revenue` field.
    Revenue,
    /// The `first_contact_at` field.
    FirstContactAt,
    /// The `last_contact_at` field.
    LastContactAt,
    /// The `first_purchase_at` field.
    FirstPurchaseAt,
    /// The `last_purchase_at` field.
    LastPurchaseAt,
    /// The `days_since_last_purchase` field.
    DaysSinceLastPurchase,
    /// The `days_since_last_contact` field.
    DaysSinceLastContact,
    /// The `days_since_first_purchase` field.
    DaysSinceFirstPurchase,
    /// The `p_alive` field.
    PAlive,
    /// The `expected_purchases_90d` field.
    ExpectedPurchases90d,
    /// The `predicted_clv` field.
    PredictedClv,
    /// The `r_score` field.
    RScore,
    /// The `f_score` field.
    FScore,
    /// The `m_score` field.
    MScore,
    /// The `rfm_segment` field.
    RfmSegment,
    /// The `abc_class` field.
    AbcClass,
    /// The `contacts_count` field: how many people are related to the customer as an
    /// organisation.
    ContactsCount,
    /// The `account.id` field: the id (as text) of the person's primary account.
    AccountId,
    /// The `account.revenue` field: the revenue of the person's primary account.
    AccountRevenue,
    /// The `open_deals` field: how many open deals have the customer as their account.
    OpenDeals,
    /// The `open_deal_amount` field: the sum of those deals' amounts in the schema's
    /// currency.
    OpenDealAmount,
}

/// Every built-in field: name, source, type.
pub const BUILTINS: &[(&str, Builtin, FieldType)] = &[
    ("id", Builtin::Id, FieldType::Text),
    ("name", Builtin::Name, FieldType::Text),
    ("kind", Builtin::Kind, FieldType::Text),
    ("lifecycle", Builtin::Lifecycle, FieldType::Text),
    ("owner", Builtin::Owner, FieldType::Text),
    ("team", Builtin::Team, FieldType::Text),
    ("tags", Builtin::Tags, FieldType::TextList),
    ("created_at", Builtin::CreatedAt, FieldType::Timestamp),
    ("updated_at", Builtin::UpdatedAt, FieldType::Timestamp),
    ("consent.email", Builtin::ConsentEmail, FieldType::Bool),
    ("consent.sms", Builtin::ConsentSms, FieldType::Bool),
    ("consent.phone", Builtin::ConsentPhone, FieldType::Bool),
    (
        "interaction_count",
        Builtin::InteractionCount,
        FieldType::Number,
    ),
    ("purchase_count", Builtin::PurchaseCount, FieldType::Number),
    (
        "complaint_count",
        Builtin::ComplaintCount,
        FieldType::Number,
    ),
    (
        "service_request_count",
        Builtin::ServiceRequestCount,
        FieldType::Number,
    ),
    ("revenue", Builtin::Revenue, FieldType::Number),
    (
        "first_contact_at",
        Builtin::FirstContactAt,
        FieldType::Timestamp,
    ),
    (
        "last_contact_at",
        Builtin::LastContactAt,
        FieldType::Timestamp,
    ),
    (
        "first_purchase_at",
        Builtin::FirstPurchaseAt,
        FieldType::Timestamp,
    ),
    (
        "last_purchase_at",
        Builtin::LastPurchaseAt,
        FieldType::Timestamp,
    ),
    (
        "days_since_last_purchase",
        Builtin::DaysSinceLastPurchase,
        FieldType::Number,
    ),
    (
        "days_since_last_contact",
        Builtin::DaysSinceLastContact,
        FieldType::Number,
    ),
    (
        "days_since_first_purchase",
        Builtin::DaysSinceFirstPurchase,
        FieldType::Number,
    ),
    ("p_alive", Builtin::PAlive, FieldType::Number),
    (
        "expected_purchases_90d",
        Builtin::ExpectedPurchases90d,
        FieldType::Number,
    ),
    ("predicted_clv", Builtin::PredictedClv, FieldType::Number),
    ("r_score", Builtin::RScore, FieldType::Number),
    ("f_score", Builtin::FScore, FieldType::Number),
    ("m_score", Builtin::MScore, FieldType::Number),
    ("rfm_segment", Builtin::RfmSegment, FieldType::Text),
    ("abc_class", Builtin::AbcClass, FieldType::Text),
    ("contacts_count", Builtin::ContactsCount, FieldType::Number),
    ("account.id", Builtin::AccountId, FieldType::Text),
    (
        "account.revenue",
        Builtin::AccountRevenue,
        FieldType::Number,
    ),
    ("open_deals", Builtin::OpenDeals, FieldType::Number),
    (
        "open_deal_amount",
        Builtin::OpenDealAmount,
        FieldType::Number,
    ),
];

/// The type of a custom attribute, as the tenant defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    /// Text.
    Text,
    /// Number.
    Number,
    /// Bool.
    Bool,
    /// Date.
    Date,
    /// Money (compared as a number in the schema's currency; other currencies are null).
    Money,
    /// List of texts.
    TextList,
}

/// What a tenant's rules may refer to: the built-in fields (see the module docs), its custom
/// attributes by type, and the currency `revenue` and money attributes are read in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    /// Currency of `revenue`, `predicted_clv` and money attributes.
    pub currency: Currency,
    /// Custom attribute definitions: `attr.<key>` fields.
    pub attributes: BTreeMap<String, AttrType>,
}

/// Where a resolved field's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldSource {
    /// A built-in field.
    Builtin(Builtin),
    /// A custom attribute: its key and declared type.
    Attr(String, AttrType),
    /// `deals.<stage>.amount`: the largest amount, in the schema's currency, of the open
    /// deals in that stage (by key) with the customer as their account; null without one.
    StageAmount(String),
}

impl FieldSchema {
    /// A schema with no custom attributes.
    pub fn new(currency: Currency) -> Self {
        FieldSchema {
            currency,
            attributes: BTreeMap::new(),
        }
    }

    /// Adds a custom attribute definition.
    pub fn with_attribute(mut self, key: &str, ty: AttrType) -> Self {
        self.attributes.insert(key.to_string(), ty);
        self
    }

    /// The source and type of a field, or `None` for an unknown field.
    pub fn resolve(&self, name: &str) -> Option<(FieldSource, FieldType)> {
        if let Some(key) = name.strip_prefix("attr.") {
            let ty = *self.attributes.get(key)?;
            let field_ty = match ty {
                AttrType::Text => FieldType::Text,
                AttrType::Number | AttrType::Money => FieldType::Number,
                AttrType::Bool => FieldType::Bool,
                AttrType::Date => FieldType::Date,
                AttrType::TextList => FieldType::TextList,
            };
            return Some((FieldSource::Attr(key.to_string(), ty), field_ty));
        }
        if let Some(key) = name
            .strip_prefix("deals.")
            .and_then(|rest| rest.strip_suffix(".amount"))
        {
            let key = crate::value::StageKey::parse(key).ok()?;
            return Some((
                FieldSource::StageAmount(key.as_str().to_string()),
                FieldType::Number,
            ));
        }
        BUILTINS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, b, t)| (FieldSource::Builtin(*b), *t))
    }

    /// Checks `rule` against the schema: every field known, every operator applied to
    /// operands of fitting types. Errors are validation errors on `rule` saying what is
    /// wrong where.
    ///
    /// The rule's size and shape are checked first ([`Rule::validate`]), so what passes
    /// can be stored and read back, and every walk of it is shallow.
    pub fn check(&self, rule: &Rule) -> Result<(), Error> {
        rule.validate()?;
        self.check_terms(rule)
    }

    /// Checks every term, walking the tree with a stack of its own (no recursion).
    fn check_terms(&self, rule: &Rule) -> Result<(), Error> {
        let mut stack = vec![rule];
        while let Some(r) = stack.pop() {
            match r {
                Rule::And { rules } | Rule::Or { rules } => stack.extend(rules.iter().rev()),
                Rule::Not { rule } => stack.push(rule),
                term => self.check_term(term)?,
            }
        }
        Ok(())
    }

    fn check_term(&self, rule: &Rule) -> Result<(), Error> {
        match rule {
            Rule::And { .. } | Rule::Or { .. } | Rule::Not { .. } => Ok(()),
            Rule::Compare { left, cmp, right } => {
                let (a, b) = (self.scalar(left)?, self.scalar(right)?);
                if !a.comparable(b) {
                    return Err(mismatch(
                        rule,
                        &format!("cannot compare {} with {}", a.name(), b.name()),
                    ));
                }
                if a == FieldType::Bool && !matches!(cmp, super::CmpOp::Eq | super::CmpOp::Ne) {
                    return Err(mismatch(rule, "booleans compare only with = and !="));
                }
                Ok(())
            }
            Rule::Between { operand, low, high } => {
                let t = self.scalar(operand)?;
                for bound in [low, high] {
                    let b = self.scalar(bound)?;
                    if !t.comparable(b) || t == FieldType::Bool {
                        return Err(mismatch(
                            rule,
                            &format!("cannot range a {} between {}", t.name(), b.name()),
                        ));
                    }
                }
                Ok(())
            }
            Rule::In { item, set } => {
                let t = self.scalar(item)?;
                match set {
                    Operand::Literal(Literal::List(items)) => {
                        for l in items {
                            let lt = literal_type(l);
                            if !t.comparable(lt) {
                                return Err(mismatch(
                                    rule,
                                    &format!(
                                        "a {} cannot be in a list holding a {}",
                                        t.name(),
                                        lt.name()
                                    ),
                                ));
                            }
                        }
                        Ok(())
                    }
                    other => match self.operand(other)? {
                        FieldType::TextList if t == FieldType::Text => Ok(()),
                        found => Err(mismatch(
                            rule,
                            &format!(
                                "`in` needs a list literal or a text list on its right, found {}",
                                found.name()
                            ),
                        )),
                    },
                }
            }
            Rule::Contains { haystack, needle } => {
                match (self.operand(haystack)?, self.scalar(needle)?) {
                    (FieldType::Text | FieldType::TextList, FieldType::Text) => Ok(()),
                    (h, n) => Err(mismatch(
                        rule,
                        &format!(
                            "`contains` needs text or a text list and a text, found {} and {}",
                            h.name(),
                            n.name()
                        ),
                    )),
                }
            }
            Rule::StartsWith { text, prefix } => match (self.scalar(text)?, self.scalar(prefix)?) {
                (FieldType::Text, FieldType::Text) => Ok(()),
                (a, b) => Err(mismatch(
                    rule,
                    &format!(
                        "`starts_with` needs two texts, found {} and {}",
                        a.name(),
                        b.name()
                    ),
                )),
            },
            Rule::IsNull { operand, .. } => match operand {
                Operand::Field(_) => match self.operand(operand)? {
                    FieldType::TextList => {
                        Err(mismatch(rule, "lists are never null (they may be empty)"))
                    }
                    _ => Ok(()),
                },
                _ => Err(mismatch(rule, "`is null` applies to fields")),
            },
        }
    }

    fn operand(&self, o: &Operand) -> Result<FieldType, Error> {
        match o {
            Operand::Field(name) => self
                .resolve(name)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::validation("rule", format!("unknown field `{name}`"))),
            Operand::Literal(l) => Ok(literal_type(l)),
            Operand::Now { .. } => Ok(FieldType::Timestamp),
        }
    }

    fn scalar(&self, o: &Operand) -> Result<FieldType, Error> {
        match self.operand(o)? {
            FieldType::TextList if matches!(o, Operand::Literal(_)) => Err(Error::validation(
                "rule",
                "a list literal is only allowed on the right of `in`",
            )),
            FieldType::TextList => Err(Error::validation(
                "rule",
                format!(
                    "the list field `{}` can only be used with `in` or `contains`",
                    field_name(o)
                ),
            )),
            t => Ok(t),
        }
    }
}

fn field_name(o: &Operand) -> String {
    match o {
        Operand::Field(n) => n.clone(),
        _ => String::new(),
    }
}

fn literal_type(l: &Literal) -> FieldType {
    match l {
        Literal::Text(_) => FieldType::Text,
        Literal::Number(_) => FieldType::Number,
        Literal::Bool(_) => FieldType::Bool,
        Literal::Date(_) => FieldType::Date,
        Literal::List(_) => FieldType::TextList,
    }
}

fn mismatch(rule: &Rule, what: &str) -> Error {
    Error::validation("rule", format!("{what} in `{rule}`"))
}
