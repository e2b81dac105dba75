//! Duplicate detection: matching rules as data, a score per candidate pair, and blocking
//! keys so that a tenant of a million customers is not compared pair by pair.
//!
//! A [`MatchRule`] names the evidence that must all hold for two records to be the same
//! customer (a shared email address, a shared phone number, names at least so similar, the
//! same value of an attribute such as `company`, `city` or `birth_date`; for organisations,
//! the same registration number or a web domain in common) and the score that evidence
//! earns. A pair scores the highest score among the rules it satisfies.
//! [`MatchRules`] also says from which score a pair is reported (`warn_at`) and from which
//! a new record is refused (`block_at`).
//!
//! Two modes:
//! - [`Duplicates::check`](crate::service::Duplicates::check) / [`Duplicates::register_checked`](crate::service::Duplicates::register_checked): one incoming record against the
//!   stored customers that could match it (found through the store by email, phone and
//!   attribute values), before it is saved.
//! - [`Duplicates::find`](crate::service::Duplicates::find): a batch job over a tenant that lists candidate groups
//!   (customers linked by pairs at or above `warn_at`); [`Detector`] does the same over
//!   records you already hold.
//!
//! ## Blocking
//!
//! Only records that share a blocking key are compared. Each rule contributes keys from
//! its most selective evidence: every normalised email address for a rule that needs a
//! shared email, else every phone number for one that needs a shared phone, else the
//! rule's attribute values combined with each word of the name (so a typo in one word, or
//! the words in another order, still leave a word to meet on; a one-word name also gives
//! its first and last three letters), else the words alone. A rule on a registration
//! number blocks by the number, one on web domains by each domain. A block larger than [`MatchRules::max_block`] is skipped and counted
//! in the report (such a key says little: a shared switchboard number, a very common
//! name); pairs it would have produced are found only through other keys.
//!
//! Names are compared word by word: each lower-cased word's best Jaro–Winkler similarity
//! (the `strsim` crate) among the other name's words, averaged over the words and over
//! both directions (the Monge–Elkan scheme), so words in another order match and one
//! misspelt word costs only its share.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::value::{AttrKey, AttrValue};

/// One piece of evidence that two records are the same customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// An email address in common (compared lower-cased).
    SharedEmail,
    /// A phone number in common (E.164).
    SharedPhone,
    /// Names at least this similar (Jaro–Winkler, 0 to 1).
    SimilarName {
        /// The least similarity that counts.
        at_least: f64,
    },
    /// The same value of this attribute on both (texts compared trimmed and lower-cased);
    /// missing on either side is no evidence.
    SameAttribute {
        /// The attribute.
        key: AttrKey,
    },
    /// The same registration number (a company register or tax number) in this text
    /// attribute, compared on its letters and digits only, upper-cased
    /// (`"DE 123.456.789"` and `"de123456789"` are one number); missing on either side is no
    /// evidence.
    SameRegistration {
        /// The attribute holding the number.
        key: AttrKey,
    },
    /// A web domain in common: the host of the `website` attribute (a URL or a bare host,
    /// without a leading `www.`) and the domains of the email addresses, except those of
    /// public mail providers ([`FREE_MAIL`]). Meant for organisations: two people of one
    /// company share its domain.
    SameWebDomain {
        /// The text attribute holding the web site, if any.
        #[serde(default)]
        website: Option<AttrKey>,
    },
    /// Both records are organisations.
    BothOrganizations,
}

/// Domains of public mail providers: an address there says nothing about an organisation.
pub const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.de",
    "yahoo.fr",
    "yahoo.co.uk",
    "hotmail.com",
    "hotmail.de",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "gmx.at",
    "web.de",
    "t-online.de",
    "freenet.de",
    "proton.me",
    "protonmail.com",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
    "126.com",
    "orange.fr",
    "free.fr",
    "libero.it",
];

/// A registration number's letters and digits, upper-cased (`None` when it has none).
pub fn registration_key(text: &str) -> Option<String> {
    let key: String = text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    (!key.is_empty()).then_some(key)
}

/// The host of a web address or bare host name, lower-cased, without a scheme, user,
/// port, path or leading `www.` (`None` when nothing like a host is left).
pub fn web_domain(text: &str) -> Option<String> {
    let t = text.trim().to_lowercase();
    let t = t.split_once("://").map_or(t.as_str(), |(_, rest)| rest);
    let host = t.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next().unwrap_or("");
    let host = host.trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    let ok = host.contains('.')
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    ok.then(|| host.to_string())
}

