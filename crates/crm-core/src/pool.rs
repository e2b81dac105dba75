//! The public pool: customers whose owner has let them go quiet return to a shared pool,
//! from which colleagues claim them within limits (a practice of CRMs used in China, where
//! it is called 公海).
//!
//! A [`PoolPolicy`] has rules per lifecycle stage or tier tag: a customer whose owner has
//! had no contact with it for N days (from the owner's last interaction, or from when they
//! got the customer), or that has not bought for M days, returns to the pool: the owner is
//! cleared (an ownership change with the reason, so the audit trail keeps it), and the
//! owner gets a notice K days before and one at the reclaim. Customers with an open case
//! stay with their owner. Claiming obeys per-user limits: claims per day, customers held
//! at most, and a block on the previous owner reclaiming a customer for D days.
//!
//! Everything is computed from the stored customers, profiles, ownership history and
//! cases, so every adapter supports it without storage of its own; each reclaim is one
//! optimistic transaction with its notice, so concurrent runs reclaim a customer once.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::customer::{Customer, Lifecycle, OwnershipChange};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::profile::Profile;
use crate::value::Tag;

/// When customers of one stage or tier return to the pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRule {
    /// Lifecycle stages the rule covers (empty: all).
    #[serde(default)]
    pub lifecycles: Vec<Lifecycle>,
    /// Only customers with this tag (a tier such as `key-account`), if set.
    #[serde(default)]
    pub tag: Option<Tag>,
    /// Days without contact by the owner after which the customer returns.
    pub no_contact_days: Option<u32>,
    /// Days without a purchase after which the customer returns.
    pub no_purchase_days: Option<u32>,
    /// Days before the reclaim at which the owner is warned (0: no warning).
    #[serde(default)]
    pub notice_days: u32,
}

impl PoolRule {
    fn covers(&self, c: &Customer) -> bool {
        (self.lifecycles.is_empty() || self.lifecycles.contains(&c.lifecycle))
            && self.tag.as_ref().is_none_or(|t| c.tags.contains(t))
    }
}

/// Per-user limits on claiming from the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimLimits {
    /// Claims per user per day (in the policy's time zone).
    pub per_day: u32,
    /// Customers a user may own at most.
    pub max_held: u32,
    /// Days during which a customer's previous owner may not claim it back.
    pub reclaim_block_days: u32,
}

/// A tenant's pool policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolPolicy {
    /// The first rule covering a customer applies; customers no rule covers stay.
    pub rules: Vec<PoolRule>,
    /// Claim limits.
    pub limits: ClaimLimits,
    /// Customers with a case not yet resolved stay with their owner.
    #[serde(default = "yes")]
    pub exempt_open_cases: bool,
    /// The time zone whose days the daily claim limit counts (default UTC).
    #[serde(default = "utc", with = "tz_name")]
    pub time_zone: Tz,
}

fn yes() -> bool {
    true
}

fn utc() -> Tz {
    Tz::UTC
}

mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown time zone {name:?}")))
    }
}

impl PoolPolicy {
    /// Checks the policy. Errors: validation on `rules[i]` for a rule with neither limit or
    /// a zero one, on `limits.max_held` when it is zero.
    pub fn validate(&self) -> Result<()> {
        for (i, r) in self.rules.iter().enumerate() {
            let field = format!("rules[{i}]");
            if r.no_contact_days.is_none() && r.no_purchase_days.is_none() {
                return Err(Error::validation(
                    field,
                    "needs no_contact_days or no_purchase_days",
                ));
            }
            if r.no_contact_days == Some(0) || r.no_purchase_days == Some(0) {
                return Err(Error::validation(field, "days must be at least 1"));
            }
        }
        if self.limits.max_held == 0 {
            return Err(Error::validation("limits.max_held", "must be at least 1"));
        }
        Ok(())
    }

    /// When `customer` returns to the pool under the first rule covering it, given its
    /// profile and when its owner got it; `None` if no rule covers it or it has no owner.
    pub fn deadline(
        &self,
        customer: &Customer,
        profile: &Profile,
        owned_since: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, &PoolRule)> {
        let owner = customer.owner?;
        let rule = self.rules.iter().find(|r| r.covers(customer))?;
        let after = |days: u32, last: Option<DateTime<Utc>>| {
            last.map_or(owned_since, |l| l.max(owned_since)) + Duration::days(i64::from(days))
        };
        let contact = rule
            .no_contact_days
            .map(|d| after(d, profile.last_contact_by.get(&owner).copied()));
        let purchase = rule
            .no_purchase_days
            .map(|d| after(d, profile.last_purchase_at));
        let deadline = match (contact, purchase) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some((deadline, rule))
    }
}

