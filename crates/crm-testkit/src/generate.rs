//! Seedable generators of realistic customers and interactions.
//!
//! The same seed always yields the same data (ids included: they are UUIDv7 built from the
//! generated timestamps and the seeded random stream), so benchmarks and differential tests
//! can produce identical rows twice.

use chrono::{DateTime, Duration, Utc};
use crm_core::{
    AttrValue, Channel, Customer, CustomerId, Direction, Interaction, InteractionId,
    InteractionKind, Lifecycle, MarketingConsent, Money, TeamId, UserId,
};
use rust_decimal::Decimal;
use uuid::Uuid;

const GIVEN: &[&str] = &[
    "Anna", "Ben", "Chen", "Dilara", "Emil", "Fatima", "Grace", "Hiro", "Ines", "Jonas", "Kai",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Ursula", "Wei",
    "Yara", "Zoë", "小明", "Łukasz",
];
const FAMILY: &[&str] = &[
    "Lee", "Müller", "Wang", "Schmidt", "García", "Smith", "Kowalski", "Rossi", "Nakamura",
    "Okafor", "Dubois", "Novak", "Jensen", "Silva", "Brown", "李", "O'Neill",
];
const COMPANY: &[&str] = &[
    "Auto", "Bank", "Bau", "Chemie", "Logistik", "Medien", "Software", "Textil", "Energie",
];
const TAGS: &[&str] = &[
    "vip",
    "reseller",
    "newsletter",
    "b2b",
    "key-account",
    "trade-fair",
];
const AREA: &[&str] = &["212", "312", "415", "617", "702", "303"];
const CURRENCIES: &[&str] = &["EUR", "USD", "CNY"];

/// A seeded source of customers and interactions.
#[derive(Debug)]
pub struct Generator {
    rng: fastrand::Rng,
    clock_ms: i64,
    users: Vec<UserId>,
    teams: Vec<TeamId>,
    next_key: u64,
}

impl Generator {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.timestamp_millis())
            .unwrap_or(1_704_067_200_000);
        let mut g = Generator {
            rng: fastrand::Rng::with_seed(seed),
            clock_ms: start,
            users: Vec::new(),
            teams: Vec::new(),
            next_key: 0,
        };
        g.teams = (0..3).map(|_| TeamId::from_uuid(g.uuid())).collect();
        g.users = (0..8).map(|_| UserId::from_uuid(g.uuid())).collect();
        g
    }

    /// The staff members generated data refers to.
    pub fn users(&self) -> &[UserId] {
        &self.users
    }

    /// One of the generated staff members.
    pub fn user(&mut self) -> UserId {
        self.users[self.rng.usize(..self.users.len())]
    }

    /// A UUIDv7 from the generator's clock (which ticks 1 ms per id) and random stream.
    pub fn uuid(&mut self) -> Uuid {
        self.clock_ms += 1;
        let mut tail = [0u8; 10];
        self.rng.fill(&mut tail);
        uuid::Builder::from_unix_timestamp_millis(self.clock_ms as u64, &tail).into_uuid()
    }

    /// A random element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    /// A random number in `range`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.u64(..n.max(1))
    }

    /// A customer with realistic fields (not yet registered: version 0).
    pub fn customer(&mut self) -> Customer {
        let id = CustomerId::from_uuid(self.uuid());
        let org = self.rng.u8(..10) < 3;
        let name = if org {
            format!("{} {} GmbH", self.pick(FAMILY), self.pick(COMPANY))
        } else {
            format!("{} {}", self.pick(GIVEN), self.pick(FAMILY))
        };
        let mut b = if org {
            Customer::organization(&name)
        } else {
            Customer::person(&name)
        }
        .id(id)
        .lifecycle(*self.pick(&Lifecycle::ALL));
        let serial = self.rng.u32(..1_000_000);
        b = b.email(&format!(
            "customer{serial}.{}@example.com",
            &id.to_string()[24..]
        ));
        if self.rng.bool() {
            let area = *self.pick(AREA);
            let exchange = self.rng.u32(200..1000);
            let line = self.rng.u32(..10_000);
            b = b.phone(&format!("+1 {area} {exchange} {line:04}"));
        }
        if self.rng.u8(..4) > 0 {
            let owner = self.user();
            b = b.owner(owner);
        }
        if self.rng.bool() {
            let team = self.teams[self.rng.usize(..self.teams.len())];
            b = b.team(team);
        }
        for _ in 0..self.rng.usize(..3) {
            let tag = TAGS[self.rng.usize(..TAGS.len())];
            b = b.tag(tag);
        }
        if self.rng.bool() {
            b = b.external_id("erp", &format!("C-{}", &id.to_string()[..23]));
        }
        if org {
            b = b
                .attribute(
                    "industry",
                    AttrValue::Text(self.pick(COMPANY).to_lowercase()),
                )
                .attribute(
                    "seats",
                    AttrValue::Number(Decimal::from(self.rng.u32(1..5000))),
                );
        }
        b = b.consent(MarketingConsent {
            email: self.rng.bool(),
            sms: self.rng.bool(),
            phone: false,
        });
        b.build().expect("generated customers are valid")
    }

    /// An interaction with `customer` at `at`, of a random kind and channel, with an
    /// idempotency key from source `gen` and a unique external id.
    pub fn interaction(&mut self, customer: CustomerId, at: DateTime<Utc>) -> Interaction {
        let kind = *self.pick(InteractionKind::ALL);
        let channel = *self.pick(Channel::ALL);
        self.next_key += 1;
        let mut b = Interaction::builder(customer, channel, kind)
            .id(InteractionId::from_uuid(self.uuid()))
            .at(at)
            .key("gen", &format!("i-{}", self.next_key));
        if kind != InteractionKind::Note {
            b = b.direction(*self.pick(&Direction::ALL[..2]));
        }
        if self.rng.u8(..4) > 0 {
            b = b.handled_by(self.user());
        }
        match kind {
            InteractionKind::Purchase | InteractionKind::Payment => {
                let cents = self.rng.i64(100..500_000);
                let cur = *self.pick(CURRENCIES);
                b = b.amount(Money::new(Decimal::new(cents, 2), cur).expect("known currency"));
            }
            InteractionKind::Call => {
                b = b
                    .duration_secs(self.rng.u32(10..3600))
                    .wait_secs(self.rng.u32(0..300));
            }
            _ => {}
        }
        if self.rng.bool() {
            b = b.subject(&format!("{} via {}", kind, channel));
        }
        if self.rng.u8(..4) == 0 {
            b = b.body("Customer asked about delivery dates; promised a call back.");
        }
        b.build().expect("generated interactions are valid")
    }

    /// `n` interactions spread over `customers`, at times from `start` over `span`,
    /// in chronological order.
    pub fn interactions(
        &mut self,
        customers: &[CustomerId],
        n: usize,
        start: DateTime<Utc>,
        span: Duration,
    ) -> Vec<Interaction> {
        let span_us = span.num_microseconds().unwrap_or(i64::MAX).max(1);
        let mut times: Vec<i64> = (0..n).map(|_| self.rng.i64(0..span_us)).collect();
        times.sort_unstable();
        times
            .into_iter()
            .map(|us| {
                let customer = *self.pick(customers);
                self.interaction(customer, start + Duration::microseconds(us))
            })
            .collect()
    }
}
