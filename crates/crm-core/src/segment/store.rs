//! Stored segments: definitions and memberships.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ast::Rule;
use crate::error::Error;
use crate::id::{CustomerId, SegmentId, UserId};
use crate::value::DisplayName;

/// How a segment's members are chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Membership {
    /// By a rule, re-evaluated on every refresh.
    Dynamic {
        /// The rule.
        rule: Rule,
    },
    /// Hand-picked customers.
    Static,
}

/// A segment definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Its id.
    pub id: SegmentId,
    /// Its name, unique in the tenant.
    pub name: DisplayName,
    /// Dynamic (by rule) or static (hand-picked).
    pub membership: Membership,
    /// Who owns it.
    pub owner: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Segment {
    /// A dynamic segment named `name` selecting by `rule`.
    pub fn dynamic(name: &str, rule: Rule) -> Result<Self, Error> {
        Ok(Segment {
            id: SegmentId::new(),
            name: DisplayName::parse(name)?,
            membership: Membership::Dynamic { rule },
            owner: None,
            created_at: DateTime::UNIX_EPOCH,
        })
    }

    /// A static (hand-picked) segment named `name`.
    pub fn fixed(name: &str) -> Result<Self, Error> {
        Ok(Segment {
            id: SegmentId::new(),
            name: DisplayName::parse(name)?,
            membership: Membership::Static,
            owner: None,
            created_at: DateTime::UNIX_EPOCH,
        })
    }

    /// The rule of a dynamic segment.
    pub fn rule(&self) -> Option<&Rule> {
        match &self.membership {
            Membership::Dynamic { rule } => Some(rule),
            Membership::Static => None,
        }
    }

    /// The rule a refresh evaluates; a static segment has none (a validation error on
    /// `segment`). Stores call this instead of writing the check themselves.
    pub fn rule_to_refresh(&self) -> Result<&Rule, Error> {
        self.rule()
            .ok_or_else(|| Error::validation("segment", "a static segment has no rule to refresh"))
    }

    /// Checks that members may be added or removed by hand: only a static segment's
    /// (a validation error on `segment` otherwise).
    pub fn check_static(&self) -> Result<(), Error> {
        match self.membership {
            Membership::Static => Ok(()),
            Membership::Dynamic { .. } => Err(Error::validation(
                "segment",
                "members of a dynamic segment follow its rule",
            )),
        }
    }
}

/// Who entered and who left a segment in one change of its membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// Customers who are members now and were not before, by id.
    pub entered: Vec<CustomerId>,
    /// Customers who were members before and are not now, by id.
    pub left: Vec<CustomerId>,
    /// Members after the change.
    pub members: u64,
}

impl MembershipChange {
    /// The change from the members `before` to the members `after`: what a store applies
    /// (delete `left`, insert `entered`) and reports.
    pub fn between(before: &BTreeSet<CustomerId>, after: &BTreeSet<CustomerId>) -> Self {
        MembershipChange {
            entered: after.difference(before).copied().collect(),
            left: before.difference(after).copied().collect(),
            members: after.len() as u64,
        }
    }
}
