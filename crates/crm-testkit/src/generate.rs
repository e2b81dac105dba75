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

/// Syllables of generated people's names: given names have two, family names three, so a
/// million people carry names about as varied as a real customer base (some repeat).
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ten", "sel", "dor", "an", "ber", "cha", "vi", "nu", "el", "gar",
    "fin", "ho", "jo", "ley", "mar", "son", "tri", "ul", "wen", "ys", "zo", "pe", "qui", "bra",
    "ste", "lin",
];

/// People with planted duplicates, and which pairs are the same person.
#[derive(Debug)]
pub struct PlantedDuplicates {
    /// Originals and duplicates, shuffled.
    pub customers: Vec<Customer>,
    /// (original, duplicate) for every planted duplicate.
    pub pairs: Vec<(CustomerId, CustomerId)>,
    /// How each of `pairs` was made.
    pub kinds: Vec<DuplicateKind>,
}

/// How a planted duplicate was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicateKind {
    /// Same email (other case), the name maybe misspelt.
    SameEmail,
    /// Same phone, another email, the name misspelt or its words swapped.
    SamePhone,
    /// No contact point in common; the name misspelt or swapped; same birth date, city and
    /// company.
    SameAttributes,
}

impl Generator {
    fn syllables(&mut self, n: usize) -> String {
        let mut s: String = (0..n).map(|_| *self.pick(SYLLABLES)).collect();
        if let Some(first) = s.get(..1) {
            s = first.to_uppercase() + &s[1..];
        }
        s
    }

    /// A person with a syllable name, a unique email and phone, and the attributes
    /// `birth_date` (1940-2005), `city` (one of 300) and, for most, `company` (one of 20,000).
    pub fn person(&mut self, serial: usize) -> Customer {
        let given = self.syllables(2);
        let family = self.syllables(3);
        let id = CustomerId::from_uuid(self.uuid());
        let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1)
            .expect("a date")
            .checked_add_days(chrono::Days::new(self.below(65 * 365)))
            .expect("a date");
        let city = format!("City {}", self.below(300));
        let mut b = Customer::person(&format!("{given} {family}"))
            .id(id)
            .email(&format!(
                "{}.{}.{serial}@example.com",
                given.to_lowercase(),
                family.to_lowercase()
            ))
            .phone(&format!(
                "+1 {} {} {:04}",
                AREA[serial % AREA.len()],
                200 + (serial / AREA.len() / 10_000) % 800,
                (serial / AREA.len()) % 10_000
            ))
            .attribute("birth_date", AttrValue::Date(birth))
            .attribute("city", AttrValue::Text(city));
        if self.below(10) < 6 {
            let company = format!("Company {}", self.below(20_000));
            b = b.attribute("company", AttrValue::Text(company));
        }
        b.build().expect("a valid generated person")
    }

    /// `name` with one typo (a letter changed, dropped or swapped with the next) in one of
    /// its words, or, half the time when asked, its words in the other order.
    fn misspell(&mut self, name: &str, may_swap: bool) -> String {
        let mut words: Vec<String> = name.split(' ').map(str::to_string).collect();
        if may_swap && words.len() > 1 && self.rng.bool() {
            words.reverse();
            return words.join(" ");
        }
        let w = self.rng.usize(..words.len());
        let mut chars: Vec<char> = words[w].chars().collect();
        if chars.len() > 2 {
            let at = self.rng.usize(..chars.len() - 1);
            match self.below(3) {
                0 => chars[at] = *self.pick(&['a', 'e', 'i', 'o', 'u', 'y', 'n', 'r']),
                1 => {
                    chars.remove(at);
                }
                _ => chars.swap(at, at + 1),
            }
        }
        words[w] = chars.into_iter().collect();
        words.join(" ")
    }

    fn duplicate_of(
        &mut self,
        original: &Customer,
        kind: DuplicateKind,
        serial: usize,
    ) -> Customer {
        let mut d = original.clone();
        d.id = CustomerId::from_uuid(self.uuid());
        let fresh_email = |name: &str| {
            crm_core::EmailAddress::parse(&format!(
                "{}.dup{serial}@example.org",
                name.split(' ').next().unwrap_or("x").to_lowercase()
            ))
            .expect("a valid email")
        };
        match kind {
            DuplicateKind::SameEmail => {
                if self.rng.bool() {
                    let name = self.misspell(original.name.as_str(), false);
                    d.name = crm_core::DisplayName::parse(&name).expect("a name");
                }
                d.emails = original
                    .emails
                    .iter()
                    .map(|e| {
                        crm_core::EmailAddress::parse(&e.as_str().to_uppercase()).expect("email")
                    })
                    .collect();
                d.phones.clear();
            }
            DuplicateKind::SamePhone => {
                let name = self.misspell(original.name.as_str(), true);
                d.name = crm_core::DisplayName::parse(&name).expect("a name");
                d.emails = vec![fresh_email(&name)];
            }
            DuplicateKind::SameAttributes => {
                let name = self.misspell(original.name.as_str(), true);
                d.name = crm_core::DisplayName::parse(&name).expect("a name");
                d.emails = vec![fresh_email(&name)];
                d.phones.clear();
            }
        }
        d
    }

    /// `n` people (see [`person`](Self::person)) plus duplicates of `share` of them (each
    /// original at most once): 35% sharing the email, 25% the phone, 40% only the birth
    /// date, city and company, all with the name misspelt or reordered where the kind says.
    pub fn people_with_duplicates(&mut self, n: usize, share: f64) -> PlantedDuplicates {
        let mut customers: Vec<Customer> = (0..n).map(|i| self.person(i)).collect();
        let dups = ((n as f64) * share).round() as usize;
        let mut order: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut order);
        let mut pairs = Vec::with_capacity(dups);
        let mut kinds = Vec::with_capacity(dups);
        for (k, &i) in order.iter().take(dups.min(n)).enumerate() {
            let kind = match self.below(100) {
                0..35 => DuplicateKind::SameEmail,
                35..60 => DuplicateKind::SamePhone,
                _ => DuplicateKind::SameAttributes,
            };
            let d = self.duplicate_of(&customers[i], kind, k);
            pairs.push((customers[i].id, d.id));
            kinds.push(kind);
            customers.push(d);
        }
        self.rng.shuffle(&mut customers);
        PlantedDuplicates {
            customers,
            pairs,
            kinds,
        }
    }
}
