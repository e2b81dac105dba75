//! Scorecards: how each person, team or tenant met the service standards.

use super::*;

/// How to group a scorecard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// By the case's assignee.
    Person,
    /// By the assignee's team.
    Team,
    /// One group for the tenant.
    Tenant,
}

/// A group in a scorecard.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// A person.
    Person(UserId),
    /// A team.
    Team(TeamId),
    /// Cases nobody is assigned to (or whose assignee has no team).
    Unassigned,
    /// The whole tenant.
    Tenant,
}

/// One rule's results for one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreLine {
    /// The rule's key.
    pub rule: TemplateName,
    /// The group.
    pub group: Group,
    /// Finished measurements: met plus breached.
    pub measured: u32,
    /// Within target.
    pub met: u32,
    /// Over target.
    pub breached: u32,
    /// `met / measured` (1 when nothing was measured).
    pub compliance: f64,
    /// Whether compliance reaches the rule's goal.
    pub goal_reached: bool,
    /// Median of the measured values: business seconds for case rules, seconds for gaps
    /// and waits, the value (rounded) for an interaction attribute.
    pub median_secs: Option<i64>,
    /// 90th percentile (nearest rank), on the same terms.
    pub p90_secs: Option<i64>,
}

/// A period's scorecard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    /// Per rule and group, by rule key then group.
    pub lines: Vec<ScoreLine>,
    /// People by compliance over every rule (highest first; ties: more measured first).
    pub ranking: Vec<(UserId, f64)>,
}

/// The nearest-rank percentile `p` (0..=1) of sorted values.
pub(super) fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    rank.min(sorted.len())
        .checked_sub(1)
        .and_then(|i| sorted.get(i))
        .copied()
}

/// Rolls up the cases opened in `[from, to)`, measured at `now`: for each rule and group,
/// the measurements that finished (met, or breached even if still running), their
/// compliance and the median and 90th percentile of their business time. Each
/// measurement counts for the person who held the case when it was decided (when it
/// breached or stopped). `team_of` says which team a person is in (for
/// [`Grouping::Team`]); `customers` holds the cases' customers when a rule's scope
/// filters on customers (it may be empty otherwise).
#[allow(clippy::too_many_arguments)]
pub fn scorecard(
    engine: &KpiEngine,
    cases: &[Case],
    customers: &BTreeMap<CustomerId, Customer>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    grouping: Grouping,
    team_of: &dyn Fn(UserId) -> Option<TeamId>,
) -> Scorecard {
    type Acc = (u32, u32, Vec<i64>);
    let mut acc: BTreeMap<(TemplateName, Group), Acc> = BTreeMap::new();
    let mut people: BTreeMap<UserId, (u32, u32)> = BTreeMap::new();
    for case in cases
        .iter()
        .filter(|c| c.opened_at >= from && c.opened_at < to)
    {
        for (rule, status) in engine.measure(case, customers.get(&case.customer), now) {
            let met = status.state == SlaState::Met;
            let breached = status.state == SlaState::Breached;
            if !(met || breached) {
                continue;
            }
            // The person who held the case when it was decided: when it breached, or when
            // it stopped (a reassignment because of the breach does not move the blame).
            let decided = status.breach_at.or(status.stopped_at).unwrap_or(now);
            let holder = case.assignee_at(decided);
            let group = match (grouping, holder) {
                (Grouping::Tenant, _) => Group::Tenant,
                (_, None) => Group::Unassigned,
                (Grouping::Person, Some(u)) => Group::Person(u),
                (Grouping::Team, Some(u)) => team_of(u).map_or(Group::Unassigned, Group::Team),
            };
            let entry = acc.entry((rule.key.clone(), group)).or_default();
            entry.0 = entry.0.saturating_add(u32::from(met));
            entry.1 = entry.1.saturating_add(u32::from(breached));
            entry.2.push(status.elapsed.num_seconds());
            if let Some(u) = holder {
                let p = people.entry(u).or_default();
                p.0 = p.0.saturating_add(u32::from(met));
                p.1 = p.1.saturating_add(u32::from(breached));
            }
        }
    }
    finish(engine, acc, people)
}