/// Evidence that together earns a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchRule {
    /// A name for reports (`"same email"`).
    pub name: String,
    /// What must all hold.
    pub all_of: Vec<Evidence>,
    /// The score of a pair this rule matches (0 to 1).
    pub score: f64,
}

/// A set of matching rules and what to do with the scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchRules {
    /// The rules; a pair scores the highest score among those it satisfies.
    pub rules: Vec<MatchRule>,
    /// Pairs scoring at least this are reported (candidate groups, warnings).
    pub warn_at: f64,
    /// A new record scoring at least this against a stored one is refused by
    /// [`Duplicates::register_checked`](crate::service::Duplicates::register_checked) (`None`: never refused, only warned).
    pub block_at: Option<f64>,
    /// Largest block of records sharing one key that is compared (default 500).
    #[serde(default = "default_max_block")]
    pub max_block: usize,
}

fn default_max_block() -> usize {
    500
}

impl MatchRules {
    /// A starting point: for people, same email (0.95); same phone and similar names
    /// (0.9); similar names and the same `birth_date` (0.9) or `company` (0.85); very
    /// similar names in the same `city` (0.7, below the default report level). For
    /// organisations, the same `registration_number` (0.95); a web domain in common (the
    /// `website` attribute, company email addresses) and similar names (0.85). Reports from
    /// 0.8, refuses from 0.95.
    pub fn standard() -> MatchRules {
        let attr = |k: &str| Evidence::SameAttribute {
            key: AttrKey::parse(k).expect("a valid attribute key"),
        };
        let similar = |at_least| Evidence::SimilarName { at_least };
        let rule = |name: &str, all_of: Vec<Evidence>, score| MatchRule {
            name: name.to_string(),
            all_of,
            score,
        };
        MatchRules {
            rules: vec![
                rule("same email", vec![Evidence::SharedEmail], 0.95),
                rule(
                    "same phone, similar name",
                    vec![Evidence::SharedPhone, similar(0.85)],
                    0.9,
                ),
                rule(
                    "similar name, same birth date",
                    vec![similar(0.88), attr("birth_date")],
                    0.9,
                ),
                rule(
                    "similar name, same company",
                    vec![similar(0.9), attr("company")],
                    0.85,
                ),
                rule(
                    "very similar name, same city",
                    vec![similar(0.95), attr("city")],
                    0.7,
                ),
                rule(
                    "organisations with the same registration number",
                    vec![
                        Evidence::BothOrganizations,
                        Evidence::SameRegistration {
                            key: AttrKey::parse("registration_number")
                                .expect("a valid attribute key"),
                        },
                    ],
                    0.95,
                ),
                rule(
                    "organisations with a web domain in common, similar names",
                    vec![
                        Evidence::BothOrganizations,
                        Evidence::SameWebDomain {
                            website: Some(
                                AttrKey::parse("website").expect("a valid attribute key"),
                            ),
                        },
                        similar(0.75),
                    ],
                    0.85,
                ),
            ],
            warn_at: 0.8,
            block_at: Some(0.95),
            max_block: default_max_block(),
        }
    }

