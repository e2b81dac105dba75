//! Generated data is reproducible from its seed and valid.

use chrono::{Duration, TimeZone, Utc};
use crm_testkit::Generator;

#[test]
fn same_seed_same_data() {
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let run = |seed| {
        let mut g = Generator::new(seed);
        let customers: Vec<_> = (0..50).map(|_| g.customer()).collect();
        let ids: Vec<_> = customers.iter().map(|c| c.id).collect();
        let interactions = g.interactions(&ids, 200, start, Duration::days(10));
        (customers, interactions)
    };
    let (c1, i1) = run(1);
    let (c2, i2) = run(1);
    assert_eq!(c1, c2);
    assert_eq!(i1, i2);
    let (c3, _) = run(2);
    assert_ne!(c1, c3);
    for c in &c1 {
        c.validate().unwrap();
    }
    assert!(i1.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
    assert!(i1
        .iter()
        .all(|i| i.occurred_at >= start && i.occurred_at < start + Duration::days(10)));
    let keys: std::collections::BTreeSet<_> = i1.iter().map(|i| i.key.clone()).collect();
    assert_eq!(keys.len(), i1.len(), "keys are unique");
}
