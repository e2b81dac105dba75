//! The KPI service: rules and their evaluation.

use std::sync::Arc;

use tracing::instrument;

use super::{Ctx, Evaluator};
use crate::customer::Customer;
use crate::error::Result;
use crate::kpi::{KpiEngine, KpiReport, KpiRule, StoredKpiRule};
use crate::notify::TemplateName;
use crate::ports::{Capability, KpiRuleStore};

/// KPI rules of one tenant and their evaluation. From
/// [`TenantCrm::kpis`](super::TenantCrm::kpis).
#[derive(Clone)]
pub struct Kpis {
    ctx: Ctx,
    kpi_store: Arc<dyn KpiRuleStore>,
    evaluator: Evaluator,
}

debug_by_tenant!(Kpis);

impl Kpis {
    pub(super) fn new(ctx: Ctx, kpi_store: Arc<dyn KpiRuleStore>, evaluator: Evaluator) -> Self {
        Kpis {
            ctx,
            kpi_store,
            evaluator,
        }
    }

    /// Stores a new KPI rule (checked first). Errors: validation; [`Error::Duplicate`](crate::Error::Duplicate) for
    /// a key the tenant already uses.
    #[instrument(skip(self, rule), fields(tenant = %self.ctx.tenant, key = %rule.key))]
    pub async fn add_rule(&self, rule: KpiRule) -> Result<()> {
        self.ctx.system_only("kpis.add_rule")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::KpiRules, "add_kpi_rule")?;
        rule.validate()?;
        self.kpi_store.insert_kpi_rule(tenant, &rule).await
    }

    /// Replaces a KPI rule (same key) last seen at `expected_version`.
    /// Errors: validation; [`Error::NotFound`](crate::Error::NotFound); [`Error::Conflict`](crate::Error::Conflict).
    #[instrument(skip(self, rule), fields(tenant = %self.ctx.tenant, key = %rule.key))]
    pub async fn update_rule(&self, rule: KpiRule, expected_version: u64) -> Result<()> {
        self.ctx.system_only("kpis.update_rule")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::KpiRules, "update_kpi_rule")?;
        rule.validate()?;
        self.kpi_store
            .update_kpi_rule(tenant, &rule, expected_version)
            .await
    }

    /// Removes a KPI rule. Errors: [`Error::NotFound`](crate::Error::NotFound).
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn delete_rule(&self, key: &TemplateName) -> Result<()> {
        self.ctx.system_only("kpis.delete_rule")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::KpiRules, "delete_kpi_rule")?;
        self.kpi_store.delete_kpi_rule(tenant, key).await
    }

    /// The tenant's KPI rules with their versions, by key.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn rules(&self) -> Result<Vec<StoredKpiRule>> {
        self.ctx.system_only("kpis.rules")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::KpiRules, "kpi_rules")?;
        self.kpi_store.kpi_rules(tenant).await
    }

    /// The tenant's stored rules, ready to evaluate around now.
    /// Errors: storage errors; validation if a stored rule no longer validates.
    pub async fn engine(&self) -> Result<KpiEngine> {
        self.ctx.system_only("kpis.engine")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::KpiRules, "kpi_engine")?;
        let rules = self.kpi_store.kpi_rules(tenant).await?;
        KpiEngine::new(rules.into_iter().map(|r| r.rule).collect(), self.ctx.now())
    }

    /// Evaluates KPI rules at `now`, raising each new warning and breach once.
    ///
    /// With [`Capability::Schedule`] each part reads only the records whose due instant
    /// has come or that changed since they were last looked at (see
    /// [`crate::schedule`]); without it, every record.
    ///
    /// - Case rules, on every case of the tenant: an alert's notifications (to the
    ///   assignee, to the team lead), its reassignment and, with events on, its
    ///   `case.breached` event are stored with the alert's key on the case in one
    ///   optimistic transaction; a case changed concurrently is counted in `conflicts` and
    ///   handled by the next run. Returning the customer to the pool follows in a
    ///   transaction of its own.
    /// - Follow-up gap rules, on every owned customer in scope: notices keyed by the
    ///   customer and the start of the gap, with a reassignment or return to the pool as
    ///   one transfer.
    /// - Rules on interactions, on those of the engine's lookback window: notices keyed by
    ///   the interaction.
    /// - Rules on deals ([`KpiMetric::Deal`](crate::kpi::KpiMetric::Deal); with
    ///   [`Capability::Sales`]), on every open deal in scope: notices to the owner or their
    ///   team lead and a reassignment stored with the alert's key on the deal in one
    ///   optimistic transaction (a deal changed concurrently counts in `conflicts`);
    ///   returning the deal's account to the pool follows in a transaction of its own.
    ///
    /// Running this every minute raises nothing twice.
    ///
    /// Errors: storage errors.
    #[instrument(skip(self, engine), fields(tenant = %self.ctx.tenant))]
    pub async fn evaluate(
        &self,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<KpiReport> {
        self.ctx.system_only("kpis.evaluate")?;
        self.ctx.need(Capability::KpiRules, "evaluate_kpis")?;
        self.evaluator.run(engine, now, false).await
    }

    /// Evaluates KPI rules at `now` as [`evaluate`](Kpis::evaluate) does, but reading every
    /// case, owned customer and open deal of the tenant instead of only those whose due
    /// instant has come (what `evaluate` does on a store without
    /// [`Capability::Schedule`]). Raises the same alerts, at a cost that grows with the
    /// data: for checking the schedule against, or after repairing stored records by
    /// hand. Leaves the due instants as they are.
    ///
    /// Errors: storage errors.
    #[instrument(skip(self, engine), fields(tenant = %self.ctx.tenant))]
    pub async fn evaluate_scan(
        &self,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<KpiReport> {
        self.ctx.system_only("kpis.evaluate_scan")?;
        self.ctx.need(Capability::KpiRules, "evaluate_kpis")?;
        self.evaluator.run(engine, now, true).await
    }

    /// Every owned customer with when its current follow-up gap began: the owner's last
    /// contact with it, or when the owner got it if later (for
    /// [`gap_scorecard`](crate::kpi::gap_scorecard)).
    pub async fn follow_up_gaps(&self) -> Result<Vec<(Customer, chrono::DateTime<chrono::Utc>)>> {
        self.ctx.system_only("kpis.follow_up_gaps")?;
        self.ctx.need(Capability::KpiRules, "follow_up_gaps")?;
        self.evaluator.follow_up_gaps().await
    }
}
