//! The value service.

use std::sync::Arc;

use tracing::instrument;

use super::{check_entries, Ctx};
use crate::access::{Action, RecordKind};
use crate::clv::{ValueClasses, ValueModel, ValueScores};
use crate::error::Result;
use crate::id::CustomerId;
use crate::ports::{Capability, ValueStore};

/// Customer value of one tenant: scores, classes and fitted models.
/// From [`TenantCrm::value`](super::TenantCrm::value).
#[derive(Clone)]
pub struct Value {
    ctx: Ctx,
    value_store: Arc<dyn ValueStore>,
}

debug_by_tenant!(Value);

impl Value {
    pub(super) fn new(ctx: Ctx, value_store: Arc<dyn ValueStore>) -> Self {
        Value { ctx, value_store }
    }

    /// Stores many customers' value scores in one transaction, all or nothing. Each entry
    /// is checked first (errors name it, like `scores[3].p_alive`).
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, rows = scores.len()))]
    pub async fn set_scores(&self, scores: Vec<(CustomerId, ValueScores)>) -> Result<()> {
        self.ctx.system_only("value.set_scores")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Values, "set_value_scores")?;
        check_entries("scores", &scores, ValueScores::validate)?;
        self.value_store.set_value_scores(tenant, scores).await
    }

    /// A customer's latest value scores, if scored.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn scores(&self, customer: CustomerId) -> Result<Option<ValueScores>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Values, "value_scores")?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, customer)
            .await?;
        self.value_store.value_scores(tenant, customer).await
    }

    /// Stores many customers' value classes in one transaction, all or nothing (each entry
    /// checked first; errors name it, like `classes[2].r`).
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, rows = classes.len()))]
    pub async fn set_classes(&self, classes: Vec<(CustomerId, ValueClasses)>) -> Result<()> {
        self.ctx.system_only("value.set_classes")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Values, "set_value_classes")?;
        check_entries("classes", &classes, ValueClasses::validate)?;
        self.value_store.set_value_classes(tenant, classes).await
    }

    /// A customer's latest value classes, if classified.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn classes(&self, customer: CustomerId) -> Result<Option<ValueClasses>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Values, "value_classes")?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, customer)
            .await?;
        self.value_store.value_classes(tenant, customer).await
    }

    /// Stores a fitted value model after checking its figures.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn save_model(&self, model: &ValueModel) -> Result<()> {
        self.ctx.system_only("value.save_model")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Values, "save_value_model")?;
        model.validate()?;
        self.value_store.save_value_model(tenant, model).await
    }

    /// The tenant's most recently fitted value model.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn latest_model(&self) -> Result<Option<ValueModel>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Values, "latest_value_model")?;
        self.value_store.latest_value_model(tenant).await
    }
}
