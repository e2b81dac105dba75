//! Records at the edges of what the core accepts, for round trips through storage: long
//! texts in many scripts, every attribute type with extreme values, amounts at the bound,
//! instants at both ends of the supported range, long case timelines, big calendars.
//!
//! Every generator makes a candidate and keeps it only if the core's own constructors
//! accept it, so what comes out is exactly "anything a write accepts"; the conformance
//! case `wild_records_read_back_equal` writes them through every adapter and compares
//! what reads back.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_core::calendar::{BusinessCalendar, Interval, Week};
use crm_core::case::{Case, CaseEventKind, CaseKind, CaseStatus};
use crm_core::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
use crm_core::notify::TemplateName;
use crm_core::segment::{CmpOp, Literal, Operand, Rule, Segment};
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::task::{Task, TaskSubject};
use crm_core::{
    AttrValue, Channel, Currency, Customer, CustomerId, Direction, Interaction, InteractionKind,
    Lifecycle, MarketingConsent, Money, UserId,
};
use rust_decimal::Decimal;

/// Pieces of text from many scripts and with characters that need escaping somewhere.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "é",
    "ß",
    "Ünïcödé",
    "王",
    "客户",
    "𝔘",
    "🙂",
    "👩‍👩‍👧",
    "\u{301}",
    "עברית",
    "العربية",
    "'",
    "\"",
    "\\",
    "%",
    "_",
    "*",
    "?",
    "[",
    "]",
    "{",
    "}",
    "\n",
    "\t",
    "\u{7f}",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "NULL",
    "' OR 1=1 --",
    "${x}",
    "{{ x }}",
    "<b>",
    "&amp;",
];

const CURRENCIES: &[&str] = &["EUR", "JPY", "KWD", "USD", "CNY", "XAU", "CLF", "BHD"];

const PHONES: &[&str] = &[
    "+49 30 1234567",
    "+1 212 555 0143",
    "+86 10 6552 9988",
    "+81 3-1234-5678",
    "+44 20 7946 0958",
    "+971 4 123 4567",
];

/// A seeded generator of edge-case records.
pub struct Wild {
    rng: fastrand::Rng,
    /// Records the core refused (not written; counted to show the edges were reached).
    pub refused: usize,
}

impl Wild {
    /// A generator with a fixed seed: the same records every run.
    pub fn new(seed: u64) -> Self {
        Wild {
            rng: fastrand::Rng::with_seed(seed),
            refused: 0,
        }
    }

    fn keep<T>(&mut self, made: crm_core::Result<T>) -> Option<T> {
        match made {
            Ok(v) => Some(v),
            Err(_) => {
                self.refused += 1;
                None
            }
        }
    }

    /// Text of up to `max` characters: empty, short, or right at the limit.
    pub fn text(&mut self, max: usize) -> String {
        let target = match self.rng.u8(..4) {
            0 => self.rng.usize(..=max.min(3)),
            1 => max,
            _ => self.rng.usize(..=max),
        };
        let mut out = String::new();
        let mut chars = 0;
        while chars < target {
            let piece = PIECES[self.rng.usize(..PIECES.len())];
            let n = piece.chars().count();
            if chars + n > target {
                out.extend(std::iter::repeat_n('x', target - chars));
                break;
            }
            out.push_str(piece);
            chars += n;
        }
        out
    }

    /// A decimal anywhere in its range: huge, tiny, negative, with many decimals.
    pub fn decimal(&mut self) -> Decimal {
        match self.rng.u8(..5) {
            0 => Decimal::MAX,
            1 => Decimal::MIN,
            2 => Decimal::new(self.rng.i64(..), self.rng.u32(..=28)),
            3 => Decimal::from_i128_with_scale(
                self.rng.i128(-(1i128 << 95)..(1i128 << 95)),
                self.rng.u32(..=28),
            ),
            _ => Decimal::new(self.rng.i64(-1000..1000), 2),
        }
    }

    /// An amount within the bounds of its currency (at the bound a fifth of the time).
    pub fn money(&mut self) -> Money {
        loop {
            let currency = Currency::parse(CURRENCIES[self.rng.usize(..CURRENCIES.len())])
                .expect("a listed currency");
            let places = Money::decimals_of(currency);
            let amount = if self.rng.u8(..5) == 0 {
                let max = Money::MAX_AMOUNT;
                if self.rng.bool() {
                    max
                } else {
                    -max
                }
            } else {
                Decimal::new(self.rng.i64(-10_i64.pow(15)..10_i64.pow(15)), places)
            };
            if let Ok(m) = Money::from_parts(amount, currency) {
                return m;
            }
        }
    }

