//! Random, well-typed rules and customers with varied attributes, for differential tests of
//! rule evaluation (in memory against an adapter's own evaluation).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_core::segment::{AttrType, CmpOp, FieldSchema, Literal, Operand, Rule, Span, SpanUnit};
use crm_core::{AttrValue, Currency, Customer, Money};
use rust_decimal::Decimal;

use crate::Generator;

/// The schema the differential tests use: EUR, and six custom attributes of every type.
pub fn segment_schema() -> FieldSchema {
    FieldSchema::new(Currency::parse("EUR").expect("EUR"))
        .with_attribute("industry", AttrType::Text)
        .with_attribute("seats", AttrType::Number)
        .with_attribute("vip", AttrType::Bool)
        .with_attribute("since", AttrType::Date)
        .with_attribute("langs", AttrType::TextList)
        .with_attribute("limit", AttrType::Money)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    Bool,
    Time,
    List,
}

const FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("kind", Kind::Text),
    ("lifecycle", Kind::Text),
    ("owner", Kind::Text),
    ("attr.industry", Kind::Text),
    ("interaction_count", Kind::Number),
    ("purchase_count", Kind::Number),
    ("complaint_count", Kind::Number),
    ("service_request_count", Kind::Number),
    ("revenue", Kind::Number),
    ("days_since_last_purchase", Kind::Number),
    ("days_since_last_contact", Kind::Number),
    ("days_since_first_purchase", Kind::Number),
    ("p_alive", Kind::Number),
    ("expected_purchases_90d", Kind::Number),
    ("predicted_clv", Kind::Number),
    ("attr.seats", Kind::Number),
    ("attr.limit", Kind::Number),
    ("r_score", Kind::Number),
    ("m_score", Kind::Number),
    ("rfm_segment", Kind::Text),
    ("abc_class", Kind::Text),
    ("account.id", Kind::Text),
    ("contacts_count", Kind::Number),
    ("account.revenue", Kind::Number),
    ("open_deals", Kind::Number),
    ("open_deal_amount", Kind::Number),
    ("deals.negotiation.amount", Kind::Number),
    ("consent.email", Kind::Bool),
    ("consent.sms", Kind::Bool),
    ("attr.vip", Kind::Bool),
    ("first_contact_at", Kind::Time),
    ("last_contact_at", Kind::Time),
    ("first_purchase_at", Kind::Time),
    ("last_purchase_at", Kind::Time),
    ("attr.since", Kind::Time),
    ("created_at", Kind::Time),
    ("updated_at", Kind::Time),
    ("tags", Kind::List),
    ("attr.langs", Kind::List),
];

const TEXTS: &[&str] = &[
    "active",
    "lead",
    "churned",
    "at_risk",
    "person",
    "organization",
    "auto",
    "bank",
    "retail",
    "",
    "A",
    "Mü",
    "Anna",
    "GmbH",
    "王",
    "o",
    "vip",
    "b2b",
    "de",
    "en",
    "zh",
];
const INDUSTRIES: &[&str] = &["auto", "bank", "retail", "Auto", "bäckerei"];
const LANGS: &[&str] = &["de", "en", "zh", "fr"];

