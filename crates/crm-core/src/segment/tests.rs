use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::clv::ValueScores;
use crate::customer::{Customer, Lifecycle};
use crate::interaction::{Channel, Interaction, InteractionKind};
use crate::profile::Profile;
use crate::value::{AttrValue, Currency, Money};

fn schema() -> FieldSchema {
    FieldSchema::new(Currency::parse("EUR").unwrap())
        .with_attribute("industry", AttrType::Text)
        .with_attribute("seats", AttrType::Number)
        .with_attribute("vip", AttrType::Bool)
        .with_attribute("since", AttrType::Date)
        .with_attribute("langs", AttrType::TextList)
        .with_attribute("limit", AttrType::Money)
}

fn now() -> DateTime<Utc> {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

#[test]
fn the_documented_examples_parse_and_print_canonically() {
    for text in [
        r#"lifecycle = "active" and revenue >= 10000 and days_since_last_purchase <= 90 and "vip" in tags"#,
        r#"attr.industry in ["auto", "bank"] and not (complaint_count > 2)"#,
        "last_purchase_at < now - 90d and p_alive < 0.3 and predicted_clv > 500",
        "attr.since between 2020-01-01 and 2020-12-31 or name starts_with \"Mü\"",
        "owner is null or team is not null",
    ] {
        let rule = parse(text).unwrap();
        // Canonical form: parentheses only where they change the tree.
        assert_eq!(
            rule.to_string(),
            text.replace("not (complaint_count > 2)", "not complaint_count > 2")
        );
        assert_eq!(parse(&rule.to_string()).unwrap(), rule);
        schema().check(&rule).unwrap();
    }
}

#[test]
fn precedence_and_parentheses() {
    let r = parse("a = 1 or b = 2 and not c = 3").unwrap();
    assert_eq!(r.to_string(), "a = 1 or b = 2 and not c = 3");
    assert!(matches!(r, Rule::Or { .. }));
    let r = parse("(a = 1 or b = 2) and c = 3").unwrap();
    assert!(matches!(r, Rule::And { .. }));
    assert_eq!(r.to_string(), "(a = 1 or b = 2) and c = 3");
    let right_nested = Rule::and(parse("a = 1").unwrap(), parse("b = 1 and c = 1").unwrap());
    assert_eq!(parse(&right_nested.to_string()).unwrap(), right_nested);
}

#[test]
fn parse_errors_say_where_and_what() {
    let e = parse("lifecycle = \"active\" and\n  revenue >=").unwrap_err();
    assert_eq!((e.line, e.column), (2, 13));
    assert!(e.expected.contains("operand"), "{e}");
    let e = parse("revenue >= 10 10").unwrap_err();
    assert_eq!((e.line, e.column), (1, 15));
    assert!(e.expected.contains("end of the rule"));
    let e = parse("name = \"open").unwrap_err();
    assert_eq!((e.line, e.column), (1, 8));
    let e = parse("x between 1 or 2").unwrap_err();
    assert!(e.expected.contains("`and`"), "{e}");
    let e = parse("d = 2025-13-01").unwrap_err();
    assert!(e.expected.contains("date"), "{e}");
    let e = parse(&"(".repeat(100)).unwrap_err();
    assert!(e.expected.contains("nesting"), "{e}");
    let err: crate::Error = parse("and").unwrap_err().into();
    assert_eq!(err.field(), Some("rule"));
}

#[test]
fn type_checker_rejects_unknown_fields_and_mismatches() {
    let s = schema();
    let bad = |t: &str| s.check(&parse(t).unwrap()).unwrap_err().to_string();
    assert!(bad("colour = \"red\"").contains("unknown field `colour`"));
    assert!(bad("attr.colour = \"red\"").contains("unknown field"));
    assert!(bad("lifecycle = 5").contains("cannot compare text with number"));
    assert!(bad("revenue starts_with \"1\"").contains("starts_with"));
    assert!(bad("consent.email < true").contains("booleans"));
    assert!(bad("tags = \"vip\"").contains("list field"));
    assert!(bad("tags is null").contains("never null"));
    assert!(bad("5 in [\"a\"]").contains("list"));
    assert!(bad("\"a\" in revenue").contains("`in` needs"));
    assert!(s
        .check(&parse("last_purchase_at > 2025-01-01 and created_at < now").unwrap())
        .is_ok());
    assert!(s
        .check(&parse("attr.limit >= 100 and attr.langs contains \"de\"").unwrap())
        .is_ok());
}

fn customer() -> Customer {
    Customer::organization("Müller GmbH")
        .lifecycle(Lifecycle::Active)
        .tag("vip")
        .attribute("industry", AttrValue::Text("auto".into()))
        .attribute("seats", AttrValue::Number(Decimal::from(40)))
        .attribute("langs", AttrValue::TextList(vec!["de".into(), "en".into()]))
        .attribute(
            "limit",
            AttrValue::Money(Money::parse("500", "USD").unwrap()),
        )
        .build()
        .unwrap()
}

fn profile_of(c: &Customer) -> Profile {
    let buy = |days: i64, amount: &str| {
        Interaction::builder(c.id, Channel::Web, InteractionKind::Purchase)
            .at(now() - Duration::days(days))
            .amount(Money::parse(amount, "EUR").unwrap())
            .build()
            .unwrap()
    };
    Profile::rebuild(&[buy(100, "6000"), buy(30, "5000")]).unwrap()
}

#[test]
fn evaluation_follows_the_rules() {
    let c = customer();
    let p = profile_of(&c);
    let subject = Subject {
        customer: &c,
        profile: &p,
        scores: None,
        classes: None,
        sales: None,
    };
    let s = schema();
    let holds = |t: &str| {
        CompiledRule::new(&parse(t).unwrap(), &s)
            .unwrap()
            .evaluate(&subject, now())
    };
    assert_eq!(
        holds(
            r#"lifecycle = "active" and revenue >= 10000 and days_since_last_purchase <= 90 and "vip" in tags"#
        ),
        Some(true)
    );
    assert_eq!(
        holds("days_since_last_purchase = 30 and days_since_first_purchase = 100"),
        Some(true)
    );
    assert_eq!(
        holds("last_purchase_at > now - 31d and last_purchase_at < now - 29d"),
        Some(true)
    );
    assert_eq!(
        holds(r#"attr.industry in ["auto", "bank"] and not (complaint_count > 2)"#),
        Some(true)
    );
    assert_eq!(holds("attr.seats between 40 and 40"), Some(true));
    assert_eq!(
        holds(r#"attr.langs contains "de" and "en" in attr.langs"#),
        Some(true)
    );
    assert_eq!(
        holds(r#"name contains "GmbH" and name starts_with "Mü""#),
        Some(true)
    );
    // Null semantics: unknown, and unknown is not membership.
    assert_eq!(holds("p_alive < 0.3"), None);
    assert_eq!(holds("not p_alive < 0.3"), None);
    assert_eq!(holds("p_alive < 0.3 or lifecycle = \"active\""), Some(true));
    assert_eq!(holds("p_alive < 0.3 and lifecycle = \"lead\""), Some(false));
    assert_eq!(holds("p_alive is null and attr.vip is null"), Some(true));
    assert_eq!(
        holds("attr.limit > 0"),
        None,
        "money in another currency is null"
    );
    assert_eq!(holds("attr.since in []"), Some(false));
    let scores = ValueScores {
        p_alive: 0.2,
        expected_purchases_90d: 0.5,
        predicted_clv: Money::parse("750", "EUR").unwrap(),
        scored_at: now(),
    };
    let scored = Subject {
        scores: Some(&scores),
        ..subject
    };
    let rule =
        CompiledRule::new(&parse("p_alive < 0.3 and predicted_clv > 500").unwrap(), &s).unwrap();
    assert!(rule.matches(&scored, now()));
    assert!(!rule.matches(&subject, now()));
    let classes = crate::clv::ValueClasses {
        r: 5,
        f: 4,
        m: 2,
        segment: crate::value_class::RfmSegment::Champions,
        abc: crate::value_class::AbcClass::B,
        as_of: now().date_naive(),
    };
    let classified = Subject {
        classes: Some(&classes),
        ..subject
    };
    let rule = CompiledRule::new(&parse(r#"rfm_segment = "champions" and abc_class in ["A", "B"] and r_score >= 5 and m_score < 3"#).unwrap(), &s).unwrap();
    assert!(rule.matches(&classified, now()));
    assert_eq!(
        rule.evaluate(&subject, now()),
        None,
        "unclassified: unknown"
    );
}

#[test]
fn serde_form_round_trips() {
    let rule = parse(r#"attr.industry in ["auto", 2025-01-01, 3.5, true] or not name = "x\"y\n""#)
        .unwrap();
    let json = serde_json::to_string(&rule).unwrap();
    assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
    assert_eq!(parse(&rule.to_string()).unwrap(), rule);
}

fn arb_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Zäöü王 \"\\\\\n\t\u{1}]{0,8}").unwrap()
}

fn arb_scalar() -> impl Strategy<Value = Literal> {
    prop_oneof![
        arb_text().prop_map(Literal::Text),
        (any::<i64>(), 0u32..6).prop_map(|(m, s)| Literal::Number(Decimal::new(m, s))),
        any::<bool>().prop_map(Literal::Bool),
        (1900i32..2100, 1u32..13, 1u32..29)
            .prop_map(|(y, m, d)| Literal::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap())),
    ]
}

fn arb_operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        proptest::sample::select(vec![
            "revenue",
            "lifecycle",
            "attr.industry",
            "tags",
            "consent.email",
            "a_b.c1"
        ])
        .prop_map(|f| Operand::Field(f.to_string())),
        arb_scalar().prop_map(Operand::Literal),
        (
            -1000i64..1000,
            proptest::sample::select(vec![SpanUnit::Hours, SpanUnit::Days, SpanUnit::Weeks])
        )
            .prop_map(|(amount, unit)| Operand::Now {
                offset: Span { amount, unit }
            }),
    ]
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    let leaf = prop_oneof![
        (
            arb_operand(),
            proptest::sample::select(vec![
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge
            ]),
            arb_operand()
        )
            .prop_map(|(left, cmp, right)| Rule::Compare { left, cmp, right }),
        (arb_operand(), proptest::collection::vec(arb_scalar(), 0..4)).prop_map(|(item, items)| {
            Rule::In {
                item,
                set: Operand::Literal(Literal::List(items)),
            }
        }),
        (arb_operand(), arb_operand())
            .prop_map(|(haystack, needle)| Rule::Contains { haystack, needle }),
        (arb_operand(), arb_operand()).prop_map(|(text, prefix)| Rule::StartsWith { text, prefix }),
        (arb_operand(), any::<bool>())
            .prop_map(|(operand, negated)| Rule::IsNull { operand, negated }),
        (arb_operand(), arb_operand(), arb_operand())
            .prop_map(|(operand, low, high)| Rule::Between { operand, low, high }),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Rule::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Rule::or(a, b)),
            inner.prop_map(Rule::negate),
        ]
    })
}