/// What one reclaim run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReclaimReport {
    /// Owned customers looked at.
    pub checked: usize,
    /// Owners warned now of an upcoming reclaim.
    pub warned: usize,
    /// Customers returned to the pool now, with their previous owner.
    pub reclaimed: Vec<(CustomerId, UserId)>,
    /// Customers due back but kept for an open case.
    pub exempt: usize,
    /// Customers changed concurrently (handled by the next run).
    pub conflicts: usize,
    /// Due entries read, with [`Capability::Schedule`](crate::Capability::Schedule).
    #[serde(default)]
    pub due: usize,
    /// Entries marked for recomputation because the policy's rules changed since the last
    /// run.
    #[serde(default)]
    pub reset: u64,
}

/// When the current owner got the customer: the newest transfer to them, else creation.
pub(crate) fn owned_since(customer: &Customer, history: &[OwnershipChange]) -> DateTime<Utc> {
    history
        .iter()
        .find(|c| c.to == customer.owner)
        .map_or(customer.created_at, |c| c.at)
}

/// The first instant of `now`'s local date in `tz`.
pub(crate) fn start_of_day(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let date = now.with_timezone(&tz).date_naive();
    tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(now, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn policy() -> PoolPolicy {
        PoolPolicy {
            rules: vec![PoolRule {
                lifecycles: vec![Lifecycle::Active],
                tag: None,
                no_contact_days: Some(30),
                no_purchase_days: Some(90),
                notice_days: 7,
            }],
            limits: ClaimLimits {
                per_day: 2,
                max_held: 10,
                reclaim_block_days: 14,
            },
            exempt_open_cases: true,
            time_zone: Tz::UTC,
        }
    }

    #[test]
    fn the_deadline_counts_from_the_later_of_ownership_and_contact() {
        let owner = UserId::new();
        let c = Customer::person("Ann")
            .lifecycle(Lifecycle::Active)
            .owner(owner)
            .build()
            .unwrap();
        let mut p = Profile::default();
        let (d, _) = policy().deadline(&c, &p, t0()).unwrap();
        assert_eq!(d, t0() + Duration::days(30));
        p.last_contact_by.insert(owner, t0() + Duration::days(10));
        p.last_contact_by
            .insert(UserId::new(), t0() + Duration::days(25));
        let (d, _) = policy().deadline(&c, &p, t0()).unwrap();
        assert_eq!(
            d,
            t0() + Duration::days(40),
            "only the owner's contact counts"
        );
        p.last_contact_by.insert(owner, t0() + Duration::days(80));
        let (d, _) = policy().deadline(&c, &p, t0()).unwrap();
        assert_eq!(d, t0() + Duration::days(90), "no purchase since ownership");
        let lead = Customer {
            lifecycle: Lifecycle::Lead,
            ..c.clone()
        };
        assert!(
            policy().deadline(&lead, &p, t0()).is_none(),
            "no rule covers leads"
        );
        let nobody = Customer { owner: None, ..c };
        assert!(policy().deadline(&nobody, &p, t0()).is_none());
    }

    #[test]
    fn bad_policies_name_the_field() {
        let mut p = policy();
        p.rules[0].no_contact_days = None;
        p.rules[0].no_purchase_days = None;
        assert_eq!(p.validate().unwrap_err().field(), Some("rules[0]"));
        let mut p = policy();
        p.limits.max_held = 0;
        assert_eq!(p.validate().unwrap_err().field(), Some("limits.max_held"));
        let json = serde_json::to_string(&policy()).unwrap();
        assert_eq!(serde_json::from_str::<PoolPolicy>(&json).unwrap(), policy());
        let shanghai = start_of_day(chrono_tz::Asia::Shanghai, t0());
        assert_eq!(
            shanghai,
            Utc.with_ymd_and_hms(2026, 3, 1, 16, 0, 0).unwrap()
        );
    }
}