    /// Checks the rules; errors name the field (`rules[2].score`).
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        if self.rules.is_empty() {
            return Err(Error::validation("rules", "at least one rule is needed"));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.all_of.is_empty() {
                return Err(Error::validation(
                    format!("rules[{i}].all_of"),
                    "a rule needs at least one piece of evidence",
                ));
            }
            if !unit(r.score) {
                return Err(Error::validation(
                    format!("rules[{i}].score"),
                    format!("must be 0 to 1, got {}", r.score),
                ));
            }
            for (j, e) in r.all_of.iter().enumerate() {
                if let Evidence::SimilarName { at_least } = e {
                    if !unit(*at_least) {
                        return Err(Error::validation(
                            format!("rules[{i}].all_of[{j}].at_least"),
                            format!("must be 0 to 1, got {at_least}"),
                        ));
                    }
                }
            }
        }
        if !unit(self.warn_at) || self.warn_at == 0.0 {
            return Err(Error::validation(
                "warn_at",
                format!("must be above 0 and at most 1, got {}", self.warn_at),
            ));
        }
        if let Some(b) = self.block_at {
            if !unit(b) || b < self.warn_at {
                return Err(Error::validation(
                    "block_at",
                    format!("must be from warn_at ({}) to 1, got {b}", self.warn_at),
                ));
            }
        }
        if self.max_block < 2 {
            return Err(Error::validation("max_block", "must be at least 2"));
        }
        Ok(())
    }

    /// Every attribute some rule compares, in a fixed order, per way of comparing.
    fn keys(&self) -> Keys {
        let evidence = || self.rules.iter().flat_map(|r| &r.all_of);
        let collect = |pick: &dyn Fn(&Evidence) -> Option<&AttrKey>| {
            let keys: BTreeSet<&AttrKey> = evidence().filter_map(pick).collect();
            keys.into_iter().cloned().collect::<Vec<_>>()
        };
        Keys {
            attributes: collect(&|e| match e {
                Evidence::SameAttribute { key } => Some(key),
                _ => None,
            }),
            registrations: collect(&|e| match e {
                Evidence::SameRegistration { key } => Some(key),
                _ => None,
            }),
            websites: collect(&|e| match e {
                Evidence::SameWebDomain { website } => website.as_ref(),
                _ => None,
            }),
            domains: evidence().any(|e| matches!(e, Evidence::SameWebDomain { .. })),
        }
    }
}

/// The attributes a rule set reads, per way of comparing them.
#[derive(Clone, Debug, Default)]
struct Keys {
    attributes: Vec<AttrKey>,
    registrations: Vec<AttrKey>,
    websites: Vec<AttrKey>,
    /// Whether some rule compares web domains.
    domains: bool,
}

/// What matching needs of a customer, normalised once.
#[derive(Clone, Debug)]
pub struct Fingerprint {
    id: CustomerId,
    /// Lower-cased words, in the written order, joined by one space.
    name: String,
    words: Vec<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    /// Per attribute of [`MatchRules::attribute_keys`], its normalised value.
    attributes: Vec<Option<String>>,
    /// Per attribute of [`MatchRules::registration_keys`], its registration key.
    registrations: Vec<Option<String>>,
    /// Web domains: of the web-site attributes rules name, and of the email addresses
    /// outside public mail providers.
    domains: Vec<String>,
    organization: bool,
}

fn attribute_text(v: &AttrValue) -> Option<String> {
    match v {
        AttrValue::Text(t) => {
            let t = t.trim().to_lowercase();
            (!t.is_empty()).then_some(t)
        }
        AttrValue::Number(n) => Some(n.normalize().to_string()),
        AttrValue::Bool(b) => Some(b.to_string()),
        AttrValue::Date(d) => Some(d.to_string()),
        AttrValue::Money(m) => Some(format!(
            "{} {}",
            m.amount().normalize(),
            m.currency().code()
        )),
        AttrValue::TextList(_) => None,
    }
}

impl Fingerprint {
    fn of(customer: &Customer, keys: &Keys) -> Fingerprint {
        let attribute_keys = &keys.attributes;
        let lower = customer.name.as_str().to_lowercase();
        let words: Vec<String> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        Fingerprint {
            id: customer.id,
            name: words.join(" "),
            words,
            emails: customer.emails.iter().map(|e| e.search_key()).collect(),
            phones: customer
                .phones
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            attributes: attribute_keys
                .iter()
                .map(|k| customer.attributes.get(k.as_str()).and_then(attribute_text))
                .collect(),
            registrations: keys
                .registrations
                .iter()
                .map(|k| match customer.attributes.get(k.as_str()) {
                    Some(AttrValue::Text(t)) => registration_key(t),
                    _ => None,
                })
                .collect(),
            domains: if keys.domains {
                Self::domains(customer, &keys.websites)
            } else {
                Vec::new()
            },
            organization: customer.kind == crate::customer::PartyKind::Organization,
        }
    }

    fn domains(customer: &Customer, websites: &[AttrKey]) -> Vec<String> {
        let mut out = BTreeSet::new();
        for k in websites {
            if let Some(AttrValue::Text(t)) = customer.attributes.get(k.as_str()) {
                out.extend(web_domain(t));
            }
        }
        for e in &customer.emails {
            if let Some(d) = web_domain(e.as_str()) {
                if !FREE_MAIL.contains(&d.as_str()) {
                    out.insert(d);
                }
            }
        }
        out.into_iter().collect()
    }

