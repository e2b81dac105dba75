//! The catalogue of bad inputs: every input an adversarial pass or real data found
//! breaking something, each refused with a validation error naming the field (or, for
//! rule text, a parse error saying what was expected), never a panic, and writes leave
//! nothing behind.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_core::calendar::BusinessCalendar;
use crm_core::case::{Case, CaseEventKind, CaseKind};
use crm_core::notify::{Notification, Recipient};
use crm_core::segment::{parse, FieldSchema, Rule, Segment};
use crm_core::task::{Task, TaskSubject};
use crm_core::{
    AttrValue, Channel, Crm, Currency, Customer, CustomerId, CustomerQuery, EmailAddress, Error,
    Interaction, InteractionKind, Money, PageRequest, PhoneNumber, UserId,
};
use crm_testkit::MemoryStore;

/// What a bad input must give.
enum Expect {
    /// A validation error on this field.
    Field(&'static str),
    /// An error whose text says this.
    Says(&'static str),
}

type Entry = (&'static str, Expect, Box<dyn Fn() -> Result<(), String>>);

fn validation<T>(r: Result<T, Error>) -> Result<(), String> {
    match r {
        Ok(_) => Err("accepted".into()),
        Err(Error::Validation { field, reason }) => Err(format!("field={field} {reason}")),
        Err(other) => Err(format!("not a validation error: {other:?}")),
    }
}

fn t0() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn purchase_at(at: DateTime<Utc>) -> Result<Interaction, Error> {
    Interaction::builder(CustomerId::new(), Channel::Web, InteractionKind::Purchase)
        .at(at)
        .build()
}

fn catalogue() -> Vec<Entry> {
    let money = |amount: &'static str, cur: &'static str| {
        Box::new(move || validation(Money::parse(amount, cur))) as Box<dyn Fn() -> _>
    };
    let rule_text = |text: String| {
        Box::new(move || match parse(&text) {
            Ok(_) => Err("accepted".to_string()),
            Err(e) => Err(e.to_string()),
        }) as Box<dyn Fn() -> _>
    };
    let schema = || FieldSchema::new(Currency::parse("EUR").unwrap());
    let nul = parse(r#"name = "a\u{0}b""#).unwrap();
    let mut deep = parse("revenue > 1").unwrap();
    for _ in 0..100_000 {
        deep = Rule::negate(deep);
    }
    let deep = Arc::new(std::sync::Mutex::new(Some(deep)));
    vec![
        (
            "the largest decimal as an amount",
            Expect::Field("amount"),
            money("79228162514264337593543950335", "EUR"),
        ),
        (
            "an amount past 10^15",
            Expect::Field("amount"),
            money("1000000000000000.01", "EUR"),
        ),
        (
            "29 decimals (once rounded to 0)",
            Expect::Field("amount"),
            money("0.00000000000000000000000000001", "EUR"),
        ),
        (
            "more decimals than EUR has",
            Expect::Field("amount"),
            money("1.005", "EUR"),
        ),
        (
            "decimals in JPY",
            Expect::Field("amount"),
            money("1.5", "JPY"),
        ),
        ("an exponent", Expect::Field("amount"), money("1e5", "EUR")),
        (
            "a decimal comma",
            Expect::Field("amount"),
            money("1,5", "EUR"),
        ),
        (
            "an unknown currency",
            Expect::Field("currency"),
            money("1", "ZZZ"),
        ),
        (
            "a huge amount in JSON",
            Expect::Says("beyond the largest amount"),
            Box::new(|| {
                serde_json::from_str::<Money>(
                    r#"{"amount":"79228162514264337593543950335","currency":"EUR"}"#,
                )
                .map(|_| ())
                .map_err(|e| e.to_string())
            }),
        ),
        (
            "a phone extension",
            Expect::Field("phone"),
            Box::new(|| validation(PhoneNumber::parse("+49 30 1234567 ext. 99"))),
        ),
        (
            "an interaction at the first instant chrono has",
            Expect::Field("occurred_at"),
            Box::new(|| validation(purchase_at(DateTime::<Utc>::MIN_UTC))),
        ),
        (
            "an interaction at the last instant chrono has",
            Expect::Field("occurred_at"),
            Box::new(|| validation(purchase_at(DateTime::<Utc>::MAX_UTC))),
        ),
        (
            "an interaction in 1899",
            Expect::Field("occurred_at"),
            Box::new(|| validation(purchase_at("1899-12-31T23:59:59Z".parse().unwrap()))),
        ),
        (
            "NUL in an interaction body",
            Expect::Field("body"),
            Box::new(|| {
                validation(
                    Interaction::builder(CustomerId::new(), Channel::Web, InteractionKind::Note)
                        .at(t0())
                        .body("a\0b")
                        .build(),
                )
            }),
        ),
        (
            "NUL in an attribute",
            Expect::Field("attributes.note"),
            Box::new(|| {
                validation(
                    Customer::person("Nul")
                        .attribute("note", AttrValue::Text("a\0b".into()))
                        .build(),
                )
            }),
        ),
        (
            "NUL in a list attribute",
            Expect::Field("attributes.langs"),
            Box::new(|| {
                validation(
                    Customer::person("Nul")
                        .attribute("langs", AttrValue::TextList(vec!["\0".into()]))
                        .build(),
                )
            }),
        ),
        (
            "a case opened before 1900",
            Expect::Field("opened_at"),
            Box::new(|| {
                validation(Case::open(
                    CustomerId::new(),
                    CaseKind::Inquiry,
                    "Old",
                    Channel::Web,
                    None,
                    DateTime::<Utc>::MIN_UTC,
                ))
            }),
        ),
        (
            "a case event after 9999",
            Expect::Field("event.at"),
            Box::new(|| {
                let mut c = Case::open(
                    CustomerId::new(),
                    CaseKind::Inquiry,
                    "New",
                    Channel::Web,
                    None,
                    t0(),
                )
                .unwrap();
                validation(c.record(DateTime::<Utc>::MAX_UTC, CaseEventKind::CustomerMessage))
            }),
        ),
        (
            "a case event past the longest timeline",
            Expect::Field("events"),
            Box::new(|| {
                let mut c = Case::open(
                    CustomerId::new(),
                    CaseKind::Inquiry,
                    "Chatty",
                    Channel::Web,
                    None,
                    t0(),
                )
                .unwrap();
                for i in 1..crm_core::case::MAX_EVENTS {
                    c.record(
                        t0() + Duration::seconds(i as i64),
                        CaseEventKind::CustomerMessage,
                    )
                    .unwrap();
                }
                validation(c.record(t0() + Duration::days(1), CaseEventKind::CustomerMessage))
            }),
        ),
        (
            "a task due after 9999",
            Expect::Field("due_at"),
            Box::new(|| {
                validation(Task::new(
                    TaskSubject::Customer(CustomerId::new()),
                    "Call",
                    UserId::new(),
                    DateTime::<Utc>::MAX_UTC,
                ))
            }),
        ),
        (
            "a calendar with 10,001 holidays",
            Expect::Field("holidays"),
            Box::new(|| {
                let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
                validation(BusinessCalendar::always().with_holidays(start.iter_days().take(10_001)))
            }),
        ),
        (
            "an and-chain of 1,001 terms",
            Expect::Says("at most 1000 terms"),
            rule_text(vec!["revenue > 1"; 1001].join(" and ")),
        ),
        (
            "48 KB of `1=1 and`",
            Expect::Says("at most 1000 terms"),
            rule_text("1=1 and ".repeat(6000)),
        ),
        (
            "33 levels of parentheses",
            Expect::Says("at most 32 levels"),
            rule_text(format!("{}revenue > 1{}", "(".repeat(33), ")".repeat(33))),
        ),
        (
            "a rule over 64 KiB",
            Expect::Says("at most 65536 bytes"),
            rule_text(format!("name = \"{}\"", "x".repeat(70_000))),
        ),
        (
            "100,000 nested `not`s built by hand",
            Expect::Field("rule"),
            Box::new(move || {
                let rule = deep.lock().unwrap().take().expect("run once");
                let r = validation(schema().check(&rule));
                // Unwound by hand: dropping it whole would recurse 100,000 deep.
                let mut node = rule;
                while let Rule::Not { rule } = node {
                    node = *rule;
                }
                r
            }),
        ),
        (
            "NUL in a rule's text literal",
            Expect::Field("rule"),
            Box::new(move || validation(schema().check(&nul))),
        ),
        (
            "an `and` of one term built by hand",
            Expect::Field("rule"),
            Box::new(move || {
                validation(schema().check(&Rule::And {
                    rules: vec![parse("revenue > 1").unwrap()],
                }))
            }),
        ),
        (
            "a field name that is not a name",
            Expect::Field("rule"),
            Box::new(move || {
                validation(schema().check(&Rule::IsNull {
                    operand: crm_core::segment::Operand::Field("attr.two words".into()),
                    negated: false,
                }))
            }),
        ),
        (
            "notification data of 300 KB",
            Expect::Field("data"),
            Box::new(|| {
                validation(
                    Notification::builder(
                        Recipient::Email(EmailAddress::parse("a@example.com").unwrap()),
                        "t",
                        "k",
                    )
                    .data(serde_json::json!({ "body": "x".repeat(300_000) }))
                    .build(),
                )
            }),
        ),
        (
            "notification data nested 40 deep",
            Expect::Field("data"),
            Box::new(|| {
                let mut v = serde_json::json!(1);
                for _ in 0..40 {
                    v = serde_json::json!([v]);
                }
                validation(
                    Notification::builder(
                        Recipient::Email(EmailAddress::parse("a@example.com").unwrap()),
                        "t",
                        "k",
                    )
                    .data(serde_json::json!({ "v": v }))
                    .build(),
                )
            }),
        ),
    ]
}

#[test]
fn every_bad_input_is_refused_naming_the_field() {
    let cases = catalogue();
    assert!(cases.len() >= 30);
    for (what, expect, run) in &cases {
        let got = run().expect_err(what);
        match expect {
            Expect::Field(field) => assert!(
                got.starts_with(&format!("field={field} ")),
                "{what}: expected a validation error on {field}, got {got}"
            ),
            Expect::Says(text) => assert!(got.contains(text), "{what}: {got}"),
        }
    }
    println!("{} bad inputs refused", cases.len());
}

/// Writes with a bad row: refused whole, nothing written.
#[tokio::test]
async fn bad_rows_in_writes_leave_nothing_behind() {
    let store = Arc::new(MemoryStore::new());
    let crm = Crm::new(store.clone());
    let tenant = crm_core::TenantId::new();
    let c = crm
        .tenant(tenant)
        .customers()
        .register(Customer::person("Ann").build().unwrap())
        .await
        .unwrap();
    let good = Interaction::builder(c.id, Channel::Web, InteractionKind::Call)
        .at(t0())
        .key("t", "1")
        .build()
        .unwrap();
    let mut bad = good.clone();
    bad.occurred_at = DateTime::<Utc>::MIN_UTC;
    bad.key = crm_core::ExternalRef::new("t", "2").unwrap();
    bad.id = crm_core::InteractionId::new();
    let e = crm
        .tenant(tenant)
        .interactions()
        .log_batch(vec![good, bad])
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("interactions[1].occurred_at"), "{e}");
    assert_eq!(
        crm.tenant(tenant).customers().profile(c.id).await.unwrap(),
        crm_core::Profile::default()
    );
    let nul = Segment::dynamic("NUL", parse(r#""a\u{0}" in tags"#).unwrap()).unwrap();
    let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
    assert_eq!(
        crm.tenant(tenant)
            .segments()
            .create(nul, &schema)
            .await
            .unwrap_err()
            .field(),
        Some("rule")
    );
    assert!(crm
        .tenant(tenant)
        .segments()
        .list()
        .await
        .unwrap()
        .is_empty());
    let all = crm
        .tenant(tenant)
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
}