proptest! {
    #[test]
    fn print_then_parse_is_identity(rule in arb_rule()) {
        let text = rule.to_string();
        prop_assert_eq!(parse(&text).map_err(|e| format!("{e} in {text}")), Ok(rule));
    }

    #[test]
    fn parser_never_panics(text in "\\PC{0,60}") {
        if let Ok(rule) = parse(&text) {
            prop_assert_eq!(parse(&rule.to_string()).ok(), Some(rule));
        }
    }
}

fn deepest_rule_text() -> String {
    largest_rules()[0].clone()
}

fn longest_rule_text() -> String {
    largest_rules()[1].clone()
}

#[test]
fn limits_are_validation_errors_naming_them() {
    let deepest = parse(&deepest_rule_text()).unwrap();
    schema().check(&deepest).unwrap();
    let too_deep = format!("({})", deepest_rule_text());
    let e = parse(&too_deep).unwrap_err();
    assert!(
        e.expected.contains(&format!("at most {MAX_DEPTH} levels")),
        "{e}"
    );
    let longest = parse(&longest_rule_text()).unwrap();
    schema().check(&longest).unwrap();
    let e = parse(&format!("{} and revenue >= 1", longest_rule_text())).unwrap_err();
    assert!(
        e.expected.contains(&format!("at most {MAX_TERMS} terms")),
        "{e}"
    );
    // The attacker's 48 KB chain is refused at once.
    assert!(parse(&"1 = 1 and ".repeat(6000)).is_err());
    // Trees built by hand are held to the same limits, iteratively.
    let mut deep = parse("revenue > 1").unwrap();
    for _ in 0..100_000 {
        deep = Rule::negate(deep);
    }
    let e = schema().check(&deep).unwrap_err();
    assert_eq!(e.field(), Some("rule"));
    assert!(e.to_string().contains("levels"), "{e}");
    // Dropping it must not overflow either: unwind it by hand (a test-only concern).
    let mut node = deep;
    while let Rule::Not { rule } = node {
        node = *rule;
    }
    let wide = Rule::And {
        rules: vec![parse("revenue > 1").unwrap(); MAX_TERMS + 1],
    };
    assert!(schema()
        .check(&wide)
        .unwrap_err()
        .to_string()
        .contains("terms"));
    let lonely = Rule::And {
        rules: vec![parse("revenue > 1").unwrap()],
    };
    assert!(schema().check(&lonely).is_err());
    let odd_name = Rule::IsNull {
        operand: Operand::Field("attr.two words".into()),
        negated: false,
    };
    assert_eq!(schema().check(&odd_name).unwrap_err().field(), Some("rule"));
    let nested_list = Rule::In {
        item: Operand::Field("lifecycle".into()),
        set: Operand::Literal(Literal::List(vec![Literal::List(vec![])])),
    };
    assert!(schema().check(&nested_list).is_err());
}

