//! The rule language on arbitrary text: the parser and the type checker never panic,
//! whatever parses round-trips through the printer and through serde (the stored form),
//! and whatever type-checks evaluates.
#![no_main]

use crm_core::segment::{parse, AttrType, CompiledRule, FieldSchema, SalesFacts, Subject};
use crm_core::{Currency, Customer, Money, Profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = parse(text) else {
        return;
    };
    let printed = rule.to_string();
    assert_eq!(parse(&printed).as_ref(), Ok(&rule), "round trip of {printed}");
    // Whatever the parser accepts is storable, but for a NUL in a text (refused alike by
    // every store), and reads back equal from its serde form.
    match rule.validate() {
        Ok(()) => {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(serde_json::from_str::<crm_core::segment::Rule>(&json).unwrap(), rule);
        }
        Err(e) => assert!(printed.contains("\\u{0}"), "{e} for {printed}"),
    }
    let schema = FieldSchema::new(Currency::parse("EUR").unwrap())
        .with_attribute("industry", AttrType::Text)
        .with_attribute("seats", AttrType::Number)
        .with_attribute("vip", AttrType::Bool)
        .with_attribute("since", AttrType::Date)
        .with_attribute("langs", AttrType::TextList)
        .with_attribute("limit", AttrType::Money);
    if let Ok(compiled) = CompiledRule::new(&rule, &schema) {
        let customer = Customer::person("Fuzz").build().unwrap();
        let profile = Profile::default();
        let subject = Subject { customer: &customer, profile: &profile, scores: None, classes: None, sales: None };
        let _ = compiled.evaluate(&subject, chrono::DateTime::UNIX_EPOCH);
        // With accounts and deals, the largest amounts included.
        let most = Money::new(Money::MAX_AMOUNT, "EUR").unwrap();
        let facts = SalesFacts {
            contacts: u64::MAX,
            account: Some(customer.id),
            account_revenue: [(Currency::parse("EUR").unwrap(), Money::MAX_AMOUNT)].into(),
            open_deals: vec![("negotiation".into(), most), ("negotiation".into(), most), ("qualify".into(), most)],
        };
        let subject = Subject { sales: Some(&facts), ..subject };
        let _ = compiled.evaluate(&subject, chrono::DateTime::UNIX_EPOCH);
    }
});
