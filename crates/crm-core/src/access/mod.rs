//! Record visibility inside a tenant: who may see and change which customers.
//!
//! Companies lose customers when a salesperson leaves with them, and staff of different
//! levels see different records. The core answers with policy as data:
//!
//! - an [`Org`]: units (departments, teams: [`TeamId`]) as a tree, and users with a unit and
//!   a manager. The host keeps it (its ERP's user table, an identity provider) and hands it
//!   out through [`Directory::org`];
//!   [`StaticDirectory`](crate::notify::StaticDirectory) holds one in memory;
//! - [`Role`]s: per kind of record ([`RecordKind`]) and per [`Action`], how far the role
//!   reaches ([`Scope`]): the records one owns, those of one's subordinates too, one's
//!   unit's, the unit's and its descendants', or all. A role may also mask contact points;
//! - a principal's [`Visibility`]: its roles resolved against the organisation into, per
//!   kind and action, the owners and units whose records it reaches ([`Reach`]). Roles only
//!   widen what a principal reaches; a principal without roles reaches nothing (deny by
//!   default).
//!
//! A record is reached when its owner or its unit (a customer's `team`) is in the reach. A
//! record without an owner or unit (a customer in the shared pool) is reached only by the
//! [`Scope::All`] scope.
//!
//! ```
//! use crm_core::access::{Action, Org, RecordKind, Role, Scope, Visibility};
//! use crm_core::{Customer, TeamId, UserId};
//!
//! # fn main() -> crm_core::Result<()> {
//! let (sales, north) = (TeamId::new(), TeamId::new());
//! let (head, rep) = (UserId::new(), UserId::new());
//! let mut org = Org::new();
//! org.add_unit(sales, "Sales", None)?;
//! org.add_unit(north, "Sales North", Some(sales))?;
//! org.add_user(head, Some(sales), None)?;
//! org.add_user(rep, Some(north), Some(head))?;
//!
//! let salesperson = Role::new("salesperson")?.allow(RecordKind::Customers, Action::Read, Scope::Own);
//! let unit_head = Role::new("unit head")?
//!     .allow(RecordKind::Customers, Action::Read, Scope::UnitAndDescendants);
//!
//! let mut theirs = Customer::person("Ann").build()?;
//! theirs.owner = Some(rep);
//! let rep_sees = Visibility::resolve(&org, rep, &[salesperson]);
//! let head_sees = Visibility::resolve(&org, head, &[unit_head]);
//! assert!(rep_sees.permits_customer(Action::Read, &theirs));
//! assert!(head_sees.permits_customer(Action::Read, &theirs)); // owned in a descendant unit
//! assert!(!rep_sees.permits_customer(Action::Write, &theirs)); // the role gives no writes
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::{CustomerId, TeamId, TenantId, UserId};
use crate::notify::Directory;
use crate::sales::Opportunity;
use crate::segment::{CompiledRule, Literal, Operand, Rule, Subject};
use crate::task::Task;

mod grants;
mod log;
mod org;
pub use grants::{Access, Grant, Grantee, SharingRule};
pub use log::{unusual_access, AccessEntry, AccessKind, DailyUsage, UnusualAccess, UnusualRule};
pub use org::{Member, Org, Unit};

/// The kinds of records a role speaks of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordKind {
    /// Customer records (and their profiles, timelines and value data).
    Customers,
    /// Interactions.
    Interactions,
    /// Service cases.
    Cases,
    /// Tasks.
    Tasks,
    /// Sales opportunities (deals).
    Opportunities,
}

/// What a principal does with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// See it.
    Read,
    /// Change it.
    Write,
    /// Give it to another owner.
    Transfer,
    /// Take it out of the system (exports, bulk reads).
    Export,
    /// Erase its personal data.
    Erase,
}

impl Action {
    /// The action's name: `read`, `write`, `transfer`, `export`, `erase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Transfer => "transfer",
            Action::Export => "export",
            Action::Erase => "erase",
        }
    }
}

/// How far a role reaches, narrowest first: a wider scope contains every narrower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The records the principal owns.
    Own,
    /// The principal's and its subordinates' (down the manager chain, every level).
    OwnAndSubordinates,
    /// The records of the principal's unit: owned by a member of it, or assigned to it.
    Unit,
    /// The unit's and those of every unit below it.
    UnitAndDescendants,
    /// Every record of the tenant, the shared pool included.
    All,
}

