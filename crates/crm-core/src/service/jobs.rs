//! The job runner: every due job of every tenant, each under a lease, so that several
//! application instances against one database never run the same tenant's job at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::Instrument;

use super::{Crm, TenantCrm};
use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::notify::{Directory, Dispatcher, EventSink, Notifier};
use crate::pool::PoolPolicy;
use crate::ports::Capability;

/// What a job did for one tenant, as named counts (for example `warnings`, `sent`).
pub type JobCounts = BTreeMap<&'static str, u64>;

/// A piece of scheduled work a [`Jobs`] runner runs for every tenant, under a lease on
/// `(tenant, name)`. Implement it for work of your own (an archive to cold storage, a
/// nightly export); [`KpiJob`], [`ReminderJob`], [`PoolJob`] and [`DispatchJob`] are
/// built in.
#[async_trait]
pub trait Job: Send + Sync {
    /// The job's name, the key of its lease: 1 to 64 letters, digits, `_`, `-` or `.`.
    fn name(&self) -> &str;

    /// Runs the job for one tenant at `now`; what it did.
    async fn run(&self, tenant: &TenantCrm, now: DateTime<Utc>) -> Result<JobCounts>;
}

fn count(n: impl TryInto<u64>) -> u64 {
    n.try_into().unwrap_or(u64::MAX)
}

/// KPI evaluation ([`Kpis::evaluate`](super::Kpis::evaluate)) with the tenant's stored
/// rules; tenants without rules are skipped. Named `kpis`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KpiJob;

#[async_trait]
impl Job for KpiJob {
    fn name(&self) -> &str {
        "kpis"
    }

    async fn run(&self, tenant: &TenantCrm, now: DateTime<Utc>) -> Result<JobCounts> {
        let kpis = tenant.kpis();
        let engine = kpis.engine().await?;
        if engine.rules().next().is_none() {
            return Ok(JobCounts::new());
        }
        let r = kpis.evaluate(&engine, now).await?;
        Ok(JobCounts::from([
            ("due", count(r.due)),
            ("reset", r.reset),
            ("cases", count(r.cases)),
            ("customers", count(r.customers)),
            ("deals", count(r.deals)),
            ("interactions", count(r.interactions)),
            ("warnings", count(r.warnings)),
            ("breaches", count(r.breaches)),
            ("returned_to_pool", count(r.returned_to_pool)),
            ("conflicts", count(r.conflicts)),
        ]))
    }
}

/// Task reminders ([`Tasks::remind_due`](super::Tasks::remind_due)). Named `reminders`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReminderJob;

#[async_trait]
impl Job for ReminderJob {
    fn name(&self) -> &str {
        "reminders"
    }

    async fn run(&self, tenant: &TenantCrm, now: DateTime<Utc>) -> Result<JobCounts> {
        let announced = tenant.tasks().remind_due(now).await?;
        Ok(JobCounts::from([("announced", count(announced.len()))]))
    }
}

/// Returning quiet customers to the pool ([`Pool::reclaim`](super::Pool::reclaim)) under
/// one policy for every tenant (at the clock's now). Named `pool`.
#[derive(Clone, Debug)]
pub struct PoolJob {
    /// The policy.
    pub policy: PoolPolicy,
}

#[async_trait]
impl Job for PoolJob {
    fn name(&self) -> &str {
        "pool"
    }

    async fn run(&self, tenant: &TenantCrm, _now: DateTime<Utc>) -> Result<JobCounts> {
        let r = tenant.pool().reclaim(&self.policy).await?;
        Ok(JobCounts::from([
            ("due", count(r.due)),
            ("reset", r.reset),
            ("checked", count(r.checked)),
            ("warned", count(r.warned)),
            ("reclaimed", count(r.reclaimed.len())),
            ("exempt", count(r.exempt)),
            ("conflicts", count(r.conflicts)),
        ]))
    }
}