#[test]
fn chains_are_flat_and_serde_is_the_text() {
    let r = parse("a = 1 and b = 2 and c = 3 or d = 4").unwrap();
    let Rule::Or { rules } = &r else {
        panic!("{r:?}")
    };
    assert!(matches!(&rules[0], Rule::And { rules } if rules.len() == 3));
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, r#""a = 1 and b = 2 and c = 3 or d = 4""#);
    assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);
    assert!(serde_json::from_str::<Rule>(r#""a = ""#).is_err());
    // A chain of the most terms is one level, and reads back from JSON.
    let longest = parse(&longest_rule_text()).unwrap();
    let json = serde_json::to_string(&longest).unwrap();
    assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), longest);
    let segment = Segment::dynamic("Long", longest).unwrap();
    let json = serde_json::to_string(&segment).unwrap();
    assert_eq!(serde_json::from_str::<Segment>(&json).unwrap(), segment);
}

/// Runs `f` on a thread with a 256 KiB stack (a tokio worker has 2 MiB).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("ran within 256 KiB of stack");
}

#[test]
fn every_walk_of_the_largest_rules_fits_a_small_stack() {
    for text in largest_rules() {
        on_small_stack(move || {
            let rule = parse(&text).unwrap();
            rule.validate().unwrap();
            schema().check(&rule).unwrap();
            let printed = rule.to_string();
            assert_eq!(parse(&printed).unwrap(), rule);
            let copy = rule.clone();
            assert_eq!(copy, rule);
            let _ = format!("{copy:?}");
            let json = serde_json::to_string(&copy).unwrap();
            let back: Rule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, rule);
            let compiled = CompiledRule::new(&rule, &schema()).unwrap();
            let (customer, profile) = (Customer::person("A").build().unwrap(), Profile::default());
            let subject = Subject {
                customer: &customer,
                profile: &profile,
                scores: None,
                classes: None,
                sales: None,
            };
            let _ = compiled.evaluate(&subject, now());
            drop(compiled);
            drop(copy);
            drop(back);
        });
    }
}