/// The follow-up gap rules' scorecard at `now`: for each rule and group, the owned
/// customers in scope (`owned` pairs each with when its current gap began, see
/// [`Kpis::follow_up_gaps`](crate::service::Kpis::follow_up_gaps)), how many are within the allowed
/// days (met) and beyond (breached), and the median and 90th percentile of the gaps.
pub fn gap_scorecard(
    engine: &KpiEngine,
    owned: &[(Customer, DateTime<Utc>)],
    now: DateTime<Utc>,
    grouping: Grouping,
    team_of: &dyn Fn(UserId) -> Option<TeamId>,
) -> Scorecard {
    type Acc = (u32, u32, Vec<i64>);
    let mut acc: BTreeMap<(TemplateName, Group), Acc> = BTreeMap::new();
    let mut people: BTreeMap<UserId, (u32, u32)> = BTreeMap::new();
    for (customer, since) in owned {
        let Some(owner) = customer.owner else {
            continue;
        };
        let group = match grouping {
            Grouping::Tenant => Group::Tenant,
            Grouping::Person => Group::Person(owner),
            Grouping::Team => team_of(owner).map_or(Group::Unassigned, Group::Team),
        };
        let gap = now.signed_duration_since(*since);
        for (rule, max_days, _) in engine.gap_rules() {
            if !rule.scope.matches_customer(customer) {
                continue;
            }
            let met = gap.num_days() < i64::from(max_days);
            let entry = acc.entry((rule.key.clone(), group.clone())).or_default();
            entry.0 = entry.0.saturating_add(u32::from(met));
            entry.1 = entry.1.saturating_add(u32::from(!met));
            entry.2.push(gap.num_seconds());
            let p = people.entry(owner).or_default();
            p.0 = p.0.saturating_add(u32::from(met));
            p.1 = p.1.saturating_add(u32::from(!met));
        }
    }
    finish(engine, acc, people)
}

/// The scorecard of the rules on interactions over `interactions` (those of a period, see
/// [`InteractionStore::interactions_between`](crate::InteractionStore::interactions_between)):
/// per rule and group (by who handled each interaction), how many were measured, met and
/// breached, and the median and 90th percentile of the values (rounded to whole units).
pub fn interaction_scorecard(
    engine: &KpiEngine,
    interactions: &[Interaction],
    grouping: Grouping,
    team_of: &dyn Fn(UserId) -> Option<TeamId>,
) -> Scorecard {
    type Acc = (u32, u32, Vec<i64>);
    let mut acc: BTreeMap<(TemplateName, Group), Acc> = BTreeMap::new();
    let mut people: BTreeMap<UserId, (u32, u32)> = BTreeMap::new();
    for i in interactions {
        let group = match (grouping, i.handled_by) {
            (Grouping::Tenant, _) => Group::Tenant,
            (_, None) => Group::Unassigned,
            (Grouping::Person, Some(u)) => Group::Person(u),
            (Grouping::Team, Some(u)) => team_of(u).map_or(Group::Unassigned, Group::Team),
        };
        for rule in engine.interaction_rules() {
            let Some((met, value)) = rule.measure_interaction(i) else {
                continue;
            };
            let entry = acc.entry((rule.key.clone(), group.clone())).or_default();
            entry.0 = entry.0.saturating_add(u32::from(met));
            entry.1 = entry.1.saturating_add(u32::from(!met));
            entry.2.push(value.round() as i64);
            if let Some(u) = i.handled_by {
                let p = people.entry(u).or_default();
                p.0 = p.0.saturating_add(u32::from(met));
                p.1 = p.1.saturating_add(u32::from(!met));
            }
        }
    }
    finish(engine, acc, people)
}

/// Turns accumulated counts into a scorecard.
fn finish(
    engine: &KpiEngine,
    acc: BTreeMap<(TemplateName, Group), (u32, u32, Vec<i64>)>,
    people: BTreeMap<UserId, (u32, u32)>,
) -> Scorecard {
    let goals: BTreeMap<&TemplateName, f64> = engine
        .rules()
        .map(|r| (&r.key, r.compliance_goal))
        .collect();
    let lines = acc
        .into_iter()
        .map(|((rule, group), (met, breached, mut times))| {
            times.sort_unstable();
            let measured = met.saturating_add(breached);
            let compliance = if measured == 0 {
                1.0
            } else {
                f64::from(met) / f64::from(measured)
            };
            let goal = goals.get(&rule).copied().unwrap_or(1.0);
            ScoreLine {
                goal_reached: compliance >= goal,
                rule,
                group,
                measured,
                met,
                breached,
                compliance,
                median_secs: percentile(&times, 0.5),
                p90_secs: percentile(&times, 0.9),
            }
        })
        .collect();
    let mut ranking: Vec<(UserId, f64, u32)> = people
        .into_iter()
        .map(|(u, (met, breached))| {
            let n = met.saturating_add(breached);
            (u, f64::from(met) / f64::from(n.max(1)), n)
        })
        .collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    Scorecard {
        lines,
        ranking: ranking.into_iter().map(|(u, c, _)| (u, c)).collect(),
    }
}