/// Outbox delivery: a [`Dispatcher`] per tenant delivering what is due, batch after batch,
/// at most `max_rounds` batches a run (the multi-tenant dispatcher). Named `dispatch`.
#[derive(Clone)]
pub struct DispatchJob {
    /// Delivers notifications.
    pub notifier: Arc<dyn Notifier>,
    /// Resolves recipients.
    pub directory: Arc<dyn Directory>,
    /// Delivers domain events, if they are on.
    pub events: Option<Arc<dyn EventSink>>,
    /// Batches per tenant and run (default 10).
    pub max_rounds: u32,
}

impl DispatchJob {
    /// Delivery through `notifier`, recipients resolved by `directory`, 10 batches a run.
    pub fn new(notifier: Arc<dyn Notifier>, directory: Arc<dyn Directory>) -> Self {
        DispatchJob {
            notifier,
            directory,
            events: None,
            max_rounds: 10,
        }
    }
}

impl std::fmt::Debug for DispatchJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchJob")
            .field("max_rounds", &self.max_rounds)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Job for DispatchJob {
    fn name(&self) -> &str {
        "dispatch"
    }

    async fn run(&self, tenant: &TenantCrm, now: DateTime<Utc>) -> Result<JobCounts> {
        let crm = &tenant.crm;
        let mut dispatcher = Dispatcher::new(
            tenant.tenant,
            crm.storage.clone(),
            self.notifier.clone(),
            self.directory.clone(),
            crm.clock.clone(),
        );
        if let Some(sink) = &self.events {
            dispatcher = dispatcher.with_event_sink(sink.clone());
        }
        let mut counts = JobCounts::new();
        for _ in 0..self.max_rounds.max(1) {
            let r = dispatcher.run_once(now).await?;
            for (k, v) in [
                ("claimed", r.claimed),
                ("sent", r.sent),
                ("retried", r.retried),
                ("dead", r.dead),
                ("lost", r.lost),
            ] {
                let c = counts.entry(k).or_default();
                *c = c.saturating_add(count(v));
            }
            if r.claimed == 0 {
                break;
            }
        }
        Ok(counts)
    }
}

/// One job's run for one tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRun {
    /// The tenant.
    pub tenant: TenantId,
    /// The job's name.
    pub job: String,
    /// Wall time the run took.
    pub elapsed: std::time::Duration,
    /// What it did (empty when it failed).
    pub counts: JobCounts,
    /// Its error, if it failed (the runner went on with the next job).
    pub error: Option<String>,
}

/// What one [`Jobs::run_due`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JobsReport {
    /// Tenants looked at.
    pub tenants: usize,
    /// The jobs run, in order.
    pub runs: Vec<JobRun>,
    /// Jobs not run because another runner holds their lease.
    pub skipped: usize,
}

impl JobsReport {
    /// The runs that failed.
    pub fn failures(&self) -> impl Iterator<Item = &JobRun> {
        self.runs.iter().filter(|r| r.error.is_some())
    }
}

/// Tenants listed per page.
const TENANT_PAGE: u32 = 500;

/// Runs every due job of every tenant, each under a lease on `(tenant, job)` in storage:
/// several runners against one database (several instances of an application) never run
/// the same tenant's job at once, and the lease of a runner that died lapses after the
/// lease time, so the next runner takes the work over. From [`Crm::jobs`].
///
/// Needs [`Capability::Schedule`] (the tenant list and the leases). A job that takes
/// longer than the lease time may meet a second runner: set the lease time (default 15
/// minutes) above the longest run.
#[derive(Clone)]
pub struct Jobs {
    crm: Crm,
    jobs: Vec<Arc<dyn Job>>,
    holder: uuid::Uuid,
    lease: Duration,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.jobs.iter().map(|j| j.name()).collect();
        f.debug_struct("Jobs")
            .field("jobs", &names)
            .field("holder", &self.holder)
            .field("lease", &self.lease)
            .finish()
    }
}

/// Checks a job's name; the error names `job`.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "job",
            format!("{name:?}: 1 to 64 letters, digits, '_', '-' or '.'"),
        ))
    }
}

impl Jobs {
    pub(super) fn new(crm: Crm) -> Self {
        Jobs {
            crm,
            jobs: Vec::new(),
            holder: uuid::Uuid::new_v4(),
            lease: Duration::minutes(15),
        }
    }

