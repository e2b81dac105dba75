//! A sales organisation for measuring principal-scoped reads: who owns which customers,
//! and the timing of scoped segment previews against unscoped ones in the same run.

use std::time::Instant;

use crm_core::access::{Action, Org, RecordKind, Role, Scope};
use crm_core::segment::{FieldSchema, Rule};
use crm_core::{Crm, Customer, PageRequest, TeamId, TenantId, UserId};

/// One head unit, three regions below it and three teams below each region; users spread
/// over the teams, each team's first user leading it (the others report to the lead), each
/// region's head managing its team leads, and one head over the regions.
#[derive(Clone, Debug)]
pub struct SalesOrg {
    /// The organisation.
    pub org: Org,
    /// The users who own customers, in order.
    pub users: Vec<UserId>,
    /// Each user's team, in the order of `users`.
    pub teams: Vec<TeamId>,
    /// A team lead: owns and manages about a ninth of the users' customers.
    pub team_lead: UserId,
    /// A region head: its unit and the three teams below reach about a third.
    pub region_head: UserId,
}

impl SalesOrg {
    /// An organisation of `users` salespeople (at least nine) and four heads.
    pub fn new(users: usize) -> SalesOrg {
        let users = users.max(9);
        let mut org = Org::new();
        let top = TeamId::new();
        org.add_unit(top, "Sales", None).expect("unit");
        let head = UserId::new();
        org.add_user(head, Some(top), None).expect("user");
        let mut regions = Vec::new();
        let mut team_units = Vec::new();
        for r in 0..3 {
            let region = TeamId::new();
            org.add_unit(region, &format!("Region {r}"), Some(top))
                .expect("unit");
            let region_head = UserId::new();
            org.add_user(region_head, Some(region), Some(head))
                .expect("user");
            regions.push((region, region_head));
            for t in 0..3 {
                let team = TeamId::new();
                org.add_unit(team, &format!("Team {r}.{t}"), Some(region))
                    .expect("unit");
                team_units.push((team, region_head));
            }
        }
        let mut leads: Vec<Option<UserId>> = vec![None; team_units.len()];
        let mut all = Vec::with_capacity(users);
        let mut teams = Vec::with_capacity(users);
        for i in 0..users {
            let slot = i % team_units.len();
            let (team, region_head) = team_units[slot];
            let user = UserId::new();
            let manager = leads[slot].unwrap_or(region_head);
            org.add_user(user, Some(team), Some(manager)).expect("user");
            leads[slot].get_or_insert(user);
            all.push(user);
            teams.push(team);
        }
        SalesOrg {
            org,
            team_lead: leads[0].expect("nine teams, nine users at least"),
            region_head: regions[0].1,
            users: all,
            teams,
        }
    }

    /// Gives the `i`th customer to a user in turn, with the user's team.
    pub fn assign(&self, i: usize, customer: &mut Customer) {
        let k = i % self.users.len();
        customer.owner = Some(self.users[k]);
        customer.team = Some(self.teams[k]);
    }

    /// The principals measured: a team lead reading its own and its reports' customers,
    /// and a region head reading its unit's and the units' below.
    pub fn principals(&self) -> Vec<(&'static str, UserId, Role)> {
        let reading = |scope| {
            Role::new("reader")
                .expect("name")
                .allow(RecordKind::Customers, Action::Read, scope)
        };
        vec![
            (
                "salesperson (own and subordinates)",
                self.team_lead,
                reading(Scope::OwnAndSubordinates),
            ),
            (
                "unit head (unit and descendants)",
                self.region_head,
                reading(Scope::UnitAndDescendants),
            ),
        ]
    }
}

/// One principal's timing in [`time_previews`].
#[derive(Clone, Debug)]
pub struct PreviewTiming {
    /// Who.
    pub principal: &'static str,
    /// The members it counted.
    pub members: u64,
    /// Best time of a scoped preview, in seconds.
    pub seconds: f64,
}

/// Times segment previews of `rule` (the count and a first page of ten), best of `runs`:
/// unscoped through the system handle, then for each principal through its scoped handle
/// (the CRM must have a directory holding `org`'s organisation for `tenant`). Returns the
/// unscoped member count and best time, and each principal's.
pub async fn time_previews(
    crm: &Crm,
    tenant: TenantId,
    rule: &Rule,
    schema: &FieldSchema,
    principals: &[(&'static str, UserId, Role)],
    runs: usize,
) -> crm_core::Result<((u64, f64), Vec<PreviewTiming>)> {
    let system = crm.tenant(tenant);
    let page = PageRequest::first(10);
    let mut best = f64::INFINITY;
    let mut all = 0;
    for _ in 0..runs {
        let t = Instant::now();
        all = system.segments().preview(rule, schema, &page).await?.0;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut out = Vec::new();
    for (name, user, role) in principals {
        let handle = system.as_user(*user, std::slice::from_ref(role)).await?;
        let mut scoped = f64::INFINITY;
        let mut members = 0;
        for _ in 0..runs {
            let t = Instant::now();
            members = handle.segments().preview(rule, schema, &page).await?.0;
            scoped = scoped.min(t.elapsed().as_secs_f64());
        }
        out.push(PreviewTiming {
            principal: name,
            members,
            seconds: scoped,
        });
    }
    Ok(((all, best), out))
}