    /// Word by word: each word's best Jaro–Winkler similarity among the other name's
    /// words, averaged over the words, and over both directions (Monge–Elkan, made
    /// symmetric). Words in another order score as the same name; one misspelt word costs
    /// only its share.
    fn name_similarity(&self, other: &Fingerprint) -> f64 {
        fn directed(a: &[String], b: &[String]) -> f64 {
            if a.is_empty() || b.is_empty() {
                return 0.0;
            }
            let total: f64 = a
                .iter()
                .map(|w| {
                    b.iter()
                        .map(|v| strsim::jaro_winkler(w, v))
                        .fold(0.0, f64::max)
                })
                .sum();
            total / a.len() as f64
        }
        if self.name == other.name {
            return 1.0;
        }
        (directed(&self.words, &other.words) + directed(&other.words, &self.words)) / 2.0
    }
}

/// A rule compiled against the attribute order of its rule set.
#[derive(Debug)]
struct Compiled {
    email: bool,
    phone: bool,
    similar: Option<f64>,
    attributes: Vec<usize>,
    registrations: Vec<usize>,
    domain: bool,
    organizations: bool,
    score: f64,
}

impl Compiled {
    fn new(rule: &MatchRule, all: &Keys) -> Compiled {
        let keys = &all.attributes;
        let mut c = Compiled {
            email: false,
            phone: false,
            similar: None,
            attributes: Vec::new(),
            registrations: Vec::new(),
            domain: false,
            organizations: false,
            score: rule.score,
        };
        for e in &rule.all_of {
            match e {
                Evidence::SharedEmail => c.email = true,
                Evidence::SharedPhone => c.phone = true,
                Evidence::SimilarName { at_least } => {
                    c.similar = Some(c.similar.map_or(*at_least, |s: f64| s.max(*at_least)));
                }
                Evidence::SameAttribute { key } => {
                    if let Some(i) = keys.iter().position(|k| k == key) {
                        c.attributes.push(i);
                    }
                }
                Evidence::SameRegistration { key } => {
                    if let Some(i) = all.registrations.iter().position(|k| k == key) {
                        c.registrations.push(i);
                    }
                }
                Evidence::SameWebDomain { .. } => c.domain = true,
                Evidence::BothOrganizations => c.organizations = true,
            }
        }
        c
    }

    fn holds(&self, a: &Fingerprint, b: &Fingerprint) -> bool {
        let shared = |x: &[String], y: &[String]| x.iter().any(|v| y.contains(v));
        (!self.email || shared(&a.emails, &b.emails))
            && (!self.phone || shared(&a.phones, &b.phones))
            && (!self.organizations || a.organization && b.organization)
            && (!self.domain || shared(&a.domains, &b.domains))
            && self.registrations.iter().all(|&i| {
                matches!((&a.registrations[i], &b.registrations[i]), (Some(x), Some(y)) if x == y)
            })
            && self.attributes.iter().all(
                |&i| matches!((&a.attributes[i], &b.attributes[i]), (Some(x), Some(y)) if x == y),
            )
            && self
                .similar
                .is_none_or(|least| a.name_similarity(b) >= least)
    }

    /// The blocking keys this rule gives a record (hashed), pushed to `out`.
    fn keys(&self, rule: usize, f: &Fingerprint, out: &mut Vec<u64>) {
        let key = |parts: &[&str]| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            rule.hash(&mut h);
            parts.hash(&mut h);
            h.finish()
        };
        if self.organizations && !f.organization {
            // A rule on organisations never holds for a person: no key.
            return;
        }
        if self.email {
            out.extend(f.emails.iter().map(|e| key(&["email", e])));
        } else if self.phone {
            out.extend(f.phones.iter().map(|p| key(&["phone", p])));
        } else if let Some(&i) = self.registrations.first() {
            // Without the number the rule cannot hold: no key.
            if let Some(r) = &f.registrations[i] {
                out.push(key(&["registration", r]));
            }
        } else if self.domain {
            out.extend(f.domains.iter().map(|d| key(&["domain", d])));
        } else {
            let mut values = Vec::with_capacity(self.attributes.len());
            for &i in &self.attributes {
                match &f.attributes[i] {
                    Some(v) => values.push(v.as_str()),
                    // Without the attribute the rule cannot hold: no key.
                    None => return,
                }
            }
            if self.similar.is_none() {
                let mut parts = vec!["attr"];
                parts.extend(&values);
                out.push(key(&parts));
                return;
            }
            // Each whole word (with the attribute values): a typo in one word, or the words
            // in another order, leaves another word to meet on. A one-word name also gives
            // its first and last three letters.
            let mut push = |end: &str, part: &str| {
                let mut parts = vec!["name", end, part];
                parts.extend(&values);
                out.push(key(&parts));
            };
            for w in &f.words {
                push("word", w);
            }
            if let [w] = f.words.as_slice() {
                let chars: Vec<char> = w.chars().collect();
                let n = chars.len().min(3);
                push("head", &chars[..n].iter().collect::<String>());
                push("tail", &chars[chars.len() - n..].iter().collect::<String>());
            }
        }
    }
}

