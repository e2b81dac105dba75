//! The privacy service.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Ctx, Customers};
use crate::access::{AccessKind, Action, RecordKind};
use crate::case::CaseQuery;
use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::ports::{Capability, Storage, WriteOptions};
use crate::privacy::{all_pages, erased_record, CustomerExport};
use crate::sales::{OpportunityQuery, RelationshipQuery};
use crate::task::{TaskQuery, TaskSubject};

/// Personal data of one tenant's customers: export everything held about one, erase it for
/// good (see [`crate::privacy`]). From [`TenantCrm::privacy`](super::TenantCrm::privacy).
///
/// An export reads every kind of record, so this service holds the whole storage.
#[derive(Clone)]
pub struct Privacy {
    ctx: Ctx,
    customers: Customers,
    storage: Arc<dyn Storage>,
}

debug_by_tenant!(Privacy);

impl Privacy {
    pub(super) fn new(ctx: Ctx, customers: Customers, storage: Arc<dyn Storage>) -> Self {
        Privacy {
            ctx,
            customers,
            storage,
        }
    }

    /// Erases a customer's personal data for good (see the module docs); returns the record
    /// as it now is. `version` is the version the decision was taken on.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Conflict`] if the customer changed since.
    pub async fn erase(&self, id: CustomerId, version: u64) -> Result<Customer> {
        self.erase_by(id, version, None).await
    }

    /// [`erase`](Self::erase), recording `actor` in the audit trail.
    pub async fn erase_by(
        &self,
        id: CustomerId,
        version: u64,
        actor: Option<crate::id::UserId>,
    ) -> Result<Customer> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Erasure, "erase_customer_by")?;
        let current = self
            .customers
            .customer_store
            .get_customer(tenant, id)
            .await?;
        self.ctx
            .check(RecordKind::Customers, Action::Erase, &current)
            .await?;
        if current.version != version {
            return Err(Error::stale_write(
                "customer",
                id,
                version,
                Some(current.version),
            ));
        }
        let mut erased = erased_record(&current);
        erased.version = self.ctx.next_version("customer", version)?;
        erased.updated_at = self.ctx.now();
        let outbox = self.ctx.events()?.erased(&erased)?;
        let audit = crate::audit::AuditEntry {
            customer: id,
            version: erased.version,
            at: erased.updated_at,
            actor,
            reason: None,
            change: crate::audit::AuditChange::Erased,
        };
        self.customers
            .customer_store
            .erase_customer(
                tenant,
                &erased,
                version,
                WriteOptions::new().audit(audit).outbox(outbox),
            )
            .await?;
        Ok(erased)
    }

    /// Everything held about a customer (see the module docs). An id merged into another
    /// customer exports the survivor. Errors: [`Error::NotFound`].
    pub async fn export(&self, id: CustomerId) -> Result<CustomerExport> {
        let tenant = self.ctx.tenant;
        let customer = self.customers.get(id).await?;
        let id = customer.id;
        self.ctx
            .check_id(RecordKind::Customers, Action::Export, id)
            .await?;
        self.ctx
            .take(AccessKind::Exports, "privacy.export", 1)
            .await?;
        let store = &self.storage;
        let profile = store.get_profile(tenant, id).await?;
        let interactions =
            all_pages(|p| async move { store.timeline(tenant, id, &p).await }).await?;
        let query = CaseQuery {
            customer: Some(id),
            ..CaseQuery::default()
        };
        let cases = all_pages(|p| {
            let query = query.clone();
            async move { store.list_cases(tenant, &query, &p).await }
        })
        .await?;
        let mut tasks = Vec::new();
        let mut seen = BTreeSet::new();
        let subjects = std::iter::once(TaskSubject::Customer(id))
            .chain(cases.iter().map(|c| TaskSubject::Case(c.id)));
        for subject in subjects {
            let query = TaskQuery {
                subject: Some(subject),
                ..TaskQuery::default()
            };
            for t in all_pages(|p| {
                let query = query.clone();
                async move { store.list_tasks(tenant, &query, &p).await }
            })
            .await?
            {
                if seen.insert(t.id) {
                    tasks.push(t);
                }
            }
        }
        let (mut relationships, mut opportunities) = (Vec::new(), Vec::new());
        if self.ctx.supports(Capability::Sales) {
            for query in [
                RelationshipQuery::Accounts(id),
                RelationshipQuery::Contacts(id),
            ] {
                relationships.extend(
                    all_pages(|p| async move { store.relationships(tenant, &query, &p).await })
                        .await?,
                );
            }
            let mut seen = BTreeSet::new();
            for query in [
                OpportunityQuery {
                    account: Some(id),
                    ..OpportunityQuery::default()
                },
                OpportunityQuery {
                    contact: Some(id),
                    ..OpportunityQuery::default()
                },
            ] {
                let found = all_pages(|p| {
                    let query = query.clone();
                    async move { store.list_opportunities(tenant, &query, &p).await }
                })
                .await?;
                opportunities.extend(found.into_iter().filter(|d| seen.insert(d.id)));
            }
            opportunities.sort_by_key(|d| d.id);
        }
        Ok(CustomerExport {
            relationships,
            opportunities,
            exported_at: self.ctx.now(),
            profile,
            interactions,
            cases,
            tasks,
            segments: store.segments_of(tenant, id).await?,
            value_scores: store.value_scores(tenant, id).await?,
            value_classes: store.value_classes(tenant, id).await?,
            ownership_history: store.ownership_history(tenant, id).await?,
            customer,
        })
    }
}
