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
use crate::segment::{CompiledRule, Subject};
use crate::task::Task;

mod grants;
pub use grants::{Access, Grant, Grantee, SharingRule};

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

/// A unit of the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Its name.
    pub name: String,
    /// The unit it belongs to (`None`: a top unit).
    pub parent: Option<TeamId>,
}

/// A user's place in the organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user's unit.
    pub unit: Option<TeamId>,
    /// The user's manager.
    pub manager: Option<UserId>,
}

/// An organisation: units as a tree, users with a unit and a manager. Built so that no
/// cycle can exist (a parent or manager must be known before it is named, and a change
/// that would close a loop is refused), and no deeper than [`Org::MAX_DEPTH`] levels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    units: BTreeMap<TeamId, Unit>,
    users: BTreeMap<UserId, Member>,
}

impl Org {
    /// Deepest unit tree and longest manager chain.
    pub const MAX_DEPTH: usize = 64;
    /// Most units and most users of one organisation.
    pub const MAX_MEMBERS: usize = 1_000_000;

    /// An empty organisation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a unit or changes its name and parent. Errors: validation naming `name`, or
    /// `parent` when it is unknown, would put the unit below itself, or would make the tree
    /// deeper than [`Org::MAX_DEPTH`].
    pub fn add_unit(&mut self, id: TeamId, name: &str, parent: Option<TeamId>) -> Result<()> {
        let chars = name.chars().count();
        if chars == 0 || chars > 200 || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "1 to 200 characters, no control characters",
            ));
        }
        if !self.units.contains_key(&id) && self.units.len() >= Self::MAX_MEMBERS {
            return Err(Error::validation("units", "too many units"));
        }
        if let Some(p) = parent {
            if !self.units.contains_key(&p) {
                return Err(Error::validation("parent", format!("unknown unit {p}")));
            }
            let above = self.units_above(p);
            if p == id || above.contains(&id) {
                return Err(Error::validation(
                    "parent",
                    "would put the unit below itself",
                ));
            }
            // A new unit has nothing below it yet; only a move needs the walk down.
            let below = if self.units.contains_key(&id) {
                self.depth_below(id)
            } else {
                0
            };
            if above.len() + 2 + below > Self::MAX_DEPTH {
                return Err(Error::validation(
                    "parent",
                    format!("the tree would be deeper than {} levels", Self::MAX_DEPTH),
                ));
            }
        }
        self.units.insert(
            id,
            Unit {
                name: name.to_string(),
                parent,
            },
        );
        Ok(())
    }

    /// Adds a user or changes their unit and manager. Errors: validation naming `unit` or
    /// `manager` when unknown, `manager` when it would close a loop or make the chain
    /// longer than [`Org::MAX_DEPTH`].
    pub fn add_user(
        &mut self,
        id: UserId,
        unit: Option<TeamId>,
        manager: Option<UserId>,
    ) -> Result<()> {
        if let Some(u) = unit {
            if !self.units.contains_key(&u) {
                return Err(Error::validation("unit", format!("unknown unit {u}")));
            }
        }
        if !self.users.contains_key(&id) && self.users.len() >= Self::MAX_MEMBERS {
            return Err(Error::validation("users", "too many users"));
        }
        if let Some(m) = manager {
            if !self.users.contains_key(&m) {
                return Err(Error::validation("manager", format!("unknown user {m}")));
            }
            let chain = self.manager_chain(m);
            if m == id || chain.contains(&id) {
                return Err(Error::validation(
                    "manager",
                    "would make a loop of managers",
                ));
            }
            let below = if self.users.contains_key(&id) {
                self.reports_depth(id)
            } else {
                0
            };
            if chain.len() + 2 + below > Self::MAX_DEPTH {
                return Err(Error::validation(
                    "manager",
                    format!("the chain would be longer than {} levels", Self::MAX_DEPTH),
                ));
            }
        }
        self.users.insert(id, Member { unit, manager });
        Ok(())
    }

    /// A unit, if known.
    pub fn unit(&self, id: TeamId) -> Option<&Unit> {
        self.units.get(&id)
    }

    /// A user's place, if known.
    pub fn member(&self, id: UserId) -> Option<Member> {
        self.users.get(&id).copied()
    }

    /// The user's managers, nearest first.
    pub fn manager_chain(&self, user: UserId) -> Vec<UserId> {
        let mut chain = Vec::new();
        let mut next = self.users.get(&user).and_then(|m| m.manager);
        while let Some(m) = next {
            // The builder keeps chains acyclic and bounded; the check guards a
            // deserialised organisation too.
            if m == user || chain.contains(&m) || chain.len() >= Self::MAX_DEPTH {
                break;
            }
            chain.push(m);
            next = self.users.get(&m).and_then(|x| x.manager);
        }
        chain
    }

    /// Everyone below `user` in the manager chain, every level.
    pub fn subordinates(&self, user: UserId) -> BTreeSet<UserId> {
        let mut reports: BTreeMap<UserId, Vec<UserId>> = BTreeMap::new();
        for (id, m) in &self.users {
            if let Some(manager) = m.manager {
                reports.entry(manager).or_default().push(*id);
            }
        }
        let mut out = BTreeSet::new();
        let mut todo = vec![user];
        while let Some(u) = todo.pop() {
            for r in reports.get(&u).into_iter().flatten() {
                if *r != user && out.insert(*r) {
                    todo.push(*r);
                }
            }
        }
        out
    }

    /// `unit` and every unit below it.
    pub fn unit_and_descendants(&self, unit: TeamId) -> BTreeSet<TeamId> {
        let mut children: BTreeMap<TeamId, Vec<TeamId>> = BTreeMap::new();
        for (id, u) in &self.units {
            if let Some(p) = u.parent {
                children.entry(p).or_default().push(*id);
            }
        }
        let mut out = BTreeSet::from([unit]);
        let mut todo = vec![unit];
        while let Some(u) = todo.pop() {
            for c in children.get(&u).into_iter().flatten() {
                if out.insert(*c) {
                    todo.push(*c);
                }
            }
        }
        out
    }

    /// The members of any of `units`.
    pub fn members_of(&self, units: &BTreeSet<TeamId>) -> BTreeSet<UserId> {
        self.users
            .iter()
            .filter(|(_, m)| m.unit.is_some_and(|u| units.contains(&u)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The units above `unit`, nearest first.
    fn units_above(&self, unit: TeamId) -> Vec<TeamId> {
        let mut out = Vec::new();
        let mut next = self.units.get(&unit).and_then(|u| u.parent);
        while let Some(p) = next {
            if p == unit || out.contains(&p) || out.len() >= Self::MAX_DEPTH {
                break;
            }
            out.push(p);
            next = self.units.get(&p).and_then(|u| u.parent);
        }
        out
    }

    /// How many levels of units hang below `unit`.
    fn depth_below(&self, unit: TeamId) -> usize {
        level_depth(unit, |u| {
            self.units
                .iter()
                .filter(|(_, x)| x.parent == Some(u))
                .map(|(id, _)| *id)
                .collect()
        })
    }

    /// How many levels of reports hang below `user`.
    fn reports_depth(&self, user: UserId) -> usize {
        level_depth(user, |u| {
            self.users
                .iter()
                .filter(|(_, x)| x.manager == Some(u))
                .map(|(id, _)| *id)
                .collect()
        })
    }
}

/// Levels below `root` in a tree given by `children` (bounded by [`Org::MAX_DEPTH`] + 1).
fn level_depth<T: Copy + Ord>(root: T, children: impl Fn(T) -> Vec<T>) -> usize {
    let mut level = vec![root];
    let mut seen = BTreeSet::from([root]);
    let mut depth = 0;
    while depth <= Org::MAX_DEPTH {
        let next: Vec<T> = level
            .iter()
            .flat_map(|n| children(*n))
            .filter(|c| seen.insert(*c))
            .collect();
        if next.is_empty() {
            break;
        }
        depth += 1;
        level = next;
    }
    depth
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
        Visibility {
            user,
            unit,
            reach,
            mask_contacts,
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

    /// Whether some sharing rule could allow `action` on `kind` (then
    /// [`Visibility::shared`] decides for one customer).
    pub fn shares(&self, kind: RecordKind, action: Action) -> bool {
        follows_customer(kind) && self.sharing.iter().any(|s| s.rule.access.allows(action))
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