/// Two customers that look like one, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidatePair {
    /// The customer with the smaller id.
    pub a: CustomerId,
    /// The other.
    pub b: CustomerId,
    /// The pair's score.
    pub score: f64,
    /// The rule that gave it.
    pub rule: String,
}

/// Customers linked by candidate pairs (directly or through each other).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DuplicateGroup {
    /// The members, by id.
    pub members: Vec<CustomerId>,
    /// The pairs that link them, highest score first.
    pub pairs: Vec<CandidatePair>,
}

impl DuplicateGroup {
    /// The highest score in the group.
    pub fn best_score(&self) -> f64 {
        self.pairs.first().map_or(0.0, |p| p.score)
    }
}

/// The result of a batch run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DuplicateReport {
    /// Candidate groups, highest best score first.
    pub groups: Vec<DuplicateGroup>,
    /// Customers looked at.
    pub customers: usize,
    /// Distinct pairs compared.
    pub compared_pairs: u64,
    /// Blocks skipped for being larger than [`MatchRules::max_block`].
    pub skipped_blocks: usize,
}

impl DuplicateReport {
    /// Every candidate pair of every group.
    pub fn pairs(&self) -> impl Iterator<Item = &CandidatePair> {
        self.groups.iter().flat_map(|g| &g.pairs)
    }
}

/// Finds candidate duplicates among records held in memory.
#[derive(Debug)]
pub struct Detector {
    rules: MatchRules,
    keys: Keys,
    compiled: Vec<Compiled>,
    prints: Vec<Fingerprint>,
}

impl Detector {
    /// A detector for `rules` (checked first).
    pub fn new(rules: MatchRules) -> Result<Detector> {
        rules.validate()?;
        let keys = rules.keys();
        let compiled = rules
            .rules
            .iter()
            .map(|r| Compiled::new(r, &keys))
            .collect();
        Ok(Detector {
            rules,
            keys,
            compiled,
            prints: Vec::new(),
        })
    }

    /// Adds a record to compare.
    pub fn add(&mut self, customer: &Customer) {
        self.prints.push(Fingerprint::of(customer, &self.keys));
    }

    /// Records added so far.
    pub fn len(&self) -> usize {
        self.prints.len()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.prints.is_empty()
    }

    /// The score of a pair and the rule that gave it, if any rule holds.
    fn score(&self, a: &Fingerprint, b: &Fingerprint) -> Option<(f64, usize)> {
        let mut best: Option<(f64, usize)> = None;
        for (i, c) in self.compiled.iter().enumerate() {
            if best.is_some_and(|(s, _)| s >= c.score) {
                continue;
            }
            if c.holds(a, b) {
                best = Some((c.score, i));
            }
        }
        best
    }

    fn pair(&self, a: &Fingerprint, b: &Fingerprint, score: f64, rule: usize) -> CandidatePair {
        let (a, b) = if a.id <= b.id {
            (a.id, b.id)
        } else {
            (b.id, a.id)
        };
        CandidatePair {
            a,
            b,
            score,
            rule: self.rules.rules[rule].name.clone(),
        }
    }

