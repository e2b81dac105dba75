//! Scoring a tenant end to end: the CDNOW sample loaded as customers and purchase
//! interactions, scored through the storage ports, on the in-memory and SQLite stores.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use crm_analytics::cdnow::read_cdnow;
use crm_analytics::clv::ClvSettings;
use crm_analytics::{score_tenant, BgNbd, Observation, ScoreSettings, TimeUnit};
use crm_core::{
    Channel, Crm, Currency, Customer, CustomerId, CustomerQuery, ExternalRef, Interaction,
    InteractionKind, Money, PageRequest, Storage, TenantId,
};

fn within(got: f64, want: f64, rel: f64) -> bool {
    ((got - want) / want).abs() <= rel
}

/// Repeat customers of real logs whose repeat purchases total nothing: sample ids 2358
/// (free items) and 2359 (a repeat order refunded the same day), in the sample's layout.
const FREE_REPEATS: &str = "\
 99991 2358 19970110  1   12.00
 99991 2358 19970301  1    0.00
 99991 2358 19970401  1    0.00
 99992 2359 19970115  1   20.00
 99992 2359 19970220  1   15.00
 99992 2359 19970220  1  -15.00
";

async fn load_cdnow(crm: &Crm, tenant: TenantId) {
    load_cdnow_with(crm, tenant, "").await
}

