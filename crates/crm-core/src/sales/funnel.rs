//! The funnel: how far the deals created in a period got through a pipeline's stages, how
//! many of those reaching one stage reached the next, the win rate, the cycle time and the
//! time spent in each stage, per owner and per unit.

// Counts and durations here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::opportunity::{Opportunity, StageChange};
use super::pipeline::{Outcome, Pipeline};
use crate::access::Org;
use crate::error::{Error, Result};
use crate::id::{PipelineId, TeamId, UserId};
use crate::value::StageKey;

/// Which deals a funnel follows: those of one pipeline created in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelQuery {
    /// The pipeline.
    pub pipeline: PipelineId,
    /// The first creation instant counted.
    pub from: DateTime<Utc>,
    /// The end of the period (exclusive).
    pub to: DateTime<Utc>,
}

impl FunnelQuery {
    /// Checks the period. Errors: validation on `to` unless it is after `from`.
    pub fn validate(&self) -> Result<()> {
        if self.to <= self.from {
            return Err(Error::validation("to", "must be after from"));
        }
        Ok(())
    }

    /// Whether `deal` is followed.
    pub fn matches(&self, deal: &Opportunity) -> bool {
        deal.pipeline == self.pipeline && deal.created_at >= self.from && deal.created_at < self.to
    }
}

/// Deals summed by owner, outcome and the furthest step reached: what an adapter aggregates
/// ([`SalesStore::funnel`](crate::ports::SalesStore::funnel)).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FunnelCell {
    /// The owner.
    pub owner: UserId,
    /// The outcome now.
    pub outcome: Outcome,
    /// The furthest step reached ([`steps`]: an open stage's position, or the won step).
    pub reached: u16,
    /// How many deals.
    pub deals: u64,
    /// Their cycle times summed (creation to close, whole seconds; 0 while open).
    pub cycle_seconds: i128,
}

/// Time spent in a stage, summed by owner and stage: each stay that ended (the deal moved
/// on) counts once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageTime {
    /// The owner.
    pub owner: UserId,
    /// The stage.
    pub stage: StageKey,
    /// How many stays.
    pub stays: u64,
    /// Their lengths summed, whole seconds.
    pub seconds: i128,
}

/// The steps of a pipeline's funnel with their positions: each open stage, in order, then
/// every won stage at the position after the last open one. Lost stages are no step.
pub fn steps(pipeline: &Pipeline) -> Vec<(StageKey, u16)> {
    let open: Vec<&StageKey> = pipeline.open_stages().map(|s| &s.key).collect();
    let won_at = u16::try_from(open.len()).unwrap_or(u16::MAX);
    open.into_iter()
        .zip(0..)
        .map(|(k, i)| (k.clone(), i))
        .chain(
            pipeline
                .stages
                .iter()
                .filter(|s| s.outcome == Outcome::Won)
                .map(|s| (s.key.clone(), won_at)),
        )
        .collect()
}

/// The cells and stage times of `deals`, each with its whole stage history (oldest first):
/// the reference every adapter's aggregation must equal.
pub fn funnel_of<'a>(
    pipeline: &Pipeline,
    deals: impl IntoIterator<Item = (&'a Opportunity, &'a [StageChange])>,
) -> Result<(Vec<FunnelCell>, Vec<StageTime>)> {
    let positions: BTreeMap<StageKey, u16> = steps(pipeline).into_iter().collect();
    let mut cells: BTreeMap<(UserId, Outcome, u16), (u64, i128)> = BTreeMap::new();
    let mut times: BTreeMap<(UserId, StageKey), (u64, i128)> = BTreeMap::new();
    for (deal, history) in deals {
        let reached = history
            .iter()
            .filter_map(|c| positions.get(&c.to).copied())
            .max()
            .unwrap_or(0);
        let cycle = deal
            .closed_at
            .map_or(0, |closed| i128::from(seconds(deal.created_at, closed)));
        let (n, sum) = cells
            .entry((deal.owner, deal.outcome, reached))
            .or_default();
        *n = n.checked_add(1).ok_or_else(too_many)?;
        *sum = sum.checked_add(cycle).ok_or_else(too_many)?;
        for pair in history.windows(2) {
            let (n, sum) = times.entry((deal.owner, pair[0].to.clone())).or_default();
            *n = n.checked_add(1).ok_or_else(too_many)?;
            *sum = sum
                .checked_add(i128::from(seconds(pair[0].at, pair[1].at)))
                .ok_or_else(too_many)?;
        }
    }
    Ok((
        cells
            .into_iter()
            .map(
                |((owner, outcome, reached), (deals, cycle_seconds))| FunnelCell {
                    owner,
                    outcome,
                    reached,
                    deals,
                    cycle_seconds,
                },
            )
            .collect(),
        times
            .into_iter()
            .map(|((owner, stage), (stays, seconds))| StageTime {
                owner,
                stage,
                stays,
                seconds,
            })
            .collect(),
    ))
}

/// Whole seconds from `a` to `b`, as the adapters count them (microseconds divided,
/// truncated toward zero).
fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    let micros = b.timestamp_micros().saturating_sub(a.timestamp_micros());
    micros.checked_div(1_000_000).unwrap_or(0)
}