    /// Scores `customer` against every record added, highest first (pairs from
    /// [`MatchRules::warn_at`]); the customer itself (same id) is skipped.
    pub fn matches(&self, customer: &Customer) -> Vec<CandidatePair> {
        let print = Fingerprint::of(customer, &self.keys);
        let mut out: Vec<CandidatePair> = self
            .prints
            .iter()
            .filter(|p| p.id != print.id)
            .filter_map(|p| {
                let (score, rule) = self.score(&print, p)?;
                (score >= self.rules.warn_at).then(|| self.pair(&print, p, score, rule))
            })
            .collect();
        out.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.b.cmp(&y.b)));
        out
    }

    /// Candidate groups among the records added (see the module docs on blocking).
    pub fn find_groups(&self) -> DuplicateReport {
        let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(self.prints.len() * 8);
        let mut keys = Vec::new();
        for (n, f) in self.prints.iter().enumerate() {
            keys.clear();
            for (i, c) in self.compiled.iter().enumerate() {
                c.keys(i, f, &mut keys);
            }
            keys.sort_unstable();
            keys.dedup();
            keyed.extend(keys.iter().map(|k| (*k, n as u32)));
        }
        keyed.sort_unstable();
        let mut candidates: Vec<u64> = Vec::new();
        let mut skipped_blocks = 0;
        for block in keyed.chunk_by(|x, y| x.0 == y.0) {
            if block.len() > self.rules.max_block {
                skipped_blocks += 1;
                continue;
            }
            for (i, x) in block.iter().enumerate() {
                for y in &block[i + 1..] {
                    let (lo, hi) = (x.1.min(y.1), x.1.max(y.1));
                    candidates.push((u64::from(lo) << 32) | u64::from(hi));
                }
            }
        }
        drop(keyed);
        candidates.sort_unstable();
        candidates.dedup();
        let scored = self.score_all(&candidates);
        let mut report = self.group(scored);
        report.compared_pairs = candidates.len() as u64;
        report.skipped_blocks = skipped_blocks;
        report
    }

    /// Scores candidate pairs (packed indexes) on every core, keeping those from `warn_at`.
    fn score_all(&self, candidates: &[u64]) -> Vec<(u32, u32, f64, usize)> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = candidates.len().div_ceil(threads).max(1);
        let work = |part: &[u64]| -> Vec<(u32, u32, f64, usize)> {
            part.iter()
                .filter_map(|&packed| {
                    let (a, b) = ((packed >> 32) as u32, packed as u32);
                    let (score, rule) =
                        self.score(&self.prints[a as usize], &self.prints[b as usize])?;
                    (score >= self.rules.warn_at).then_some((a, b, score, rule))
                })
                .collect()
        };
        if threads == 1 || candidates.len() < 10_000 {
            return work(candidates);
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = candidates
                .chunks(chunk)
                .map(|part| s.spawn(move || work(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a scoring thread panicked"))
                .collect()
        })
    }

    /// Groups scored pairs into connected components.
    fn group(&self, scored: Vec<(u32, u32, f64, usize)>) -> DuplicateReport {
        let mut parent: BTreeMap<u32, u32> = BTreeMap::new();
        fn root(parent: &mut BTreeMap<u32, u32>, x: u32) -> u32 {
            let mut r = x;
            while let Some(&p) = parent.get(&r) {
                if p == r {
                    break;
                }
                r = p;
            }
            // Path halving would do; full compression keeps chains short.
            let mut y = x;
            while y != r {
                let next = parent[&y];
                parent.insert(y, r);
                y = next;
            }
            r
        }
        for &(a, b, ..) in &scored {
            parent.entry(a).or_insert(a);
            parent.entry(b).or_insert(b);
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent.insert(ra.max(rb), ra.min(rb));
            }
        }
        let mut groups: BTreeMap<u32, DuplicateGroup> = BTreeMap::new();
        let mut members: BTreeMap<u32, BTreeSet<CustomerId>> = BTreeMap::new();
        for (a, b, score, rule) in scored {
            let r = root(&mut parent, a);
            let (fa, fb) = (&self.prints[a as usize], &self.prints[b as usize]);
            let set = members.entry(r).or_default();
            set.insert(fa.id);
            set.insert(fb.id);
            groups
                .entry(r)
                .or_insert_with(|| DuplicateGroup {
                    members: Vec::new(),
                    pairs: Vec::new(),
                })
                .pairs
                .push(self.pair(fa, fb, score, rule));
        }
        let mut out: Vec<DuplicateGroup> = groups
            .into_iter()
            .map(|(r, mut g)| {
                g.members = members.remove(&r).unwrap_or_default().into_iter().collect();
                g.pairs.sort_by(|x, y| {
                    y.score
                        .total_cmp(&x.score)
                        .then(x.a.cmp(&y.a))
                        .then(x.b.cmp(&y.b))
                });
                g
            })
            .collect();
        out.sort_by(|x, y| {
            y.best_score()
                .total_cmp(&x.best_score())
                .then(x.members.cmp(&y.members))
        });
        DuplicateReport {
            groups: out,
            customers: self.prints.len(),
            compared_pairs: 0,
            skipped_blocks: 0,
        }
    }
}

