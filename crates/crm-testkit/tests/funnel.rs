//! The funnel recovers known stage-to-stage probabilities from a generated pipeline.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use crm_core::sales::{FunnelQuery, Opportunity};
use crm_core::{Crm, Customer, ManualClock, Money, TenantId, UserId};
use crm_testkit::conformance::sample_pipeline;
use crm_testkit::MemoryStore;

/// A small deterministic generator (SplitMix64), so a failure can be replayed.
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    }
}

/// 10,000 deals through qualify, proposal and negotiation to won (or lost at any step),
/// each going on with a known probability: every conversion the funnel reports is within
/// three standard errors of it, and the win rate of the closed deals likewise.
#[tokio::test]
async fn the_funnel_recovers_known_stage_probabilities() {
    const DEALS: usize = 10_000;
    let go_on = [0.6, 0.5, 0.4];
    let next = ["proposal", "negotiation", "won"];
    let t0 = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let crm = Crm::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());
    let tenant = crm.tenant(TenantId::new());
    let sales = tenant.sales();
    let pipeline = sales.create_pipeline(sample_pipeline()).await.unwrap();
    let account = tenant
        .customers()
        .register(Customer::organization("Acme").build().unwrap())
        .await
        .unwrap();
    let owners = [UserId::new(), UserId::new(), UserId::new()];
    let mut rng = SplitMix(20_261_130);
    for i in 0..DEALS {
        let deal = Opportunity::new(
            "Deal",
            account.id,
            owners[i % owners.len()],
            &pipeline,
            Money::parse("1000", "EUR").unwrap(),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            t0,
        )
        .unwrap();
        let mut deal = sales.open(deal).await.unwrap();
        for (p, stage) in go_on.iter().zip(next) {
            if rng.unit() < *p {
                deal = sales.move_to(deal.id, deal.version, stage).await.unwrap();
            } else {
                sales
                    .lose(deal.id, deal.version, "Lost", None)
                    .await
                    .unwrap();
                break;
            }
        }
    }
    clock.advance(Duration::days(1));
    let query = FunnelQuery {
        pipeline: pipeline.id,
        from: t0,
        to: t0 + Duration::hours(1),
    };
    let report = sales.funnel(&query, None).await.unwrap();
    assert_eq!(report.all.deals, DEALS as u64);
    for (step, p) in report.all.steps.iter().zip(go_on) {
        let n = step.reached as f64;
        let got = step.converted.unwrap();
        let se = (p * (1.0 - p) / n).sqrt();
        println!(
            "{}: reached {}, went on {got:.4} (set {p}, standard error {se:.4})",
            step.stage, step.reached
        );
        assert!(
            (got - p).abs() <= 3.0 * se,
            "{}: {got} is more than three standard errors ({se}) from {p}",
            step.stage
        );
    }
    // Every deal closed: the win rate is the product of the three.
    let p: f64 = go_on.iter().product();
    let se = (p * (1.0 - p) / DEALS as f64).sqrt();
    let got = report.all.win_rate.unwrap();
    assert!(
        (got - p).abs() <= 3.0 * se,
        "win rate {got} against {p} ± {se}"
    );
    assert_eq!(report.by_owner.len(), 3);
}
