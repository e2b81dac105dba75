//! The cases service.

use std::sync::Arc;

use tracing::instrument;

use super::Ctx;
use crate::access::Action;
use crate::case::{Case, CaseEvent, CaseEventKind, CaseQuery};
use crate::error::{Error, Result};
use crate::id::CaseId;
use crate::notify::Notification;
use crate::page::{Page, PageRequest};
use crate::ports::{Capability, CaseStore, WriteOptions};

/// Service cases of one tenant.
/// From [`TenantCrm::cases`](super::TenantCrm::cases).
///
/// On a principal-scoped handle a case follows its customer: it is reached when the
/// customer's owner or unit is reached by the principal's scope for cases, or when the
/// principal's scope reaches the case's assignee
/// ([`Visibility::permits_case`](crate::access::Visibility::permits_case)); lists return
/// only reached cases, and the rest is [`Error::Forbidden`].
#[derive(Clone)]
pub struct Cases {
    ctx: Ctx,
    case_store: Arc<dyn CaseStore>,
}

debug_by_tenant!(Cases);

impl Cases {
    pub(super) fn new(ctx: Ctx, case_store: Arc<dyn CaseStore>) -> Self {
        Cases { ctx, case_store }
    }

    /// Opens a case: stamps it opened now (its `Opened` event too) at version 1, and stores
    /// it with its `case.opened` event when events are on.
    /// Errors: validation; [`Error::NotFound`] for an unknown customer; [`Error::Duplicate`].
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, case = %case.id))]
    pub async fn open(&self, mut case: Case) -> Result<Case> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Cases, "open_case")?;
        self.ctx.check_case(Action::Write, &case).await?;
        let now = self.ctx.now();
        case.opened_at = now;
        case.version = 1;
        case.events = vec![CaseEvent {
            at: now,
            kind: CaseEventKind::Opened,
        }];
        let outbox = self.ctx.events()?.case(&case)?;
        self.case_store
            .insert_case(tenant, &case, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(case)
    }

    /// A case. Errors: [`Error::NotFound`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn get(&self, id: CaseId) -> Result<Case> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Cases, "case")?;
        let case = self.case_store.get_case(tenant, id).await?;
        self.ctx.check_case(Action::Read, &case).await?;
        Ok(case)
    }

    /// Cases matching `query`, by id.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn list(&self, query: &CaseQuery, page: &PageRequest) -> Result<Page<Case>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Cases, "cases")?;
        page.validate()?;
        self.ctx
            .visible_page(page, |p| async move {
                self.case_store.list_cases(tenant, query, &p).await
            })
            .await
    }

    /// Records what happened on a case now (a reply, a status change, a reassignment),
    /// with `notifications` in the same transaction. `expected_version` is the version
    /// the caller last saw.
    ///
    /// Errors: validation (see [`Case::record`]); [`Error::NotFound`];
    /// [`Error::Conflict`] if the case changed since; [`Error::Forbidden`] on a scoped
    /// handle that may not write the case (transfer it, for a reassignment).
    #[instrument(skip(self, kind, notifications), fields(tenant = %self.ctx.tenant))]
    pub async fn record_event(
        &self,
        id: CaseId,
        expected_version: u64,
        kind: CaseEventKind,
        notifications: Vec<Notification>,
    ) -> Result<Case> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Cases, "record_case_event")?;
        let mut outbox = self.ctx.outbox_of(notifications)?;
        let mut case = self.case_store.get_case(tenant, id).await?;
        // Giving a case to someone else is a transfer, as for customers.
        let action = match kind {
            CaseEventKind::Assignment { .. } => Action::Transfer,
            _ => Action::Write,
        };
        self.ctx.check_case(action, &case).await?;
        if case.version != expected_version {
            return Err(Error::stale_write(
                "case",
                id,
                expected_version,
                Some(case.version),
            ));
        }
        // Never earlier than the last event (another process's clock may be ahead).
        let now = case
            .events
            .iter()
            .map(|e| e.at)
            .fold(self.ctx.now(), Ord::max);
        case.record(now, kind)?;
        case.version = self.ctx.next_version("case", expected_version)?;
        outbox.extend(self.ctx.events()?.case(&case)?);
        self.case_store
            .update_case(
                tenant,
                &case,
                expected_version,
                WriteOptions::new().outbox(outbox),
            )
            .await?;
        Ok(case)
    }
}