async fn load_cdnow_with(crm: &Crm, tenant: TenantId, extra: &str) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow/CDNOW_sample.txt");
    let mut log = read_cdnow(BufReader::new(File::open(path).unwrap())).unwrap();
    log.extend(read_cdnow(extra.as_bytes()).unwrap());
    let mut ids = std::collections::BTreeMap::new();
    for p in &log {
        if let std::collections::btree_map::Entry::Vacant(slot) = ids.entry(p.customer) {
            let c = Customer::person(&format!("CDNOW customer {}", p.customer))
                .external_id("cdnow", &p.customer.to_string())
                .build()
                .unwrap();
            slot.insert(crm.tenant(tenant).customers().register(c).await.unwrap().id);
        }
    }
    let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
    let rows: Vec<Interaction> = log
        .iter()
        .enumerate()
        .map(|(n, p)| {
            Interaction::builder(ids[&p.customer], Channel::Web, InteractionKind::Purchase)
                .at(p.date.and_time(noon).and_utc())
                .amount(Money::from_parts(p.amount, Currency::parse("USD").unwrap()).unwrap())
                .key("cdnow", &format!("line-{n}"))
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(
        crm.tenant(tenant)
            .interactions()
            .log_batch(rows)
            .await
            .unwrap()
            .inserted,
        6919 + extra.lines().count()
    );
}

async fn customer_by_sample_id(crm: &Crm, tenant: TenantId, id: u64) -> CustomerId {
    let q = CustomerQuery {
        external_id: Some(ExternalRef::new("cdnow", &id.to_string()).unwrap()),
        ..Default::default()
    };
    crm.tenant(tenant)
        .customers()
        .search(&q, &PageRequest::first(1))
        .await
        .unwrap()
        .items[0]
        .id
}

/// The published calibration: weeks, to 1997-09-30, a year's CLV at 1% a month.
fn weekly_settings() -> ScoreSettings {
    ScoreSettings {
        calibration_end: NaiveDate::from_ymd_opt(1997, 9, 30).unwrap(),
        unit: TimeUnit::Weeks,
        currency: Currency::parse("USD").unwrap(),
        clv: ClvSettings {
            horizon: 52.0,
            period: 4.345,
            discount_rate: 0.01,
            margin_rate: 0.3,
        },
    }
}

async fn scores_cdnow(storage: Arc<dyn Storage>) {
    let crm = Crm::new(storage);
    let tenant = TenantId::new();
    load_cdnow(&crm, tenant).await;
    let settings = weekly_settings();
    let now: DateTime<Utc> = "1997-10-01T06:00:00Z".parse().unwrap();
    let report = score_tenant(&crm, tenant, &settings, now).await.unwrap();
    assert_eq!(report.scored, 2357);
    let m = &report.model;
    assert_eq!((m.customers, m.repeat_customers), (2357, 946));
    assert!(within(m.purchases.r, 0.243, 0.01) && within(m.purchases.alpha, 4.414, 0.01));
    assert!(within(m.purchases.a, 0.793, 0.01) && within(m.purchases.b, 2.426, 0.01));
    assert!((m.purchases.log_likelihood - -9582.4).abs() <= 0.5);
    assert!(
        within(m.spend.p, 6.25, 0.01)
            && within(m.spend.q, 3.74, 0.01)
            && within(m.spend.gamma, 15.44, 0.01)
    );
    assert_eq!(
        crm.tenant(tenant)
            .value()
            .latest_model()
            .await
            .unwrap()
            .as_ref(),
        Some(m)
    );

    // Sample customer 1: x = 2, t_x = 30.43, T = 38.86 weeks.
    let first = customer_by_sample_id(&crm, tenant, 1).await;
    let s = crm
        .tenant(tenant)
        .value()
        .scores(first)
        .await
        .unwrap()
        .expect("scored");
    let o = Observation {
        x: 2.0,
        t_x: 213.0 / 7.0,
        t: 272.0 / 7.0,
    };
    let model = BgNbd::from(&m.purchases);
    assert!((s.p_alive - model.p_alive(&o)).abs() < 1e-12);
    assert!(
        (s.expected_purchases_90d - model.expected_purchases(90.0 / 7.0, &o).unwrap()).abs()
            < 1e-12
    );
    assert!(s.p_alive > 0.0 && s.p_alive <= 1.0);
    assert!(s.predicted_clv.amount() > rust_decimal::Decimal::ZERO);
    assert_eq!(s.predicted_clv.currency().code(), "USD");
    assert_eq!(s.scored_at, now);

    // RFM and ABC classes from the same interactions, usable in rules.
    let classified = crm_analytics::classify_tenant(
        &crm,
        tenant,
        NaiveDate::from_ymd_opt(1998, 7, 1).unwrap(),
        Currency::parse("USD").unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(classified, 2357);
    let k = crm
        .tenant(tenant)
        .value()
        .classes(first)
        .await
        .unwrap()
        .expect("classified");
    assert_eq!(
        (k.r, k.f, k.m),
        (4, 4, 4),
        "sample customer 1 as in the rfm example"
    );
    assert_eq!(k.abc, crm_core::value_class::AbcClass::A);
    let schema = crm_core::segment::FieldSchema::new(Currency::parse("USD").unwrap());
    let rule = crm_core::segment::parse(r#"abc_class = "A" and rfm_segment = "loyal""#).unwrap();
    let (count, _) = crm
        .tenant(tenant)
        .segments()
        .preview(&rule, &schema, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(count > 0);

    // A later run stores a newer model; the latest is the newer one.
    let later = now + chrono::Duration::days(1);
    let again = score_tenant(&crm, tenant, &settings, later).await.unwrap();
    assert_eq!(
        crm.tenant(tenant)
            .value()
            .latest_model()
            .await
            .unwrap()
            .unwrap()
            .fitted_at,
        later
    );
    assert_eq!(again.model.purchases, m.purchases, "same data, same fit");
}

#[tokio::test]
async fn scores_the_cdnow_sample_in_memory() {
    scores_cdnow(Arc::new(crm_testkit::MemoryStore::new())).await;
}

#[tokio::test]
async fn scores_the_cdnow_sample_on_sqlite() {
    scores_cdnow(Arc::new(crm_sqlite::SqliteStore::open_in_memory().unwrap())).await;
}

#[tokio::test]
async fn repeat_customers_with_free_or_refunded_repeats_are_scored_too() {
    let crm = Crm::new(Arc::new(crm_testkit::MemoryStore::new()));
    let tenant = TenantId::new();
    load_cdnow_with(&crm, tenant, FREE_REPEATS).await;
    let settings = weekly_settings();
    let now: DateTime<Utc> = "1997-10-01T06:00:00Z".parse().unwrap();
    let report = score_tenant(&crm, tenant, &settings, now).await.unwrap();
    assert_eq!(report.scored, 2359, "every customer is scored");
    assert_eq!(report.spend_left_out, 2);
    let m = &report.model;
    assert_eq!((m.customers, m.repeat_customers), (2359, 946));
    // The spend model is fitted on the same 946 customers as the published one.
    assert!(
        within(m.spend.p, 6.25, 0.01)
            && within(m.spend.q, 3.74, 0.01)
            && within(m.spend.gamma, 15.44, 0.01)
    );
    for id in [2358, 2359] {
        let c = customer_by_sample_id(&crm, tenant, id).await;
        let s = crm
            .tenant(tenant)
            .value()
            .scores(c)
            .await
            .unwrap()
            .expect("scored");
        assert!(
            s.predicted_clv.amount() > rust_decimal::Decimal::ZERO,
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn a_tenant_without_purchases_is_a_clear_error() {
    let crm = Crm::new(Arc::new(crm_testkit::MemoryStore::new()));
    let settings = ScoreSettings {
        calibration_end: NaiveDate::from_ymd_opt(1997, 9, 30).unwrap(),
        unit: TimeUnit::Days,
        currency: Currency::parse("USD").unwrap(),
        clv: ClvSettings {
            horizon: 365.0,
            period: 30.0,
            discount_rate: 0.0,
            margin_rate: 1.0,
        },
    };
    let err = score_tenant(&crm, TenantId::new(), &settings, Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            crm_analytics::ScoreError::Fit(crm_analytics::FitError::TooFewCustomers { got: 0, .. })
        ),
        "{err:?}"
    );
}