/// What checking one record found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DuplicateCheck {
    /// Stored customers it matches from `warn_at`, highest score first.
    pub matches: Vec<CandidatePair>,
    /// What to do about it.
    pub verdict: Verdict,
}

/// The outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing matched from `warn_at`.
    Clear,
    /// Something matched from `warn_at`, below `block_at`.
    Warn,
    /// Something matched from `block_at`.
    Block,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str) -> crate::customer::CustomerBuilder {
        Customer::person(name)
    }

    fn detector(customers: &[Customer]) -> Detector {
        let mut d = Detector::new(MatchRules::standard()).unwrap();
        for c in customers {
            d.add(c);
        }
        d
    }

    fn print(name: &str) -> Fingerprint {
        Fingerprint::of(&person(name).build().unwrap(), &Keys::default())
    }

    #[test]
    fn names_compare_word_by_word() {
        let same = print("Ada Lovelace").name_similarity(&print("lovelace,  ADA"));
        assert!((same - 1.0).abs() < 1e-9, "{same}");
        let typo = print("Ada Lovelace").name_similarity(&print("Ada Lovelcae"));
        assert!(typo > 0.9 && typo < 1.0, "{typo}");
        let other = print("Ada Lovelace").name_similarity(&print("Ada Byron"));
        assert!(other < 0.85, "{other}");
        assert_eq!(print("--").name_similarity(&print("x")), 0.0);
    }

    #[test]
    fn rules_are_checked_field_by_field() {
        let field = |r: MatchRules| match r.validate() {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut r = MatchRules::standard();
        r.rules[2].score = 1.5;
        assert_eq!(field(r), "rules[2].score");
        let mut r = MatchRules::standard();
        r.rules[1].all_of[1] = Evidence::SimilarName { at_least: -0.1 };
        assert_eq!(field(r), "rules[1].all_of[1].at_least");
        let mut r = MatchRules::standard();
        r.rules[0].all_of.clear();
        assert_eq!(field(r), "rules[0].all_of");
        let mut r = MatchRules::standard();
        r.block_at = Some(0.5);
        assert_eq!(field(r), "block_at");
        let mut r = MatchRules::standard();
        r.warn_at = 0.0;
        assert_eq!(field(r), "warn_at");
        let mut r = MatchRules::standard();
        r.max_block = 1;
        assert_eq!(field(r), "max_block");
        let r = MatchRules {
            rules: Vec::new(),
            ..MatchRules::standard()
        };
        assert_eq!(field(r), "rules");
        // Rules are data: they survive a round trip through JSON.
        let json = serde_json::to_string(&MatchRules::standard()).unwrap();
        assert_eq!(
            serde_json::from_str::<MatchRules>(&json).unwrap(),
            MatchRules::standard()
        );
    }

    #[test]
    fn groups_link_pairs_through_each_other() {
        let date = AttrValue::Date(chrono::NaiveDate::from_ymd_opt(1990, 5, 1).unwrap());
        let a = person("Nora Jensen")
            .email("nora@example.com")
            .build()
            .unwrap();
        let b = person("Nora Jensen")
            .email("NORA@example.com")
            .phone("+45 32 12 34 56")
            .build()
            .unwrap();
        let c = person("Nora Jenssen")
            .phone("+45 32 12 34 56")
            .build()
            .unwrap();
        let d = person("Nora Jensen")
            .attribute("birth_date", date.clone())
            .build()
            .unwrap();
        let e = person("Omar Jensen")
            .attribute("birth_date", date)
            .build()
            .unwrap();
        let report = detector(&[a.clone(), b.clone(), c.clone(), d, e]).find_groups();
        assert_eq!(report.customers, 5);
        assert_eq!(report.groups.len(), 1, "{report:?}");
        let mut want = vec![a.id, b.id, c.id];
        want.sort();
        assert_eq!(report.groups[0].members, want);
        assert_eq!(report.groups[0].best_score(), 0.95);
        let rules: Vec<&str> = report.pairs().map(|p| p.rule.as_str()).collect();
        assert_eq!(rules, ["same email", "same phone, similar name"]);
    }

    #[test]
    fn oversized_blocks_are_skipped_and_counted() {
        // Forty people share one switchboard number: with blocks capped at 10 the phone
        // key is skipped, so the pair it alone would find is not reported.
        let staff: Vec<Customer> = (0..40)
            .map(|i| {
                person(&format!("Staff Member{i}"))
                    .phone("+49 30 1234567")
                    .build()
                    .unwrap()
            })
            .collect();
        let mut rules = MatchRules::standard();
        rules.max_block = 10;
        let mut d = Detector::new(rules).unwrap();
        staff.iter().for_each(|c| d.add(c));
        let report = d.find_groups();
        assert_eq!(report.skipped_blocks, 1);
        assert!(report.groups.is_empty());
        assert_eq!(report.compared_pairs, 0);
        // Under the default cap the same block is compared: one group of all forty.
        let report = detector(&staff).find_groups();
        assert_eq!(report.skipped_blocks, 0);
        assert_eq!(report.compared_pairs, 40 * 39 / 2);
        assert_eq!(report.groups.len(), 1);
        assert_eq!(report.groups[0].members.len(), 40);
    }

    #[test]
    fn a_record_is_not_its_own_duplicate() {
        let a = person("Ines Silva")
            .email("ines@example.com")
            .build()
            .unwrap();
        let d = detector(std::slice::from_ref(&a));
        assert!(d.matches(&a).is_empty());
        let mut again = a.clone();
        again.id = CustomerId::new();
        let m = d.matches(&again);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].score, 0.95);
    }

    #[test]
    fn registrations_and_domains_are_normalised() {
        assert_eq!(
            registration_key("DE 123.456-789").as_deref(),
            Some("DE123456789")
        );
        assert_eq!(registration_key(" - "), None);
        for (text, want) in [
            ("https://www.Acme.de/contact?x=1", Some("acme.de")),
            ("acme.de", Some("acme.de")),
            ("http://user@shop.acme.co.uk:8080/", Some("shop.acme.co.uk")),
            ("sales@acme.de", Some("acme.de")),
            ("localhost", None),
            ("not a host.com", None),
        ] {
            assert_eq!(web_domain(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn organisations_match_by_registration_and_domain() {
        let org = |name: &str| Customer::organization(name);
        let reg = |b: crate::customer::CustomerBuilder, n: &str| {
            b.attribute("registration_number", AttrValue::Text(n.into()))
        };
        let records = [
            reg(org("Acme GmbH"), "DE 123.456.789").build().unwrap(),
            reg(org("Zeta Logistik"), "de123456789").build().unwrap(),
            reg(person("Ann Acme"), "DE123456789").build().unwrap(),
            org("Bolt Ltd").email("info@bolt.example").build().unwrap(),
            org("Bolt Limited")
                .attribute(
                    "website",
                    AttrValue::Text("https://www.bolt.example".into()),
                )
                .build()
                .unwrap(),
            org("Bolt Ltd").email("bolt@gmail.com").build().unwrap(),
            org("Bolt Ltd.").email("sales@gmail.com").build().unwrap(),
            person("Bo Bolt").email("bo@bolt.example").build().unwrap(),
        ];
        let d = detector(&records);
        let report = d.find_groups();
        let mut pairs: Vec<(usize, usize, f64)> = report
            .pairs()
            .map(|p| {
                let at = |id| records.iter().position(|r| r.id == id).unwrap();
                let (a, b) = (at(p.a), at(p.b));
                (a.min(b), a.max(b), p.score)
            })
            .collect();
        pairs.sort_by(|x, y| x.partial_cmp(y).unwrap());
        // The two registered organisations (not the person with the number); the Bolt
        // records with bolt.example (the person shares it but is not an organisation); the
        // Gmail ones match on their names alone only if some rule says so: none does.
        assert_eq!(pairs, vec![(0, 1, 0.95), (3, 4, 0.85)]);

        // People of one company share its domain, but rules on organisations give them
        // no blocking key: no block to skip, nothing compared.
        let mut d = Detector::new(MatchRules {
            max_block: 2,
            ..MatchRules::standard()
        })
        .unwrap();
        for name in ["Ann Oak", "Ben Elm", "Cy Ash"] {
            let first = name.split(' ').next().unwrap().to_lowercase();
            d.add(
                &person(name)
                    .email(&format!("{first}@bolt.example"))
                    .build()
                    .unwrap(),
            );
        }
        let report = d.find_groups();
        assert_eq!((report.skipped_blocks, report.compared_pairs), (0, 0));
    }
}
