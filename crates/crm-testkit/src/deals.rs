//! Generated deals with their stage histories, for the sales benchmarks: a pipeline of five
//! open stages, deals created over a year by 100 owners, each moving on with a fixed
//! probability at every stage and then won or lost (or left open).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_core::sales::{ForecastCategory, Opportunity, Pipeline, Stage, StageChange};
use crm_core::{CustomerId, Money, StageKey, UserId};

/// The open stages of [`pipeline`], in order.
pub const OPEN_STAGES: [&str; 5] = [
    "qualify",
    "discovery",
    "proposal",
    "negotiation",
    "contract",
];

/// Five open stages (10 % to 90 %), won and lost.
pub fn pipeline() -> Pipeline {
    let open = [
        (10, ForecastCategory::Pipeline),
        (25, ForecastCategory::Pipeline),
        (45, ForecastCategory::BestCase),
        (70, ForecastCategory::Commit),
        (90, ForecastCategory::Commit),
    ];
    let mut stages: Vec<Stage> = OPEN_STAGES
        .iter()
        .zip(open)
        .map(|(key, (p, c))| Stage::open(key, key, p, c).expect("stage"))
        .collect();
    stages.push(Stage::won("won", "Won").expect("stage"));
    stages.push(Stage::lost("lost", "Lost").expect("stage"));
    Pipeline::new("Benchmark", stages).expect("pipeline")
}

/// Makes deals of one account and 100 owners, deterministic for a seed.
#[derive(Debug)]
pub struct DealGenerator {
    state: u64,
    pipeline: Pipeline,
    account: CustomerId,
    owners: Vec<UserId>,
    start: DateTime<Utc>,
}

impl DealGenerator {
    /// Deals of `pipeline` (from [`pipeline`]) on `account`, created from `start` on.
    pub fn new(seed: u64, pipeline: Pipeline, account: CustomerId, start: DateTime<Utc>) -> Self {
        DealGenerator {
            state: seed,
            pipeline,
            account,
            owners: (0..100).map(|_| UserId::new()).collect(),
            start,
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 33) % n.max(1)
    }

    /// The owners deals are given to.
    pub fn owners(&self) -> &[UserId] {
        &self.owners
    }

    /// One deal and its history: created within a year of the start, each open stage
    /// passed with probability 0.9, then won (60 %), lost (30 %) or left open: about five
    /// stage changes a deal.
    pub fn deal(&mut self) -> (Opportunity, Vec<StageChange>) {
        let pick = self.next(self.owners.len() as u64) as usize;
        let owner = self.owners[pick];
        let mut at = self.start + Duration::minutes(self.next(365 * 24 * 60) as i64);
        let close = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date")
            + Duration::days(self.next(730) as i64);
        let amount = Money::parse(
            &format!("{}.{:02}", 100 + self.next(99_900), self.next(100)),
            "EUR",
        )
        .expect("amount");
        let mut deal = Opportunity::new(
            "Generated",
            self.account,
            owner,
            &self.pipeline,
            amount,
            close,
            at,
        )
        .expect("deal");
        let mut history = vec![deal.stage_change(None, Some(owner))];
        let pipeline = self.pipeline.clone();
        let go = |deal: &mut Opportunity,
                  key: &str,
                  at: DateTime<Utc>,
                  history: &mut Vec<StageChange>| {
            let key = StageKey::parse(key).expect("key");
            let from = deal.enter(&pipeline, &key, at).expect("move");
            deal.version += 1;
            history.push(deal.stage_change(Some(from), Some(owner)));
        };
        let mut reached = 0;
        while reached + 1 < OPEN_STAGES.len() && self.next(100) < 90 {
            reached += 1;
            at += Duration::hours(1 + self.next(20 * 24) as i64);
            go(&mut deal, OPEN_STAGES[reached], at, &mut history);
        }
        at += Duration::hours(1 + self.next(10 * 24) as i64);
        match self.next(10) {
            0..=5 => go(&mut deal, "won", at, &mut history),
            6..=8 => {
                deal.lost_reason = Some("Price".into());
                go(&mut deal, "lost", at, &mut history);
            }
            _ => {}
        }
        (deal, history)
    }
}
