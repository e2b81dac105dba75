//! The duplicates service.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Ctx, Customers};
use crate::customer::{Customer, CustomerQuery};
use crate::dedup::{Detector, DuplicateCheck, DuplicateReport, Evidence, MatchRules, Verdict};
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::page::PageRequest;
use crate::ports::SegmentStore;
use crate::segment::{AttrType, CmpOp, FieldSchema, Literal, Operand, Rule};
use crate::value::{AttrKey, AttrValue, Currency};

/// Duplicate detection over one tenant's stored customers (see [`crate::dedup`]). From
/// [`TenantCrm::duplicates`](super::TenantCrm::duplicates).
#[derive(Clone)]
pub struct Duplicates {
    ctx: Ctx,
    customers: Customers,
    segment_store: Arc<dyn SegmentStore>,
}

debug_by_tenant!(Duplicates);

impl Duplicates {
    pub(super) fn new(customers: Customers, segment_store: Arc<dyn SegmentStore>) -> Self {
        Duplicates {
            ctx: customers.ctx.clone(),
            customers,
            segment_store,
        }
    }

    /// Checks `customer` (not yet saved) against the stored customers that could match it:
    /// those sharing an email address or a phone number, and, per rule that compares
    /// attributes, up to [`MatchRules::max_block`] customers with the same values.
    pub async fn check(&self, customer: &Customer, rules: &MatchRules) -> Result<DuplicateCheck> {
        self.ctx.system_only("duplicates.check")?;
        let mut detector = Detector::new(rules.clone())?;
        let mut seen: HashSet<CustomerId> = HashSet::new();
        let mut consider = |found: Vec<Customer>, detector: &mut Detector| {
            for c in found {
                if seen.insert(c.id) {
                    detector.add(&c);
                }
            }
        };
        for e in &customer.emails {
            let q = CustomerQuery {
                email: Some(e.clone()),
                ..CustomerQuery::default()
            };
            consider(self.customers.all(&q).await?, &mut detector);
        }
        for p in &customer.phones {
            let q = CustomerQuery {
                phone: Some(p.clone()),
                ..CustomerQuery::default()
            };
            consider(self.customers.all(&q).await?, &mut detector);
        }
        for r in &rules.rules {
            let attrs: Vec<(&AttrKey, &AttrValue)> = r
                .all_of
                .iter()
                .filter_map(|e| match e {
                    // A registration number is looked up as written; the comparison
                    // then ignores spacing and case.
                    Evidence::SameAttribute { key } | Evidence::SameRegistration { key } => {
                        customer.attributes.get(key.as_str()).map(|v| (key, v))
                    }
                    _ => None,
                })
                .collect();
            let wanted = r
                .all_of
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Evidence::SameAttribute { .. } | Evidence::SameRegistration { .. }
                    )
                })
                .count();
            if attrs.is_empty() || attrs.len() != wanted {
                continue;
            }
            consider(
                self.customers_with_attributes(&attrs, rules.max_block)
                    .await?,
                &mut detector,
            );
        }
        let matches = detector.matches(customer);
        let verdict = match matches.first() {
            None => Verdict::Clear,
            Some(m) if rules.block_at.is_some_and(|b| m.score >= b) => Verdict::Block,
            Some(_) => Verdict::Warn,
        };
        Ok(DuplicateCheck { matches, verdict })
    }

    /// Customers whose attributes equal these values, at most `limit`, through a segment
    /// rule (built as a tree, so adapters run it as a query).
    async fn customers_with_attributes(
        &self,
        attrs: &[(&AttrKey, &AttrValue)],
        limit: usize,
    ) -> Result<Vec<Customer>> {
        let tenant = self.ctx.tenant;
        let mut schema = FieldSchema::new(Currency::parse("EUR")?);
        let mut parts = Vec::new();
        for (key, value) in attrs {
            let (ty, literal) = match value {
                AttrValue::Text(t) => (AttrType::Text, Literal::Text(t.clone())),
                AttrValue::Date(d) => (AttrType::Date, Literal::Date(*d)),
                AttrValue::Bool(b) => (AttrType::Bool, Literal::Bool(*b)),
                AttrValue::Number(n) => (AttrType::Number, Literal::Number(*n)),
                // Money and lists are not looked up.
                _ => return Ok(Vec::new()),
            };
            schema = schema.with_attribute(key.as_str(), ty);
            parts.push(Rule::Compare {
                left: Operand::Field(format!("attr.{}", key.as_str())),
                cmp: CmpOp::Eq,
                right: Operand::Literal(literal),
            });
        }
        let rule = match parts.len() {
            0 => return Ok(Vec::new()),
            1 => parts.swap_remove(0),
            _ => Rule::And { rules: parts },
        };
        let limit = u32::try_from(limit.min(1000)).unwrap_or(1000);
        let ids = self
            .segment_store
            .find_matching(
                tenant,
                &rule,
                &schema,
                self.ctx.now(),
                &PageRequest::first(limit),
            )
            .await?
            .items;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(
                self.customers
                    .customer_store
                    .get_customer(tenant, id)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Registers `customer` unless it is a likely duplicate: checked first with
    /// [`check`](Self::check); at or above
    /// [`MatchRules::block_at`] nothing is saved and the error is [`Error::LikelyDuplicate`]
    /// naming the best match. Otherwise the customer is registered and the check (with any
    /// warnings) returned beside it.
    pub async fn register_checked(
        &self,
        customer: Customer,
        rules: &MatchRules,
    ) -> Result<(Customer, DuplicateCheck)> {
        self.ctx.system_only("duplicates.register_checked")?;
        customer.validate()?;
        let check = self.check(&customer, rules).await?;
        if check.verdict == Verdict::Block {
            let best = &check.matches[0];
            let other = if best.a == customer.id {
                best.b
            } else {
                best.a
            };
            return Err(Error::LikelyDuplicate {
                entity: "customer",
                existing: other.to_string(),
                rule: best.rule.to_string(),
                score: best.score,
            });
        }
        let saved = self.customers.register(customer).await?;
        Ok((saved, check))
    }

    /// Lists candidate duplicate groups among all of a tenant's customers (see the module
    /// docs). Reads every customer once, page by page, keeping only what matching needs.
    pub async fn find(&self, rules: &MatchRules) -> Result<DuplicateReport> {
        self.ctx.system_only("duplicates.find")?;
        let tenant = self.ctx.tenant;
        let mut detector = Detector::new(rules.clone())?;
        let mut page = PageRequest::first(1000);
        loop {
            let got = self
                .customers
                .customer_store
                .list_customers(tenant, &CustomerQuery::all(), &page)
                .await?;
            for c in &got.items {
                detector.add(c);
            }
            match got.next {
                Some(next) => page = PageRequest::after(next, 1000),
                None => break,
            }
        }
        // Seconds of CPU at a million customers: off the executor.
        crate::blocking::run(move || detector.find_groups()).await
    }
}
