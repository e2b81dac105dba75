//! What widens a principal's reach beyond its roles: per-record grants and sharing rules.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Action;
use crate::error::{Error, Result};
use crate::id::{CustomerId, TeamId, UserId};
use crate::segment::{FieldSchema, Rule};

/// How much a [`Grant`] or a [`SharingRule`] gives on a customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// See the customer, its profile and its interactions.
    Read,
    /// Also change it and log its interactions (write includes read).
    Write,
}

impl Access {
    /// Whether this access allows `action`: reads, and writes for [`Access::Write`].
    /// Transfer, export and erasure come from roles only.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Write => self == Access::Write,
            Action::Transfer | Action::Export | Action::Erase => false,
        }
    }

    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// Whom a [`Grant`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Grantee {
    /// One user.
    User(UserId),
    /// Every member of a unit (not of the units below it).
    Unit(TeamId),
}

impl fmt::Display for Grantee {
    /// `user:<uuid>` or `unit:<uuid>`: the form adapters store and index.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::User(u) => write!(f, "user:{u}"),
            Grantee::Unit(t) => write!(f, "unit:{t}"),
        }
    }
}

/// A customer shared with a user or a unit: recorded with who gave it and when, and kept
/// after revocation (with who revoked it and when) as the record of who could see what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The customer shared.
    pub customer: CustomerId,
    /// With whom.
    pub grantee: Grantee,
    /// Read, or read and write.
    pub access: Access,
    /// Who gave it (`None`: the system).
    pub granted_by: Option<UserId>,
    /// When.
    pub granted_at: DateTime<Utc>,
    /// Who took it back.
    pub revoked_by: Option<UserId>,
    /// When it was taken back (`None`: in force).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// Whether the grant is in force (not revoked).
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// What a store checks before it stores a grant in force: not revoked, and given at an
    /// instant in the supported range; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if !self.is_active() || self.revoked_by.is_some() {
            return Err(Error::validation(
                "revoked_at",
                "a grant is stored in force: leave revoked_at and revoked_by empty",
            ));
        }
        crate::clock::check_instant("granted_at", self.granted_at)?;
        Ok(())
    }
}

/// "Customers matching this rule are visible to that unit": a rule in the segment rule
/// language ([`crate::segment`]) that gives every member of `unit` read or write access to
/// the customers it matches, evaluated against the customer, its profile and its value
/// scores and classes at the time of the check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingRule {
    /// Its name, unique in the tenant (1 to 100 characters).
    pub name: String,
    /// Which customers it shares.
    pub rule: Rule,
    /// The fields the rule is checked and evaluated against.
    pub schema: FieldSchema,
    /// The unit whose members it shares them with.
    pub unit: TeamId,
    /// Read, or read and write.
    pub access: Access,
    /// Who made it (`None`: the system).
    pub created_by: Option<UserId>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl SharingRule {
    /// A sharing rule, checked ([`SharingRule::validate`]); `created_at` is set when it is
    /// stored.
    pub fn new(
        name: &str,
        rule: Rule,
        schema: FieldSchema,
        unit: TeamId,
        access: Access,
    ) -> Result<Self> {
        let sharing = SharingRule {
            name: name.to_string(),
            rule,
            schema,
            unit,
            access,
            created_by: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        sharing.validate()?;
        Ok(sharing)
    }

    /// Checks the name (1 to 100 characters, no control characters) and the rule against
    /// its schema; errors name the field (`name`, or the rule's own field errors).
    pub fn validate(&self) -> Result<()> {
        let chars = self.name.chars().count();
        if chars == 0 || chars > 100 || self.name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "1 to 100 characters, no control characters",
            ));
        }
        self.schema.check(&self.rule)
    }
}