/// A named set of permissions: per kind of record and action, a [`Scope`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The role's name (1 to 100 characters).
    pub name: String,
    /// What it allows; a kind and action it does not list is denied.
    #[serde(default)]
    pub allows: Vec<Allow>,
    /// Whether holders see customers' email addresses and phone numbers masked.
    #[serde(default)]
    pub mask_contacts: bool,
    /// Daily quotas of holders (per UTC day); a kind not listed is not limited.
    #[serde(default)]
    pub daily_limits: BTreeMap<AccessKind, u64>,
}

/// One permission of a [`Role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allow {
    /// The kind of record.
    pub kind: RecordKind,
    /// The action on it.
    pub action: Action,
    /// How far.
    pub scope: Scope,
}

impl Role {
    /// Most permissions one role lists.
    pub const MAX_ALLOWS: usize = 100;

    /// A role that allows nothing yet. Errors: validation of `name`.
    pub fn new(name: &str) -> Result<Self> {
        let role = Role {
            name: name.to_string(),
            allows: Vec::new(),
            mask_contacts: false,
            daily_limits: BTreeMap::new(),
        };
        role.validate()?;
        Ok(role)
    }

    /// Allows `action` on `kind` within `scope` (replacing what the role allowed there).
    #[must_use]
    pub fn allow(mut self, kind: RecordKind, action: Action, scope: Scope) -> Self {
        self.allows.retain(|a| (a.kind, a.action) != (kind, action));
        self.allows.push(Allow {
            kind,
            action,
            scope,
        });
        self
    }

    /// Holders see contact points masked.
    #[must_use]
    pub fn masking_contacts(mut self) -> Self {
        self.mask_contacts = true;
        self
    }

    /// Holders take at most `limit` of `kind` a day (customers read with their contact
    /// points unmasked, exports); above it the call is [`Error::QuotaExceeded`].
    #[must_use]
    pub fn limit_per_day(mut self, kind: AccessKind, limit: u64) -> Self {
        self.daily_limits.insert(kind, limit);
        self
    }

    /// The scope the role gives for `action` on `kind`, if any.
    pub fn scope(&self, kind: RecordKind, action: Action) -> Option<Scope> {
        self.allows
            .iter()
            .filter(|a| a.kind == kind && a.action == action)
            .map(|a| a.scope)
            .max()
    }

    /// Checks the name (1 to 100 characters, no control characters) and the number of
    /// permissions; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let chars = self.name.chars().count();
        if chars == 0 || chars > 100 || self.name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "1 to 100 characters, no control characters",
            ));
        }
        if self.allows.len() > Self::MAX_ALLOWS {
            return Err(Error::validation(
                "allows",
                format!("at most {} permissions", Self::MAX_ALLOWS),
            ));
        }
        Ok(())
    }
}

/// The records one permission reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// None.
    Nothing,
    /// Those owned by one of `owners` or assigned to one of `units`.
    Limited {
        /// Owners whose records are reached.
        owners: BTreeSet<UserId>,
        /// Units whose records are reached.
        units: BTreeSet<TeamId>,
    },
    /// Every record of the tenant.
    All,
}

impl Reach {
    /// Whether a record with this owner and unit is reached.
    pub fn covers(&self, owner: Option<UserId>, unit: Option<TeamId>) -> bool {
        match self {
            Reach::Nothing => false,
            Reach::All => true,
            Reach::Limited { owners, units } => {
                owner.is_some_and(|o| owners.contains(&o))
                    || unit.is_some_and(|u| units.contains(&u))
            }
        }
    }

    /// The wider of two reaches (their union).
    fn widen(self, other: Reach) -> Reach {
        match (self, other) {
            (Reach::All, _) | (_, Reach::All) => Reach::All,
            (Reach::Nothing, r) | (r, Reach::Nothing) => r,
            (
                Reach::Limited {
                    mut owners,
                    mut units,
                },
                Reach::Limited {
                    owners: o,
                    units: u,
                },
            ) => {
                owners.extend(o);
                units.extend(u);
                Reach::Limited { owners, units }
            }
        }
    }
}

