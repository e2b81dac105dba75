//! Retention of raw interactions: archive history older than a horizon to a file, purge it,
//! keep the aggregates.
//!
//! [`Crm::archive_interactions`] writes every interaction of a tenant that occurred before
//! a given instant to a writer, one JSON object per line, then deletes them from the store
//! and records the instant as the tenant's archive horizon ([`Crm::archive_horizon`]: the
//! timeline before it is in the archive). Profiles keep their aggregates: they are deltas
//! already applied. Afterwards interactions before the horizon are refused by
//! [`Crm::log_batch`] (their idempotency keys went with the archived rows, so a re-sent
//! old row could otherwise be counted twice). Rows logged while the archive runs are kept
//! for the next run (and may be written to both archives).
//!
//! A tenant that keeps, say, 13 months online runs it periodically with
//! `before = now - 13 months`.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::page::PageRequest;
use crate::service::Crm;

/// What an archive run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Interactions written to the archive.
    pub exported: u64,
    /// Interactions deleted from the store.
    pub purged: u64,
    /// The tenant's archive horizon now.
    pub horizon: DateTime<Utc>,
}

impl Crm {
    /// Archives the tenant's interactions that occurred before `before` to `out` (JSON
    /// lines, oldest first) and purges them (see the module docs). `out` is an async writer
    /// (a `tokio::fs::File`, a `Vec<u8>`, a socket), so a slow disk never holds the
    /// executor.
    ///
    /// Errors: storage errors; [`Error::Io`] when writing to `out` fails (nothing
    /// is purged then).
    pub async fn archive_interactions(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ArchiveReport> {
        self.need(crate::ports::Capability::Archive, "archive_interactions")?;
        let started = self.now();
        let mut exported = 0;
        let mut page = PageRequest::first(1000);
        loop {
            let got = self
                .storage()
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
            .storage()
            .archive_interactions(tenant, before, started)
            .await?;
        let horizon = self
            .storage()
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
    pub async fn archive_horizon(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>> {
        self.storage().archive_horizon(tenant).await
    }
}
