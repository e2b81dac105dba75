//! The interactions service.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::instrument;

use super::{Ctx, MAX_BATCH};
use crate::access::{Action, RecordKind};
use crate::clock::truncate_to_micros;
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::interaction::{BatchReport, Interaction};
use crate::notify::Notification;
use crate::page::{Page, PageRequest};
use crate::ports::{Capability, CustomerStore, InteractionStore, WriteOptions};
use crate::retention::ArchiveReport;

/// Interactions of one tenant: log them (one, a batch), read timelines, archive old ones.
/// From [`TenantCrm::interactions`](super::TenantCrm::interactions).
#[derive(Clone)]
pub struct Interactions {
    ctx: Ctx,
    interaction_store: Arc<dyn InteractionStore>,
    /// For the visibility checks of a scoped handle: interactions follow their customer.
    customer_store: Arc<dyn CustomerStore>,
}

debug_by_tenant!(Interactions);

impl Interactions {
    pub(super) fn new(
        ctx: Ctx,
        interaction_store: Arc<dyn InteractionStore>,
        customer_store: Arc<dyn CustomerStore>,
    ) -> Self {
        Interactions {
            ctx,
            interaction_store,
            customer_store,
        }
    }

    /// On a scoped handle, [`Error::Forbidden`] unless the principal may do `action` on the
    /// interactions of each of `customers` ([`Error::NotFound`] for an unknown one).
    async fn check_customers(
        &self,
        action: Action,
        customers: impl IntoIterator<Item = CustomerId>,
    ) -> Result<()> {
        if !self.ctx.scoped() {
            return Ok(());
        }
        for id in customers.into_iter().collect::<BTreeSet<_>>() {
            let customer = self
                .customer_store
                .get_customer(self.ctx.tenant, id)
                .await?;
            self.ctx
                .check(RecordKind::Interactions, action, &customer)
                .await?;
        }
        Ok(())
    }

    /// Logs one interaction. Returns whether it was stored (`inserted == 1`) or skipped as
    /// a duplicate of its idempotency key.
    pub async fn log(&self, interaction: Interaction) -> Result<BatchReport> {
        self.log_batch(vec![interaction]).await
    }

    /// Logs a batch of interactions, all or nothing: every row is validated first (errors
    /// name the row, like `interactions[3].subject`); then the adapter stores the batch and
    /// its profile deltas in one transaction, skipping and counting rows whose idempotency
    /// key is already known. `recorded_at` is set to now.
    pub async fn log_batch(&self, batch: Vec<Interaction>) -> Result<BatchReport> {
        self.log_batch_notifying(batch, Vec::new()).await
    }

    /// [`Interactions::log_batch`](super::Interactions::log_batch), storing `notifications` in the same transaction as the batch.
    /// Errors: as [`Interactions::log_batch`](super::Interactions::log_batch); validation naming `notifications[i]`.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, rows = batch.len()))]
    pub async fn log_batch_notifying(
        &self,
        mut batch: Vec<Interaction>,
        notifications: Vec<Notification>,
    ) -> Result<BatchReport> {
        let tenant = self.ctx.tenant;
        if !notifications.is_empty() {
            self.ctx.need(Capability::Outbox, "log_batch_notifying")?;
        }
        if batch.len() > MAX_BATCH {
            return Err(Error::validation(
                "interactions",
                format!("at most {MAX_BATCH} per batch, got {}", batch.len()),
            ));
        }
        if batch.is_empty() && notifications.is_empty() {
            return Ok(BatchReport::default());
        }
        let mut outbox = self.ctx.outbox_of(notifications)?;
        let now = self.ctx.now();
        let mut ids = BTreeSet::new();
        for (i, row) in batch.iter_mut().enumerate() {
            row.validate()
                .map_err(|e| e.in_field(&format!("interactions[{i}]")))?;
            if !ids.insert(row.id) {
                return Err(Error::validation(
                    format!("interactions[{i}].id"),
                    "repeats an id earlier in the batch",
                ));
            }
            row.occurred_at = truncate_to_micros(row.occurred_at);
            row.recorded_at = now;
        }
        self.check_customers(Action::Write, batch.iter().map(|row| row.customer))
            .await?;
        // Rows older than archived history are refused: the archive took their keys along,
        // so a re-sent one would be counted twice.
        if !batch.is_empty() {
            if let Some(h) = self.interaction_store.archive_horizon(tenant).await? {
                if let Some(i) = batch.iter().position(|row| row.occurred_at < h) {
                    return Err(Error::validation(
                        format!("interactions[{i}].occurred_at"),
                        format!(
                            "{} is before the archived history ({h})",
                            batch[i].occurred_at
                        ),
                    ));
                }
            }
        }
        outbox.extend(self.ctx.events()?.interactions(&batch)?);
        let report = self
            .interaction_store
            .append_interactions(tenant, batch, WriteOptions::new().outbox(outbox))
            .await?;
        tracing::debug!(
            inserted = report.inserted,
            duplicates = report.duplicates,
            "batch logged"
        );
        Ok(report)
    }

    /// A customer's interactions, newest first.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn timeline(
        &self,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        let tenant = self.ctx.tenant;
        page.validate()?;
        self.check_customers(Action::Read, [customer]).await?;
        self.interaction_store
            .timeline(tenant, customer, page)
            .await
    }

    /// Archives the tenant's interactions that occurred before `before` to `out` (JSON
    /// lines, oldest first) and purges them (see the module docs). `out` is an async writer
    /// (a `tokio::fs::File`, a `Vec<u8>`, a socket), so a slow disk never holds the
    /// executor.
    ///
    /// Errors: storage errors; [`Error::Io`] when writing to `out` fails (nothing
    /// is purged then).
    pub async fn archive(
        &self,
        before: DateTime<Utc>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ArchiveReport> {
        self.ctx.system_only("interactions.archive")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Archive, "archive_interactions")?;
        let started = self.ctx.now();
        let mut exported = 0;
        let mut page = PageRequest::first(1000);
        loop {
            let got = self
                .interaction_store
                .interactions_between(tenant, DateTime::<Utc>::MIN_UTC, before, &page)
                .await?;
            for i in &got.items {
                let mut line =
                    serde_json::to_string(i).map_err(|e| Error::encoding("an interaction", e))?;
                line.push('\n');
                out.write_all(line.as_bytes())
                    .await
                    .map_err(|e| Error::io("archive output", e))?;
                exported += 1;
            }
            match got.next {
                Some(next) => page = PageRequest::after(next, 1000),
                None => break,
            }
        }
        out.flush()
            .await
            .map_err(|e| Error::io("archive output", e))?;
        let purged = self
            .interaction_store
            .archive_interactions(tenant, before, started)
            .await?;
        let horizon = self
            .interaction_store
            .archive_horizon(tenant)
            .await?
            .unwrap_or(before);
        Ok(ArchiveReport {
            exported,
            purged,
            horizon,
        })
    }

    /// The tenant's archive horizon: its interactions before it are in archives, not in the
    /// store (`None`: nothing archived).
    pub async fn archive_horizon(&self) -> Result<Option<DateTime<Utc>>> {
        self.ctx.system_only("interactions.archive_horizon")?;
        let tenant = self.ctx.tenant;
        self.interaction_store.archive_horizon(tenant).await
    }
}