    /// A date anywhere the date type allows.
    pub fn date(&mut self) -> NaiveDate {
        match self.rng.u8(..4) {
            0 => NaiveDate::MIN,
            1 => NaiveDate::MAX,
            _ => NaiveDate::from_num_days_from_ce_opt(self.rng.i32(-100_000_000..100_000_000))
                .unwrap_or(NaiveDate::MIN),
        }
    }

    /// An instant in the supported range, at either end a fifth of the time.
    pub fn instant(&mut self) -> DateTime<Utc> {
        let (min, max) = (
            crm_core::clock::MIN_INSTANT_MICROS,
            crm_core::clock::MAX_INSTANT_MICROS,
        );
        let micros = match self.rng.u8(..5) {
            0 => min,
            1 => max,
            _ => self.rng.i64(min..=max),
        };
        DateTime::from_timestamp_micros(micros).expect("in range")
    }

    /// A value of a random attribute type.
    pub fn attribute(&mut self) -> AttrValue {
        match self.rng.u8(..6) {
            0 => AttrValue::Text(self.text(AttrValue::MAX_TEXT_CHARS)),
            1 => AttrValue::Number(self.decimal()),
            2 => AttrValue::Bool(self.rng.bool()),
            3 => AttrValue::Date(self.date()),
            4 => AttrValue::Money(self.money()),
            _ => AttrValue::TextList(
                (0..self.rng.usize(..5))
                    .map(|_| self.text(AttrValue::MAX_TEXT_CHARS / 8))
                    .collect(),
            ),
        }
    }

    /// A customer the core accepts, with many fields at their edges.
    pub fn customer(&mut self) -> Customer {
        loop {
            let name = self.text(crm_core::DisplayName::MAX_CHARS);
            let mut b = if self.rng.bool() {
                Customer::person(&name)
            } else {
                Customer::organization(&name)
            }
            .lifecycle(Lifecycle::ALL[self.rng.usize(..Lifecycle::ALL.len())]);
            for i in 0..self.rng.usize(..4) {
                b = b.email(&format!("wild.{i}.{}@example.com", self.rng.u32(..)));
            }
            for _ in 0..self.rng.usize(..3) {
                b = b.phone(PHONES[self.rng.usize(..PHONES.len())]);
            }
            for _ in 0..self.rng.usize(..6) {
                let tag = self.text(30);
                b = b.tag(&tag);
            }
            if self.rng.bool() {
                b = b.owner(UserId::new());
            }
            b = b.external_id("wild", &format!("{}-{}", self.text(20), self.rng.u64(..)));
            let entries = if self.rng.u8(..8) == 0 {
                crm_core::Attributes::MAX_ENTRIES
            } else {
                self.rng.usize(..8)
            };
            for i in 0..entries {
                let value = self.attribute();
                b = b.attribute(&format!("k{i}"), value);
            }
            b = b.consent(MarketingConsent {
                email: self.rng.bool(),
                sms: self.rng.bool(),
                phone: self.rng.bool(),
            });
            if let Some(c) = self.keep(b.build()) {
                return c;
            }
        }
    }

    /// An interaction of `customer` the core accepts.
    pub fn interaction(&mut self, customer: CustomerId, key: &str) -> Interaction {
        loop {
            let kind = InteractionKind::ALL[self.rng.usize(..InteractionKind::ALL.len())];
            let channel = Channel::ALL[self.rng.usize(..Channel::ALL.len())];
            let mut b = Interaction::builder(customer, channel, kind)
                .at(self.instant())
                .key("wild", key);
            if kind != InteractionKind::Note {
                b = b.direction(Direction::ALL[self.rng.usize(..2)]);
            }
            if self.rng.bool() {
                let subject = self.text(Interaction::MAX_SUBJECT_CHARS);
                b = b.subject(&subject);
            }
            if self.rng.u8(..3) == 0 {
                let body = self.text(Interaction::MAX_BODY_BYTES / 8);
                b = b.body(&body);
            }
            if self.rng.bool() {
                let money = self.money();
                b = b.amount(money);
            }
            if self.rng.bool() {
                b = b
                    .duration_secs(self.rng.u32(..))
                    .wait_secs(self.rng.u32(..));
            }
            for i in 0..self.rng.usize(..4) {
                let value = self.attribute();
                b = b.attribute(&format!("a{i}"), value);
            }
            if let Some(i) = self.keep(b.build()) {
                return i;
            }
        }
    }

