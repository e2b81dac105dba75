//! The organisation: units as a tree, users with a unit and a manager.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{TeamId, UserId};

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