    /// Adds a job (run after those added before it).
    /// Errors: validation on `job` for a bad or repeated name.
    pub fn with_job(mut self, job: impl Job + 'static) -> Result<Self> {
        check_name(job.name())?;
        if self.jobs.iter().any(|j| j.name() == job.name()) {
            return Err(Error::validation(
                "job",
                format!("{} is added already", job.name()),
            ));
        }
        self.jobs.push(Arc::new(job));
        Ok(self)
    }

    /// The lease time (default 15 minutes). Errors: validation on `lease` unless positive.
    pub fn with_lease(mut self, lease: Duration) -> Result<Self> {
        if lease <= Duration::zero() {
            return Err(Error::validation("lease", "must be positive"));
        }
        self.lease = lease;
        Ok(self)
    }

    /// This runner's identity in the leases it takes (random, one per runner).
    pub fn holder(&self) -> uuid::Uuid {
        self.holder
    }

    /// Runs every job for every tenant of the store (those with customers), at `now`.
    ///
    /// Errors: [`Error::Unsupported`] without [`Capability::Schedule`] or from a store
    /// that cannot list its tenants (PostgreSQL under row-level security: use
    /// [`run_due_for`](Jobs::run_due_for)); storage errors while listing tenants or taking
    /// leases. A job's own error is recorded in its
    /// [`JobRun`] and the runner goes on.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<JobsReport> {
        self.need()?;
        let mut report = JobsReport::default();
        let mut after = None;
        loop {
            let tenants = self.crm.storage.tenants(after, TENANT_PAGE).await?;
            for &tenant in &tenants {
                self.run_tenant(tenant, now, &mut report).await?;
            }
            match tenants.last() {
                Some(&last) if tenants.len() == TENANT_PAGE as usize => after = Some(last),
                _ => return Ok(report),
            }
        }
    }

    /// Runs every job for `tenants` only, at `now` (for a host that knows its tenants, for
    /// example one whose storage connections see one tenant each).
    /// Errors as [`run_due`](Jobs::run_due).
    pub async fn run_due_for(
        &self,
        tenants: &[TenantId],
        now: DateTime<Utc>,
    ) -> Result<JobsReport> {
        self.need()?;
        let mut report = JobsReport::default();
        for &tenant in tenants {
            self.run_tenant(tenant, now, &mut report).await?;
        }
        Ok(report)
    }

    fn need(&self) -> Result<()> {
        if self.crm.capabilities().supports(Capability::Schedule) {
            Ok(())
        } else {
            Err(Error::unsupported("run_due", self.crm.storage.name()))
        }
    }

    async fn run_tenant(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
        report: &mut JobsReport,
    ) -> Result<()> {
        report.tenants += 1;
        let store = &self.crm.storage;
        let handle = self.crm.tenant(tenant);
        let until = now.checked_add_signed(self.lease).unwrap_or(now);
        for job in &self.jobs {
            let name = job.name();
            if !store
                .take_lease(tenant, name, self.holder, now, until)
                .await?
            {
                report.skipped += 1;
                continue;
            }
            let span = tracing::info_span!("job", %tenant, job = name);
            let started = Instant::now();
            let outcome = job.run(&handle, now).instrument(span).await;
            let elapsed = started.elapsed();
            let released = store.release_lease(tenant, name, self.holder).await;
            let (counts, error) = match outcome {
                Ok(counts) => (counts, None),
                Err(e) => {
                    tracing::warn!(%tenant, job = name, error = %e, "job failed");
                    (JobCounts::new(), Some(e.to_string()))
                }
            };
            tracing::info!(%tenant, job = name, ms = elapsed.as_millis() as u64, ?counts, "job ran");
            report.runs.push(JobRun {
                tenant,
                job: name.to_string(),
                elapsed,
                counts,
                error,
            });
            released?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_checked() {
        assert!(check_name("kpis").is_ok());
        assert!(check_name("nightly-export.v2").is_ok());
        for bad in ["", "with space", "ünïcode", &"x".repeat(65)] {
            assert_eq!(check_name(bad).unwrap_err().field(), Some("job"), "{bad:?}");
        }
    }
}