/// What one principal reaches: its roles resolved against the organisation, widened by
/// the grants and sharing rules that apply to it.
///
/// Grants and sharing rules speak of customers; the principal's access to a customer
/// through them covers the customer's interactions too (interactions follow their
/// customer). Only roles give transfer, export and erasure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    user: UserId,
    unit: Option<TeamId>,
    reach: BTreeMap<(RecordKind, Action), Reach>,
    mask_contacts: bool,
    daily_limits: BTreeMap<AccessKind, u64>,
    granted: BTreeMap<CustomerId, Access>,
    sharing: Vec<Shared>,
}

/// A sharing rule with its compiled form (compared by the rule).
#[derive(Clone, Debug)]
struct Shared {
    rule: SharingRule,
    compiled: CompiledRule,
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        self.rule == other.rule
    }
}

impl Eq for Shared {}

/// The kinds grants and sharing rules widen: customers, and the interactions that follow
/// them.
fn follows_customer(kind: RecordKind) -> bool {
    matches!(kind, RecordKind::Customers | RecordKind::Interactions)
}

impl Visibility {
    /// Resolves `roles` for `user` against `org`. Roles only widen: each kind and action
    /// gets the union of what the roles give; a principal without roles reaches nothing.
    /// Contacts are masked when every role that lets the user read customers masks them.
    pub fn resolve(org: &Org, user: UserId, roles: &[Role]) -> Visibility {
        let member = org.member(user);
        let unit = member.and_then(|m| m.unit);
        let mut cache: BTreeMap<Scope, Reach> = BTreeMap::new();
        let mut reach_of = |scope: Scope| {
            cache
                .entry(scope)
                .or_insert_with(|| scope_reach(org, user, unit, scope))
                .clone()
        };
        let mut reach: BTreeMap<(RecordKind, Action), Reach> = BTreeMap::new();
        for role in roles {
            for a in &role.allows {
                let widened = reach
                    .remove(&(a.kind, a.action))
                    .unwrap_or(Reach::Nothing)
                    .widen(reach_of(a.scope));
                reach.insert((a.kind, a.action), widened);
            }
        }
        let readers: Vec<&Role> = roles
            .iter()
            .filter(|r| r.scope(RecordKind::Customers, Action::Read).is_some())
            .collect();
        let mask_contacts = !readers.is_empty() && readers.iter().all(|r| r.mask_contacts);
        // Roles widen: a kind is limited only when every role giving its action limits it,
        // and then by the largest limit.
        let mut daily_limits = BTreeMap::new();
        for kind in AccessKind::ALL {
            let action = match kind {
                AccessKind::ContactReads => Action::Read,
                AccessKind::Exports => Action::Export,
            };
            let limits: Vec<Option<u64>> = roles
                .iter()
                .filter(|r| r.scope(RecordKind::Customers, action).is_some())
                .map(|r| r.daily_limits.get(&kind).copied())
                .collect();
            if !limits.is_empty() && limits.iter().all(Option::is_some) {
                daily_limits.insert(kind, limits.into_iter().flatten().max().unwrap_or(0));
            }
        }
        Visibility {
            user,
            unit,
            reach,
            mask_contacts,
            daily_limits,
            granted: BTreeMap::new(),
            sharing: Vec::new(),
        }
    }

    /// Most grants one principal may hold (its own and its unit's together).
    pub const MAX_GRANTS: usize = 100_000;

    /// Widens the visibility by the grants in force for this principal: those to it and
    /// to its unit (others are ignored). Two grants on one customer give the wider access.
    /// Errors: validation naming `grants` beyond [`Visibility::MAX_GRANTS`].
    pub fn with_grants(mut self, grants: &[Grant]) -> Result<Self> {
        for g in grants {
            let mine = match g.grantee {
                Grantee::User(u) => u == self.user,
                Grantee::Unit(t) => Some(t) == self.unit,
            };
            if !mine || !g.is_active() {
                continue;
            }
            let access = self.granted.entry(g.customer).or_insert(g.access);
            *access = (*access).max(g.access);
            if self.granted.len() > Self::MAX_GRANTS {
                return Err(Error::validation(
                    "grants",
                    format!("more than {} for one principal", Self::MAX_GRANTS),
                ));
            }
        }
        Ok(self)
    }