    /// A case of `customer` with a timeline of up to `events` events the core accepts.
    pub fn case(&mut self, customer: CustomerId, events: usize) -> Case {
        loop {
            let subject = self.text(crm_core::case::MAX_SUBJECT_CHARS);
            let opened = self
                .instant()
                .min(crm_core::clock::max_instant() - Duration::days(30));
            let kind = match self.rng.u8(..4) {
                0 => CaseKind::Complaint,
                1 => CaseKind::ServiceRequest,
                2 => CaseKind::Inquiry,
                _ => CaseKind::other("warranty-claim").expect("a kind name"),
            };
            let channel = Channel::ALL[self.rng.usize(..Channel::ALL.len())];
            let assignee = self.rng.bool().then(UserId::new);
            let opened_case = Case::open(customer, kind, &subject, channel, assignee, opened);
            let Some(mut case) = self.keep(opened_case) else {
                continue;
            };
            let mut at = opened;
            for _ in 1..events {
                at += Duration::microseconds(self.rng.i64(0..60_000_000));
                let kind = match self.rng.u8(..5) {
                    0 => CaseEventKind::PublicReply { by: UserId::new() },
                    1 => CaseEventKind::CustomerMessage,
                    2 => CaseEventKind::InternalNote { by: UserId::new() },
                    3 => CaseEventKind::StatusChange {
                        to: CaseStatus::ALL[self.rng.usize(..CaseStatus::ALL.len())],
                        by: None,
                    },
                    _ => CaseEventKind::Assignment {
                        to: Some(UserId::new()),
                        by: None,
                        reason: self.rng.bool().then(|| self.text(100)),
                    },
                };
                // Transitions the case refuses are skipped: the timeline stays valid.
                let _ = case.record(at, kind);
            }
            return case;
        }
    }

    /// A task on `customer` the core accepts.
    pub fn task(&mut self, customer: CustomerId) -> Task {
        loop {
            let title = self.text(crm_core::task::MAX_TITLE_CHARS);
            let made = Task::new(
                TaskSubject::Customer(customer),
                &title,
                UserId::new(),
                self.instant(),
            )
            .and_then(|t| {
                if self.rng.bool() {
                    t.every_days(self.rng.u32(1..=3660))
                } else {
                    Ok(t)
                }
            });
            if let Some(t) = self.keep(made) {
                return t;
            }
        }
    }

    /// A dynamic segment whose rule has text literals from every script.
    pub fn segment(&mut self, n: usize) -> Segment {
        loop {
            let mut rule: Option<Rule> = None;
            for _ in 0..self.rng.usize(1..20) {
                // Built as a tree: `Rule::validate` below prints and re-parses it, so the
                // printer's escaping of every piece is what gets tested.
                let text = Operand::Literal(Literal::Text(self.text(200)));
                let field = |name: &str| Operand::Field(name.to_string());
                let term = match self.rng.u8(..3) {
                    0 => Rule::Compare {
                        left: field("name"),
                        cmp: CmpOp::Eq,
                        right: text,
                    },
                    1 => Rule::In {
                        item: text,
                        set: field("tags"),
                    },
                    _ => Rule::StartsWith {
                        text: field("attr.industry"),
                        prefix: text,
                    },
                };
                rule = Some(match rule {
                    None => term,
                    Some(r) if self.rng.bool() => Rule::and(r, term),
                    Some(r) => Rule::or(r, term),
                });
            }
            let Some(rule) = rule else { continue };
            if self.keep(rule.validate()).is_none() {
                continue;
            }
            let name = format!("{} {n}", self.text(100));
            if let Some(s) = self.keep(Segment::dynamic(&name, rule)) {
                return s;
            }
        }
    }

    /// A KPI rule with a calendar of many holidays in a zone with DST.
    pub fn kpi_rule(&mut self, n: usize) -> KpiRule {
        loop {
            let rule = self.kpi_rule_candidate(n);
            if self.keep(rule.validate()).is_some() {
                return rule;
            }
        }
    }

    fn kpi_rule_candidate(&mut self, n: usize) -> KpiRule {
        let day = if self.rng.bool() {
            Interval::parse("08:30", "12:00").expect("interval")
        } else {
            Interval::whole_day()
        };
        let week = Week::weekdays(&[day]);
        let start = self
            .date()
            .max(NaiveDate::from_ymd_opt(1900, 1, 1).expect("date"));
        let holidays: Vec<NaiveDate> = start
            .iter_days()
            .step_by(3)
            .take(self.rng.usize(..=crm_core::calendar::MAX_SPECIAL_DAYS))
            .collect();
        let calendar = BusinessCalendar::new(chrono_tz::Europe::Berlin, week)
            .and_then(|c| c.with_holidays(holidays))
            .expect("a calendar within bounds");
        KpiRule {
            key: TemplateName::parse(&format!("wild-{n}")).expect("key"),
            name: self.text(200),
            metric: KpiMetric::Case(
                SlaTarget::new(
                    SlaMetric::Resolution,
                    Duration::hours(self.rng.i64(1..10_000)),
                    0.5,
                )
                .expect("target"),
            ),
            calendar,
            scope: KpiScope {
                kinds: vec![CaseKind::Complaint],
                ..KpiScope::default()
            },
            compliance_goal: 0.9,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        }
    }
}