impl Generator {
    fn pick_field(&mut self, kind: Kind) -> &'static str {
        let candidates: Vec<&str> = FIELDS.iter().filter(|f| f.1 == kind).map(|f| f.0).collect();
        candidates[self.below(candidates.len() as u64) as usize]
    }

    fn number(&mut self) -> Decimal {
        match self.below(4) {
            0 => Decimal::from(self.below(12)),
            1 => Decimal::new(self.below(1000) as i64, 1),
            2 => Decimal::new(self.below(600_000) as i64, 2),
            _ => Decimal::new(self.below(10) as i64, 1),
        }
    }

    fn literal(&mut self, kind: Kind, now: DateTime<Utc>) -> Operand {
        match kind {
            Kind::Text => Operand::Literal(Literal::Text(
                TEXTS[self.below(TEXTS.len() as u64) as usize].to_string(),
            )),
            Kind::Number => Operand::Literal(Literal::Number(if self.below(6) == 0 {
                -self.number()
            } else {
                self.number()
            })),
            Kind::Bool => Operand::Literal(Literal::Bool(self.below(2) == 0)),
            Kind::Time | Kind::List => {
                if self.below(2) == 0 {
                    let unit =
                        [SpanUnit::Hours, SpanUnit::Days, SpanUnit::Weeks][self.below(3) as usize];
                    let amount = self.below(800) as i64 - 400;
                    Operand::Now {
                        offset: Span {
                            amount: if unit == SpanUnit::Hours {
                                amount * 24
                            } else {
                                amount
                            },
                            unit,
                        },
                    }
                } else {
                    // Half of the dates on the grid the attribute dates are drawn from, so
                    // that equality and range ends are hit often.
                    let days = if self.below(2) == 0 {
                        30 * self.below(30) as i64
                    } else {
                        self.below(900) as i64 - 100
                    };
                    Operand::Literal(Literal::Date(now.date_naive() - Duration::days(days)))
                }
            }
        }
    }

    fn scalar_operand(&mut self, kind: Kind, now: DateTime<Utc>) -> Operand {
        if self.below(5) == 0 {
            Operand::Field(self.pick_field(kind).to_string())
        } else {
            self.literal(kind, now)
        }
    }

    fn predicate(&mut self, now: DateTime<Utc>) -> Rule {
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        let kind =
            [Kind::Text, Kind::Number, Kind::Bool, Kind::Time, Kind::List][self.below(5) as usize];
        let field = Operand::Field(self.pick_field(kind).to_string());
        match (kind, self.below(5)) {
            (Kind::List, 0..=2) => Rule::In {
                item: Operand::Literal(Literal::Text(if self.below(2) == 0 {
                    LANGS[self.below(4) as usize].to_string()
                } else {
                    TEXTS[self.below(TEXTS.len() as u64) as usize].to_string()
                })),
                set: field,
            },
            (Kind::List, 3) => Rule::Contains {
                haystack: field,
                // A field needle may be null (owner, attr.industry).
                needle: Operand::Field(self.pick_field(Kind::Text).to_string()),
            },
            (Kind::List, _) => Rule::Contains {
                haystack: field,
                needle: self.scalar_operand(Kind::Text, now),
            },
            (Kind::Bool, 0) => Rule::IsNull {
                operand: field,
                negated: self.below(2) == 0,
            },
            (Kind::Bool, _) => Rule::Compare {
                left: field,
                cmp: if self.below(2) == 0 {
                    CmpOp::Eq
                } else {
                    CmpOp::Ne
                },
                right: self.scalar_operand(Kind::Bool, now),
            },
            (Kind::Text, 0) => Rule::Contains {
                haystack: field,
                needle: self.scalar_operand(Kind::Text, now),
            },
            (Kind::Text, 1) => Rule::StartsWith {
                text: field,
                prefix: self.scalar_operand(Kind::Text, now),
            },
            (_, 2) => {
                let n = self.below(4);
                let items = (0..n)
                    .map(|_| match self.literal(kind, now) {
                        Operand::Literal(l) => l,
                        _ => Literal::Date(now.date_naive()),
                    })
                    .collect();
                Rule::In {
                    item: field,
                    set: Operand::Literal(Literal::List(items)),
                }
            }
            (_, 3) if self.below(2) == 0 => Rule::IsNull {
                operand: field,
                negated: self.below(2) == 0,
            },
            (_, 3) => Rule::Between {
                operand: field,
                low: self.scalar_operand(kind, now),
                high: self.scalar_operand(kind, now),
            },
            _ => Rule::Compare {
                left: field,
                cmp: ops[self.below(6) as usize],
                right: self.scalar_operand(kind, now),
            },
        }
    }

    /// A random well-typed rule over [`segment_schema`] with up to `depth` levels of
    /// `and`/`or`/`not`; times are spread around `now`.
    pub fn rule(&mut self, depth: u32, now: DateTime<Utc>) -> Rule {
        if depth == 0 || self.below(3) == 0 {
            return self.predicate(now);
        }
        match self.below(3) {
            0 => Rule::and(self.rule(depth - 1, now), self.rule(depth - 1, now)),
            1 => Rule::or(self.rule(depth - 1, now), self.rule(depth - 1, now)),
            _ => Rule::negate(self.rule(depth - 1, now)),
        }
    }

    /// One to three interactions of `customer` over the year before `now`, the first a
    /// purchase of 1 to 3,000 EUR (so every such customer has a revenue and an RFM class):
    /// the histories of the segment benchmarks.
    pub fn purchase_history(
        &mut self,
        customer: crm_core::CustomerId,
        now: DateTime<Utc>,
    ) -> Vec<crm_core::Interaction> {
        let k = 1 + self.below(3) as usize;
        let mut history = self.interactions(
            &[customer],
            k,
            now - Duration::days(365),
            Duration::days(364),
        );
        let first = &mut history[0];
        first.kind = crm_core::InteractionKind::Purchase;
        first.amount = Money::new(Decimal::new(self.below(300_000) as i64 + 100, 2), "EUR").ok();
        history
    }

    /// A customer with a random selection of [`segment_schema`]'s attributes, sometimes
    /// stored with another type than the schema says (which reads as null).
    pub fn segment_customer(&mut self, now: DateTime<Utc>) -> Customer {
        let mut c = self.customer();
        c.attributes = crm_core::Attributes::new();
        let mut set = |g: &mut Generator, key: &str, v: AttrValue| {
            if g.below(4) > 0 {
                let _ = c.attributes.set(key, v);
            }
        };
        let industry = INDUSTRIES[self.below(5) as usize].to_string();
        let wrong = self.below(8) == 0;
        set(
            self,
            "industry",
            if wrong {
                AttrValue::Number(Decimal::from(3))
            } else {
                AttrValue::Text(industry)
            },
        );
        let seats = self.number();
        set(self, "seats", AttrValue::Number(seats));
        let vip = self.below(2) == 0;
        set(self, "vip", AttrValue::Bool(vip));
        let since: NaiveDate = now.date_naive() - Duration::days(30 * self.below(30) as i64);
        set(self, "since", AttrValue::Date(since));
        let langs: Vec<String> = (0..self.below(3))
            .map(|_| LANGS[self.below(4) as usize].to_string())
            .collect();
        set(self, "langs", AttrValue::TextList(langs));
        let cur = if self.below(3) == 0 { "USD" } else { "EUR" };
        let limit = Money::new(self.number(), cur).expect("currency");
        set(self, "limit", AttrValue::Money(limit));
        c
    }
}
