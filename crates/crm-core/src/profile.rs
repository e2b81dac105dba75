//! Per-customer aggregates kept as mergeable deltas (a commutative monoid).
//!
//! Every interaction yields a small [`Profile`]; [`Profile::merge`] combines two of them with
//! `count += n`, `sum += s`, `first = min`, `last = max`. Merging is associative and
//! commutative and the empty profile is its identity, so applying a batch's deltas in any
//! grouping or order gives the same profile as a rebuild from the full history. Adapters
//! apply a batch's deltas in the same transaction as the batch.
// Money, counts and durations here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::{CustomerId, UserId};
use crate::interaction::{Channel, Direction, Interaction, InteractionKind};
use crate::value::money::checked_sum;
use crate::value::Currency;

/// Aggregates over a customer's interactions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Interactions of every kind, internal notes included.
    pub interaction_count: u64,
    /// First contact with the customer (notes excluded).
    pub first_contact_at: Option<DateTime<Utc>>,
    /// Last contact with the customer (notes excluded).
    pub last_contact_at: Option<DateTime<Utc>>,
    /// Last contact started by the customer.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Last contact started by us.
    pub last_outbound_at: Option<DateTime<Utc>>,
    /// Purchases.
    pub purchase_count: u64,
    /// First purchase.
    pub first_purchase_at: Option<DateTime<Utc>>,
    /// Last purchase.
    pub last_purchase_at: Option<DateTime<Utc>>,
    /// Sum of purchase amounts, per currency (never converted).
    pub revenue: BTreeMap<Currency, Decimal>,
    /// Complaints.
    pub complaint_count: u64,
    /// Service requests.
    pub service_request_count: u64,
    /// Interactions per channel.
    pub channel_counts: BTreeMap<Channel, u64>,
    /// Last contact handled by each staff member; with the customer's owner this answers
    /// "when did the owner last talk to this customer".
    pub last_contact_by: BTreeMap<UserId, DateTime<Utc>>,
}

fn min_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.max(b)
}

impl Profile {
    /// The delta one interaction contributes.
    pub fn from_interaction(i: &Interaction) -> Profile {
        let mut p = Profile {
            interaction_count: 1,
            ..Profile::default()
        };
        p.channel_counts.insert(i.channel, 1);
        if i.is_contact() {
            p.first_contact_at = Some(i.occurred_at);
            p.last_contact_at = Some(i.occurred_at);
            if let Some(user) = i.handled_by {
                p.last_contact_by.insert(user, i.occurred_at);
            }
        }
        match i.direction {
            Direction::Inbound => p.last_inbound_at = Some(i.occurred_at),
            Direction::Outbound => p.last_outbound_at = Some(i.occurred_at),
            Direction::Internal => {}
        }
        match i.kind {
            InteractionKind::Purchase => {
                p.purchase_count = 1;
                p.first_purchase_at = Some(i.occurred_at);
                p.last_purchase_at = Some(i.occurred_at);
                if let Some(m) = i.amount {
                    p.revenue.insert(m.currency(), m.amount());
                }
            }
            InteractionKind::Complaint => p.complaint_count = 1,
            InteractionKind::ServiceRequest => p.service_request_count = 1,
            _ => {}
        }
        p
    }