    /// Widens the visibility by the sharing rules for this principal's unit (others are
    /// ignored). Errors: a rule that no longer checks against its schema, naming
    /// `sharing_rules[i]`.
    pub fn with_sharing_rules(mut self, rules: &[SharingRule]) -> Result<Self> {
        for (i, rule) in rules.iter().enumerate() {
            if Some(rule.unit) != self.unit {
                continue;
            }
            let compiled = CompiledRule::new(&rule.rule, &rule.schema)
                .map_err(|e| e.in_field(&format!("sharing_rules[{i}]")))?;
            self.sharing.push(Shared {
                rule: rule.clone(),
                compiled,
            });
        }
        Ok(self)
    }

    /// [`Visibility::resolve`] against the tenant's organisation as `directory` gives it.
    /// Errors: the directory's.
    pub async fn of(
        directory: &dyn Directory,
        tenant: TenantId,
        user: UserId,
        roles: &[Role],
    ) -> Result<Visibility> {
        let org = directory.org(tenant).await?;
        Ok(Self::resolve(&org, user, roles))
    }

    /// The principal.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The principal's unit in the organisation it was resolved against.
    pub fn unit(&self) -> Option<TeamId> {
        self.unit
    }

    /// The access a grant gives the principal on `customer`, if any.
    pub fn granted(&self, customer: CustomerId) -> Option<Access> {
        self.granted.get(&customer).copied()
    }

    /// Whether `action` on `kind` of records of this customer is allowed by the roles or a
    /// grant (sharing rules need the customer's profile: see [`Visibility::shares`]).
    pub fn permits(&self, kind: RecordKind, action: Action, customer: &Customer) -> bool {
        self.reach(kind, action)
            .covers(customer.owner, customer.team)
            || (follows_customer(kind)
                && self.granted(customer.id).is_some_and(|a| a.allows(action)))
    }

    /// Whether `action` on a case of `customer` is allowed: the customer's owner or unit is
    /// reached for cases (cases follow their customer), or the case's assignee is (an
    /// agent works the cases assigned to it).
    pub fn permits_case(&self, action: Action, case: &Case, customer: &Customer) -> bool {
        let reach = self.reach(RecordKind::Cases, action);
        reach.covers(customer.owner, customer.team) || reach.covers(case.assignee, None)
    }

    /// Whether `action` on a task is allowed: its assignee is reached for tasks, or the
    /// owner or unit of the customer it is about (directly, or through its case).
    pub fn permits_task(&self, action: Action, task: &Task, customer: Option<&Customer>) -> bool {
        let reach = self.reach(RecordKind::Tasks, action);
        reach.covers(Some(task.assignee), None)
            || customer.is_some_and(|c| reach.covers(c.owner, c.team))
    }

    /// Whether `action` on a deal is allowed: its owner is reached for opportunities, the
    /// principal is on its team (read and write), or the owner or unit of its account is
    /// reached for opportunities.
    pub fn permits_opportunity(
        &self,
        action: Action,
        deal: &Opportunity,
        account: Option<&Customer>,
    ) -> bool {
        let reach = self.reach(RecordKind::Opportunities, action);
        reach.covers(Some(deal.owner), None)
            || (matches!(action, Action::Read | Action::Write) && deal.team.contains(&self.user))
            || account.is_some_and(|c| reach.covers(c.owner, c.team))
    }

    /// The customers `action` on `kind` reaches, as a rule of the segment language, for
    /// an adapter to evaluate in its own query: `owner in [...]`, `team in [...]`,
    /// `id in [...]` (the granted customers) and the sharing rules, joined by `or`
    /// (`id in []`, true of nothing, when nothing is reached). `None`: every customer.
    ///
    /// Errors: validation on `rule` when it would be larger than a rule may be
    /// ([`crate::segment::MAX_RULE_BYTES`]: about 1,500 owners, units or grants); then
    /// filter record by record instead.
    pub fn customer_rule(&self, kind: RecordKind, action: Action) -> Result<Option<Rule>> {
        let ids = |field: &str, ids: Vec<String>| Rule::In {
            item: Operand::Field(field.to_string()),
            set: Operand::Literal(Literal::List(ids.into_iter().map(Literal::Text).collect())),
        };
        let mut terms = Vec::new();
        match self.reach(kind, action) {
            Reach::All => return Ok(None),
            Reach::Nothing => {}
            Reach::Limited { owners, units } => {
                if !owners.is_empty() {
                    terms.push(ids("owner", owners.iter().map(|o| o.to_string()).collect()));
                }
                if !units.is_empty() {
                    terms.push(ids("team", units.iter().map(|u| u.to_string()).collect()));
                }
            }
        }
        if follows_customer(kind) {
            let granted: Vec<String> = self
                .granted
                .iter()
                .filter(|(_, a)| a.allows(action))
                .map(|(c, _)| c.to_string())
                .collect();
            if !granted.is_empty() {
                terms.push(ids("id", granted));
            }
            terms.extend(
                self.sharing
                    .iter()
                    .filter(|s| s.rule.access.allows(action))
                    .map(|s| s.rule.rule.clone()),
            );
        }
        let rule = match terms.len() {
            0 => ids("id", Vec::new()),
            1 => terms.remove(0),
            _ => Rule::Or { rules: terms },
        };
        rule.validate()?;
        Ok(Some(rule))
    }

