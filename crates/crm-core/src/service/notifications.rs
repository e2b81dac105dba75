//! The notifications service.

use std::sync::Arc;

use tracing::instrument;

use super::{Ctx, MAX_BATCH};
use crate::error::{Error, Result};
use crate::id::MessageId;
use crate::notify::{EnqueueReport, Notification, OutboxMessage, OutboxStore};
use crate::page::{Page, PageRequest};
use crate::ports::Capability;

/// Notifications of one tenant through the outbox: enqueue, dead letters, requeue.
/// Deliver them with a [`Dispatcher`](crate::notify::Dispatcher). From
/// [`TenantCrm::notifications`](super::TenantCrm::notifications).
#[derive(Clone)]
pub struct Notifications {
    ctx: Ctx,
    outbox_store: Arc<dyn OutboxStore>,
}

debug_by_tenant!(Notifications);

impl Notifications {
    pub(super) fn new(ctx: Ctx, outbox_store: Arc<dyn OutboxStore>) -> Self {
        Notifications { ctx, outbox_store }
    }

    /// Puts notifications in the outbox, due at their `not_before` or now; ones whose
    /// idempotency key the tenant already has are skipped and counted. Each is checked
    /// first (errors name it, like `notifications[2].data`). Deliver them with a
    /// [`Dispatcher`](crate::notify::Dispatcher).
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, rows = notifications.len()))]
    pub async fn enqueue(&self, notifications: Vec<Notification>) -> Result<EnqueueReport> {
        self.ctx.system_only("notifications.enqueue")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Outbox, "notify")?;
        if notifications.len() > MAX_BATCH {
            return Err(Error::validation(
                "notifications",
                format!("at most {MAX_BATCH} per call, got {}", notifications.len()),
            ));
        }
        let messages = self.ctx.outbox_of(notifications)?;
        self.outbox_store.enqueue(tenant, messages).await
    }

    /// Puts groups of notifications in the outbox in one transaction, with one report per
    /// group (for alerts raised in batches: a group is new if it stored anything).
    pub(crate) async fn enqueue_groups(
        &self,
        groups: Vec<Vec<Notification>>,
    ) -> Result<Vec<EnqueueReport>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        self.ctx.need(Capability::Outbox, "notify")?;
        let groups = groups
            .into_iter()
            .map(|g| self.ctx.outbox_of(g))
            .collect::<Result<Vec<_>>>()?;
        self.outbox_store
            .enqueue_groups(self.ctx.tenant, groups)
            .await
    }

    /// Dead letters, oldest first, one page at a time.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn dead_letters(&self, page: &PageRequest) -> Result<Page<OutboxMessage>> {
        self.ctx.system_only("notifications.dead_letters")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Outbox, "dead_letters")?;
        page.validate()?;
        self.outbox_store.dead_letters(tenant, page).await
    }

    /// Puts a dead letter back in the queue, due now, its attempts reset.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn requeue(&self, id: MessageId) -> Result<()> {
        self.ctx.system_only("notifications.requeue")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Outbox, "requeue")?;
        self.outbox_store.requeue(tenant, id, self.ctx.now()).await
    }
}