#[test]
fn account_and_deal_fields_read_the_sales_facts() {
    use crate::segment::SalesFacts;
    let c = customer();
    let p = Profile::default();
    let account = crate::id::CustomerId::new();
    let eur = |a: &str| Money::parse(a, "EUR").unwrap();
    let facts = SalesFacts {
        contacts: 3,
        account: Some(account),
        account_revenue: [(Currency::parse("EUR").unwrap(), Decimal::from(250))].into(),
        open_deals: vec![
            ("negotiation".into(), eur("12000")),
            ("negotiation".into(), eur("9000.50")),
            ("qualify".into(), Money::parse("100", "USD").unwrap()),
        ],
    };
    let s = schema();
    let with = Subject {
        customer: &c,
        profile: &p,
        scores: None,
        classes: None,
        sales: Some(&facts),
    };
    let without = Subject {
        sales: None,
        ..with
    };
    let eval = |t: &str, subject: &Subject<'_>| {
        CompiledRule::new(&parse(t).unwrap(), &s)
            .unwrap()
            .evaluate(subject, now())
    };
    for rule in [
        "contacts_count = 3",
        "account.revenue = 250",
        &format!("account.id = \"{account}\""),
        "open_deals = 3",
        "open_deal_amount = 21000.5",
        "deals.negotiation.amount = 12000",
        "deals.qualify.amount is null",
    ] {
        assert_eq!(eval(rule, &with), Some(true), "{rule}");
    }
    for rule in [
        "contacts_count = 0",
        "account.id is null",
        "account.revenue is null",
        "open_deals = 0 and open_deal_amount = 0",
        "deals.negotiation.amount is null",
    ] {
        assert_eq!(eval(rule, &without), Some(true), "{rule}");
    }
    assert_eq!(eval("deals.negotiation.amount > 1", &without), None);
    let reads = |t: &str| {
        CompiledRule::new(&parse(t).unwrap(), &s)
            .unwrap()
            .reads_sales()
    };
    assert!(reads("revenue > 1 or not (contacts_count = 0)"));
    assert!(reads("name is null and deals.won.amount between 1 and 2"));
    assert!(!reads("revenue > 1 and \"vip\" in tags"));
    for field in [
        "deals.Not a key.amount",
        "deals..amount",
        "deals.won",
        "account.name",
    ] {
        let rule = parse(&format!("{field} = 1")).map(|r| s.check(&r));
        assert!(!matches!(rule, Ok(Ok(()))), "{field} is not a field");
    }
}