    /// Whether some sharing rule could allow `action` on `kind` (then
    /// [`Visibility::shared`] decides for one customer).
    pub fn shares(&self, kind: RecordKind, action: Action) -> bool {
        follows_customer(kind) && self.sharing.iter().any(|s| s.rule.access.allows(action))
    }

    /// Whether a sharing rule allowing `action` on `kind` reads accounts or deals (so
    /// [`shared`](Self::shared) needs the subject's [`SalesFacts`](crate::segment::SalesFacts)).
    pub fn shares_by_sales(&self, kind: RecordKind, action: Action) -> bool {
        follows_customer(kind)
            && self
                .sharing
                .iter()
                .any(|s| s.rule.access.allows(action) && s.compiled.reads_sales())
    }

    /// Whether a sharing rule allowing `action` on `kind` matches `subject` at `now`.
    pub fn shared(
        &self,
        kind: RecordKind,
        action: Action,
        subject: &Subject<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        follows_customer(kind)
            && self
                .sharing
                .iter()
                .any(|s| s.rule.access.allows(action) && s.compiled.matches(subject, now))
    }

    /// Whether this customer's contact points reach the principal masked: when its roles
    /// mask contacts, and for a customer in the shared pool (until someone claims it).
    pub fn masks(&self, customer: &Customer) -> bool {
        self.mask_contacts || customer.owner.is_none()
    }

    /// What `action` on `kind` reaches.
    pub fn reach(&self, kind: RecordKind, action: Action) -> &Reach {
        self.reach.get(&(kind, action)).unwrap_or(&Reach::Nothing)
    }

    /// Whether `action` on this customer is allowed (its owner or unit is reached, or a
    /// grant allows it).
    pub fn permits_customer(&self, action: Action, customer: &Customer) -> bool {
        self.permits(RecordKind::Customers, action, customer)
    }

    /// The principal's daily quota of `kind`, if limited.
    pub fn daily_limit(&self, kind: AccessKind) -> Option<u64> {
        self.daily_limits.get(&kind).copied()
    }

    /// Whether the principal sees contact points masked.
    pub fn masks_contacts(&self) -> bool {
        self.mask_contacts
    }
}

/// The records one scope reaches for `user` of `unit`.
fn scope_reach(org: &Org, user: UserId, unit: Option<TeamId>, scope: Scope) -> Reach {
    let units = match (scope, unit) {
        (Scope::All, _) => return Reach::All,
        (Scope::Own, _) => {
            return Reach::Limited {
                owners: BTreeSet::from([user]),
                units: BTreeSet::new(),
            }
        }
        (Scope::OwnAndSubordinates, _) => {
            let mut owners = org.subordinates(user);
            owners.insert(user);
            return Reach::Limited {
                owners,
                units: BTreeSet::new(),
            };
        }
        // A user outside any unit reaches only their own records by a unit scope.
        (Scope::Unit | Scope::UnitAndDescendants, None) => BTreeSet::new(),
        (Scope::Unit, Some(u)) => BTreeSet::from([u]),
        (Scope::UnitAndDescendants, Some(u)) => org.unit_and_descendants(u),
    };
    let mut owners = org.members_of(&units);
    owners.insert(user);
    Reach::Limited { owners, units }
}

#[cfg(test)]
mod tests;