    /// Folds `other` into `self`.
    ///
    /// Counts and revenue are added with checked arithmetic: a sum beyond `u64` or beyond
    /// the range of [`Decimal`] is a validation error naming the field, and `self` is left
    /// unchanged. (With amounts bounded by [`Money::MAX_AMOUNT`](crate::Money::MAX_AMOUNT)
    /// that needs tens of trillions of purchases for one customer.)
    pub fn merge(&mut self, other: &Profile) -> Result<(), Error> {
        let add = |a: u64, b: u64, field: &str| {
            a.checked_add(b)
                .ok_or_else(|| Error::validation(field, format!("the count {a} + {b} overflows")))
        };
        // Everything that can fail is computed before anything changes.
        let interaction_count = add(
            self.interaction_count,
            other.interaction_count,
            "profile.interaction_count",
        )?;
        let purchase_count = add(
            self.purchase_count,
            other.purchase_count,
            "profile.purchase_count",
        )?;
        let complaint_count = add(
            self.complaint_count,
            other.complaint_count,
            "profile.complaint_count",
        )?;
        let service_request_count = add(
            self.service_request_count,
            other.service_request_count,
            "profile.service_request_count",
        )?;
        let revenue = other
            .revenue
            .iter()
            .map(|(cur, amount)| {
                checked_sum(self.revenue_in(*cur), *amount, "profile.revenue").map(|s| (*cur, s))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let channels = other
            .channel_counts
            .iter()
            .map(|(ch, n)| {
                let mine = self.channel_counts.get(ch).copied().unwrap_or(0);
                add(mine, *n, "profile.channel_counts").map(|s| (*ch, s))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        self.interaction_count = interaction_count;
        self.first_contact_at = min_opt(self.first_contact_at, other.first_contact_at);
        self.last_contact_at = max_opt(self.last_contact_at, other.last_contact_at);
        self.last_inbound_at = max_opt(self.last_inbound_at, other.last_inbound_at);
        self.last_outbound_at = max_opt(self.last_outbound_at, other.last_outbound_at);
        self.purchase_count = purchase_count;
        self.first_purchase_at = min_opt(self.first_purchase_at, other.first_purchase_at);
        self.last_purchase_at = max_opt(self.last_purchase_at, other.last_purchase_at);
        self.revenue.extend(revenue);
        self.complaint_count = complaint_count;
        self.service_request_count = service_request_count;
        self.channel_counts.extend(channels);
        for (user, at) in &other.last_contact_by {
            let slot = self.last_contact_by.entry(*user).or_insert(*at);
            *slot = (*slot).max(*at);
        }
        Ok(())
    }

    /// The profile of a full history, computed from scratch (the oracle deltas must match).
    /// Fails only where [`Profile::merge`] does.
    pub fn rebuild<'a>(
        history: impl IntoIterator<Item = &'a Interaction>,
    ) -> Result<Profile, Error> {
        let mut p = Profile::default();
        for i in history {
            p.merge(&Profile::from_interaction(i))?;
        }
        Ok(p)
    }

    /// Revenue in one currency (zero if none).
    pub fn revenue_in(&self, currency: Currency) -> Decimal {
        self.revenue.get(&currency).copied().unwrap_or_default()
    }

    /// When `user` last handled a contact with the customer.
    pub fn last_contact_by(&self, user: UserId) -> Option<DateTime<Utc>> {
        self.last_contact_by.get(&user).copied()
    }
}

/// The deltas of a batch, one merged profile per customer it touches; fails where
/// [`Profile::merge`] does (a batch whose own totals overflow).
pub fn deltas<'a>(
    batch: impl IntoIterator<Item = &'a Interaction>,
) -> Result<BTreeMap<CustomerId, Profile>, Error> {
    let mut out: BTreeMap<CustomerId, Profile> = BTreeMap::new();
    for i in batch {
        out.entry(i.customer)
            .or_default()
            .merge(&Profile::from_interaction(i))?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::value::Money;
    use proptest::prelude::*;

    fn arb_interaction(
        customers: Vec<CustomerId>,
        users: Vec<UserId>,
    ) -> impl Strategy<Value = Interaction> {
        (
            0..customers.len(),
            0..Channel::ALL.len(),
            0..InteractionKind::ALL.len(),
            0..Direction::ALL.len(),
            proptest::option::of(0..users.len()),
            0i64..1_000_000,
            proptest::option::of((-10_000i64..100_000, 0usize..3)),
        )
            .prop_map(move |(c, ch, k, d, u, secs, amount)| {
                let mut b =
                    Interaction::builder(customers[c], Channel::ALL[ch], InteractionKind::ALL[k])
                        .direction(Direction::ALL[d])
                        .at(DateTime::from_timestamp(1_600_000_000 + secs, 0).unwrap());
                if let Some(u) = u {
                    b = b.handled_by(users[u]);
                }
                if let Some((cents, cur)) = amount {
                    let code = ["EUR", "USD", "CNY"][cur];
                    b = b.amount(Money::new(Decimal::new(cents, 2), code).unwrap());
                }
                b.build().unwrap()
            })
    }

    fn history() -> impl Strategy<Value = Vec<Interaction>> {
        let customers: Vec<CustomerId> = (0..3).map(|_| CustomerId::new()).collect();
        let users: Vec<UserId> = (0..3).map(|_| UserId::new()).collect();
        proptest::collection::vec(arb_interaction(customers, users), 0..60)
    }

    proptest! {
        #[test]
        fn deltas_in_any_grouping_equal_a_rebuild(history in history(), cuts in proptest::collection::vec(0usize..60, 0..5)) {
            // Split the history into batches at arbitrary points, apply batch deltas in reverse.
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(history.len())).collect();
            points.push(0);
            points.push(history.len());
            points.sort_unstable();
            let mut applied: BTreeMap<CustomerId, Profile> = BTreeMap::new();
            for w in points.windows(2).rev() {
                for (c, d) in deltas(&history[w[0]..w[1]]).unwrap() {
                    applied.entry(c).or_default().merge(&d).unwrap();
                }
            }
            for (c, p) in &applied {
                let rebuilt = Profile::rebuild(history.iter().filter(|i| i.customer == *c)).unwrap();
                prop_assert_eq!(p, &rebuilt);
            }
            let touched: std::collections::BTreeSet<_> = history.iter().map(|i| i.customer).collect();
            prop_assert_eq!(touched.len(), applied.len());
        }

        #[test]
        fn merge_is_associative_and_commutative(history in history()) {
            let ps: Vec<Profile> = history.iter().map(Profile::from_interaction).collect();
            let mut left = Profile::default();
            for p in &ps { left.merge(p).unwrap(); }
            let mut right = Profile::default();
            for p in ps.iter().rev() { right.merge(p).unwrap(); }
            prop_assert_eq!(&left, &right);
            let mut identity = left.clone();
            identity.merge(&Profile::default()).unwrap();
            prop_assert_eq!(identity, left);
        }
    }

    #[test]
    fn purchase_revenue_is_per_currency() {
        let c = CustomerId::new();
        let owner = UserId::new();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let buy = |amount: &str, cur: &str| {
            Interaction::builder(c, Channel::Store, InteractionKind::Purchase)
                .at(at)
                .handled_by(owner)
                .amount(Money::parse(amount, cur).unwrap())
                .build()
                .unwrap()
        };
        let p =
            Profile::rebuild(&[buy("10.50", "EUR"), buy("4.50", "EUR"), buy("7", "USD")]).unwrap();
        assert_eq!(p.purchase_count, 3);
        assert_eq!(
            p.revenue_in(Currency::parse("EUR").unwrap()),
            Decimal::new(1500, 2)
        );
        assert_eq!(
            p.revenue_in(Currency::parse("USD").unwrap()),
            Decimal::from(7)
        );
        assert_eq!(p.last_contact_by(owner), Some(at));
    }

    #[test]
    fn every_total_at_its_limit_is_an_error_that_changes_nothing() {
        let eur = Currency::parse("EUR").unwrap();
        let full = |p: &mut Profile| {
            p.interaction_count = u64::MAX;
            p.purchase_count = u64::MAX;
            p.complaint_count = u64::MAX;
            p.service_request_count = u64::MAX;
            p.revenue.insert(eur, Decimal::MAX);
            p.channel_counts.insert(Channel::Phone, u64::MAX);
        };
        type Setter = fn(&mut Profile);
        let cases: [(&str, Setter); 6] = [
            ("profile.interaction_count", |p| p.interaction_count = 1),
            ("profile.purchase_count", |p| p.purchase_count = 1),
            ("profile.complaint_count", |p| p.complaint_count = 1),
            ("profile.service_request_count", |p| {
                p.service_request_count = 1
            }),
            ("profile.revenue", |p| {
                p.revenue
                    .insert(Currency::parse("EUR").unwrap(), Decimal::ONE);
            }),
            ("profile.channel_counts", |p| {
                p.channel_counts.insert(Channel::Phone, 1);
            }),
        ];
        for (field, one) in cases {
            let mut p = Profile::default();
            full(&mut p);
            let before = p.clone();
            let mut delta = Profile::default();
            one(&mut delta);
            let err = p.merge(&delta).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
            assert_eq!(p, before, "{field}: nothing changes");
            // Far from the limit the same delta adds up.
            let mut q = Profile::default();
            q.merge(&delta).unwrap();
            q.merge(&delta).unwrap();
            assert_ne!(q, Profile::default());
        }
        // A negative total (refunds) is bounded the same way.
        let mut p = Profile::default();
        p.revenue.insert(eur, Decimal::MIN);
        let mut refund = Profile::default();
        refund.revenue.insert(eur, Decimal::NEGATIVE_ONE);
        assert_eq!(
            p.merge(&refund).unwrap_err().field(),
            Some("profile.revenue")
        );
    }

    #[test]
    fn two_largest_purchases_add_up_exactly() {
        let c = CustomerId::new();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let max = Money::from_parts(Money::MAX_AMOUNT, Currency::parse("EUR").unwrap()).unwrap();
        let buy = Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
            .at(at)
            .amount(max)
            .build()
            .unwrap();
        let p = Profile::rebuild([&buy, &buy]).unwrap();
        assert_eq!(
            p.revenue_in(max.currency()),
            Money::MAX_AMOUNT * Decimal::TWO
        );
    }
}