fn too_many() -> Error {
    Error::validation("deals", "too many to count")
}

/// One step of a funnel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// The stage (the first won stage for the won step).
    pub stage: StageKey,
    /// Deals that got at least this far.
    pub reached: u64,
    /// The share of them that got at least one step further (`None`: none got here, or
    /// this is the won step).
    pub converted: Option<f64>,
    /// The average stay in the stage, in days, of the stays that ended.
    pub average_days: Option<f64>,
}

/// A funnel over some deals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    /// The open stages in order, then the won step.
    pub steps: Vec<FunnelStep>,
    /// Deals followed.
    pub deals: u64,
    /// Of them, won.
    pub won: u64,
    /// Of them, lost.
    pub lost: u64,
    /// Won of closed (`None` while none closed).
    pub win_rate: Option<f64>,
    /// The average days from creation to close of the won deals.
    pub average_cycle_days: Option<f64>,
}

const SECONDS_PER_DAY: f64 = 86_400.0;

impl Funnel {
    /// The funnel of `cells` and `times` over `pipeline`'s steps.
    pub fn of(pipeline: &Pipeline, cells: &[&FunnelCell], times: &[&StageTime]) -> Funnel {
        let steps = steps(pipeline);
        let last = steps.iter().map(|(_, p)| *p).max().unwrap_or(0);
        let at_least = |p: u16| -> u64 {
            cells
                .iter()
                .filter(|c| c.reached >= p)
                .fold(0u64, |n, c| n.saturating_add(c.deals))
        };
        let count = |o: Outcome| -> u64 {
            cells
                .iter()
                .filter(|c| c.outcome == o)
                .fold(0u64, |n, c| n.saturating_add(c.deals))
        };
        let mut out = Vec::new();
        for p in 0..=last {
            let Some((stage, _)) = steps.iter().find(|(_, q)| *q == p) else {
                continue;
            };
            let reached = at_least(p);
            let next = p.checked_add(1).map(at_least);
            let converted = match next {
                Some(next) if p < last && reached > 0 => Some(next as f64 / reached as f64),
                _ => None,
            };
            let (stays, seconds) = times
                .iter()
                .filter(|t| t.stage == *stage)
                .fold((0u64, 0f64), |(n, s), t| {
                    (n.saturating_add(t.stays), s + t.seconds as f64)
                });
            out.push(FunnelStep {
                stage: stage.clone(),
                reached,
                converted,
                average_days: (stays > 0).then(|| seconds / stays as f64 / SECONDS_PER_DAY),
            });
        }
        let (won, lost) = (count(Outcome::Won), count(Outcome::Lost));
        let closed = won.saturating_add(lost);
        let won_cycles = cells
            .iter()
            .filter(|c| c.outcome == Outcome::Won)
            .fold(0f64, |s, c| s + c.cycle_seconds as f64);
        Funnel {
            steps: out,
            deals: cells.iter().fold(0u64, |n, c| n.saturating_add(c.deals)),
            won,
            lost,
            win_rate: (closed > 0).then(|| won as f64 / closed as f64),
            average_cycle_days: (won > 0).then(|| won_cycles / won as f64 / SECONDS_PER_DAY),
        }
    }
}

/// The funnel of every deal followed, of each owner's, and of each unit's (the owners'
/// units in the organisation, when one is given).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunnelReport {
    /// Every deal followed.
    pub all: Funnel,
    /// Per owner.
    pub by_owner: BTreeMap<UserId, Funnel>,
    /// Per unit of the owners.
    pub by_unit: BTreeMap<TeamId, Funnel>,
}

impl FunnelReport {
    /// The report of `cells` and `times` over `pipeline`.
    pub fn of(
        pipeline: &Pipeline,
        cells: &[FunnelCell],
        times: &[StageTime],
        org: Option<&Org>,
    ) -> FunnelReport {
        let unit = |u: UserId| org.and_then(|o| o.member(u)).and_then(|m| m.unit);
        let all_cells: Vec<&FunnelCell> = cells.iter().collect();
        let all_times: Vec<&StageTime> = times.iter().collect();
        let mut owners: Vec<UserId> = cells.iter().map(|c| c.owner).collect();
        owners.sort();
        owners.dedup();
        let by_owner = owners
            .iter()
            .map(|o| {
                let c: Vec<&FunnelCell> = cells.iter().filter(|c| c.owner == *o).collect();
                let t: Vec<&StageTime> = times.iter().filter(|t| t.owner == *o).collect();
                (*o, Funnel::of(pipeline, &c, &t))
            })
            .collect();
        let mut units: Vec<TeamId> = owners.iter().filter_map(|o| unit(*o)).collect();
        units.sort();
        units.dedup();
        let by_unit = units
            .iter()
            .map(|u| {
                let c: Vec<&FunnelCell> =
                    cells.iter().filter(|c| unit(c.owner) == Some(*u)).collect();
                let t: Vec<&StageTime> =
                    times.iter().filter(|t| unit(t.owner) == Some(*u)).collect();
                (*u, Funnel::of(pipeline, &c, &t))
            })
            .collect();
        FunnelReport {
            all: Funnel::of(pipeline, &all_cells, &all_times),
            by_owner,
            by_unit,
        }
    }
}
