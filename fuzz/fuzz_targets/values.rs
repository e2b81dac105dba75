//! Every value parser of crm-core on arbitrary text: no panic, and whatever parses is
//! already normalised (parsing its own output gives the same value).
#![no_main]

use crm_core::{
    Attributes, Currency, Customer, DisplayName, EmailAddress, ExternalRef, Interaction,
    PhoneNumber, SourceSystem, Tag,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = EmailAddress::parse(text) {
        assert_eq!(EmailAddress::parse(v.as_str()).unwrap(), v);
        // The masked form is an address that reads back as itself, and masked.
        let m = v.masked();
        assert!(m.is_masked());
        assert_eq!(EmailAddress::parse(m.as_str()).unwrap(), m);
    }
    if let Ok(v) = PhoneNumber::parse(text) {
        assert_eq!(PhoneNumber::parse(v.as_str()).unwrap(), v);
        let m = v.masked();
        assert!(m.is_masked() && !v.is_masked());
        assert!(PhoneNumber::parse(m.as_str()).is_err());
        assert_eq!(PhoneNumber::try_from(m.as_str().to_string()).unwrap(), m);
    }
    // What a host's deserialisation accepts (real or masked numbers) reads back as itself.
    if let Ok(v) = PhoneNumber::try_from(text.to_string()) {
        assert_eq!(PhoneNumber::try_from(v.as_str().to_string()).unwrap(), v);
    }
    if let Ok(v) = Currency::parse(text) {
        assert_eq!(Currency::parse(v.code()).unwrap(), v);
    }
    if let Ok(v) = DisplayName::parse(text) {
        assert_eq!(DisplayName::parse(v.as_str()).unwrap(), v);
    }
    if let Ok(v) = Tag::parse(text) {
        assert_eq!(Tag::parse(v.as_str()).unwrap(), v);
    }
    if let Ok(v) = SourceSystem::parse(text) {
        assert_eq!(SourceSystem::parse(v.as_str()).unwrap(), v);
    }
    if let Some((a, b)) = text.split_once(':') {
        if let Ok(v) = ExternalRef::new(a, b) {
            assert_eq!(ExternalRef::new(v.source().as_str(), v.external_id()).unwrap(), v);
        }
    }
    for currency in ["EUR", "JPY", "KWD", "XAU"] {
        if let Ok(m) = crm_core::Money::parse(text, currency) {
            assert!(m.amount().abs() <= crm_core::Money::MAX_AMOUNT);
            assert_eq!(crm_core::Money::parse(&m.amount().to_string(), currency).unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<crm_core::Money>(&json).unwrap(), m);
        }
    }
    // Deserialising validates: whatever is accepted serialises back to an equal value.
    if let Ok(c) = serde_json::from_str::<Customer>(text) {
        let again: Customer = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }
    if let Ok(i) = serde_json::from_str::<Interaction>(text) {
        let again: Interaction =
            serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
        assert_eq!(again, i);
    }
    let _ = serde_json::from_str::<Attributes>(text);
});
