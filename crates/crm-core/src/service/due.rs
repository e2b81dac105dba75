//! Reading a kind's due entries a page at a time and storing their next instants (see
//! [`crate::schedule`]).

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::error::Result;
use crate::page::PageRequest;
use crate::schedule::{DueEntry, DueKind, DueReport, Reschedule};

/// Entries per page.
const PAGE: u32 = 500;

/// Entries of a page looked at concurrently (each reads and writes its own records), so
/// a store's round trips overlap.
const CONCURRENCY: usize = 8;

/// Runs `f` on every entry of a page, up to [`CONCURRENCY`] at once; the results in any
/// order, or the first error.
pub(crate) async fn each<T, F, Fut>(entries: Vec<DueEntry>, f: F) -> Result<Vec<T>>
where
    F: FnMut(DueEntry) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(entries)
        .map(f)
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}

/// One run over the due entries of one kind: checks the basis first (marking every entry
/// changed when the rules differ), then hands out pages of due entries; each page's next
/// instants are stored before the next page is read, so a run that stops half-way keeps
/// what it did.
pub(crate) struct DueRun<'a> {
    ctx: &'a Ctx,
    kind: DueKind,
    now: DateTime<Utc>,
    page: Option<PageRequest>,
    pub(crate) report: DueReport,
}

impl<'a> DueRun<'a> {
    /// Starts a run of `kind` at `now` under the rules whose fingerprint is `basis`.
    pub(crate) async fn start(
        ctx: &'a Ctx,
        kind: DueKind,
        basis: &str,
        now: DateTime<Utc>,
    ) -> Result<DueRun<'a>> {
        let store = &ctx.storage;
        let mut report = DueReport::default();
        if store.schedule_basis(ctx.tenant, kind).await?.as_deref() != Some(basis) {
            report.reset = store.reset_schedule(ctx.tenant, kind, basis).await?;
            tracing::info!(tenant = %ctx.tenant, %kind, entries = report.reset, "rules changed: every entry marked for recomputation");
        }
        Ok(DueRun {
            ctx,
            kind,
            now,
            page: Some(PageRequest::first(PAGE)),
            report,
        })
    }

    /// The next page of due entries, or `None` when the run is through.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<DueEntry>>> {
        let Some(request) = self.page.take() else {
            return Ok(None);
        };
        let page = self
            .ctx
            .storage
            .due_entries(self.ctx.tenant, self.kind, self.now, &request)
            .await?;
        self.page = page.next.map(|c| PageRequest::after(c, PAGE));
        self.report.read += page.items.len();
        Ok((!page.items.is_empty()).then_some(page.items))
    }

    /// Stores the next instants of a page's entries (an instant at or before now is moved
    /// just after it, so the next run looks again).
    pub(crate) async fn reschedule(&mut self, mut entries: Vec<Reschedule>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let soonest = self
            .now
            .checked_add_signed(chrono::Duration::microseconds(1))
            .unwrap_or(self.now);
        for e in &mut entries {
            e.next = e.next.map(|t| t.max(soonest));
        }
        self.report.rescheduled += self
            .ctx
            .storage
            .reschedule(self.ctx.tenant, self.kind, &entries)
            .await?;
        Ok(())
    }
}
