//! The sales side: pipelines of stages, opportunities (deals) moving through them with an
//! append-only stage history, the weighted forecast, and the handoff of a won deal to the
//! host's ERP as an order.
//!
//! - A [`Pipeline`] is an ordered list of [`Stage`]s, each with a default probability, a
//!   [`ForecastCategory`] and an [`Outcome`] (open, won, lost).
//! - An [`Opportunity`] has an account (a customer record), contacts with their
//!   [`ContactRole`]s, an owner and a team, a stage, a probability, an amount as
//!   [`Money`](crate::Money) in one currency (the sum of its [`LineItem`]s when it has
//!   lines), an expected close date, a source, a competitor and, when lost, a reason.
//! - Every stage move appends a [`StageChange`] (who, when, from, to, the amount and
//!   probability then) in the same transaction as the deal, with the events
//!   `opportunity.stage_changed`, `opportunity.won` (carrying the [`OrderSnapshot`]) and
//!   `opportunity.lost` in the outbox. A closed deal cannot change until it is reopened.
//! - The ERP answers a won deal with its order reference
//!   ([`Sales::link_order`](crate::service::Sales::link_order), idempotent); a deal that
//!   became an order cannot be reopened, so the snapshot the order was made from never
//!   changes. Later order status changes are the host's interactions on the account.
//! - A [`Forecast`] sums amounts and amounts times probabilities per period, owner, unit
//!   and category, per currency, or converted through an [`ExchangeRates`] port at the
//!   rate of each deal's close date.
//! - A [`FunnelReport`] follows the deals created in a period: how many reached each
//!   stage, the share that went one step further, the win rate, the cycle time and the
//!   average stay in each stage, per owner and per unit.
//!
//! - A [`Relationship`] says that a person works at an organisation (the account), with
//!   [`ContactRole`]s, a title, a primary flag and a validity period; organisations form
//!   a hierarchy of parents without cycles ([`check_parent`]).
//!
//! The service is [`TenantCrm::sales`](crate::TenantCrm::sales); storage is the optional
//! port [`SalesStore`](crate::ports::SalesStore) (capability
//! [`Sales`](crate::Capability::Sales)).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, PipelineId, UserId};

mod account;
mod forecast;
mod funnel;
mod opportunity;
mod pipeline;

pub use account::{
    check_parent, merge_hierarchy, merge_relationships, HierarchyPlace, Relationship,
    RelationshipQuery, MAX_ACCOUNTS_PER_PERSON, MAX_HIERARCHY_DEPTH,
};
pub use forecast::{
    cells_of, Dimension, ExchangeRates, Forecast, ForecastCell, ForecastQuery, ForecastRow, Period,
    RateTable,
};
pub use funnel::{
    funnel_of, steps, Funnel, FunnelCell, FunnelQuery, FunnelReport, FunnelStep, StageTime,
};
pub use opportunity::{
    ContactRole, DealContact, LineItem, Opportunity, OrderLink, OrderSnapshot, StageChange,
    MAX_ALERTS, MAX_CONTACTS, MAX_LINES, MAX_NOTE_CHARS, MAX_TEAM,
};
pub use pipeline::{ForecastCategory, Outcome, Pipeline, Stage, MAX_STAGES};

pub(crate) use opportunity::note;

/// Filters for listing opportunities; `None` fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityQuery {
    /// Owned by this user.
    pub owner: Option<UserId>,
    /// Of this account.
    pub account: Option<CustomerId>,
    /// In this pipeline.
    pub pipeline: Option<PipelineId>,
    /// In this stage (by key).
    pub stage: Option<String>,
    /// With this outcome.
    pub outcome: Option<Outcome>,
    /// Closing on or after this date.
    pub close_from: Option<NaiveDate>,
    /// Closing on or before this date.
    pub close_to: Option<NaiveDate>,
    /// Naming this customer among its contacts.
    #[serde(default)]
    pub contact: Option<CustomerId>,
}

impl OpportunityQuery {
    /// Whether `deal` passes every filter.
    pub fn matches(&self, deal: &Opportunity) -> bool {
        self.owner.is_none_or(|o| o == deal.owner)
            && self.account.is_none_or(|a| a == deal.account)
            && self.pipeline.is_none_or(|p| p == deal.pipeline)
            && self
                .stage
                .as_deref()
                .is_none_or(|s| s == deal.stage.as_str())
            && self.outcome.is_none_or(|o| o == deal.outcome)
            && self.close_from.is_none_or(|d| deal.close_date >= d)
            && self.close_to.is_none_or(|d| deal.close_date <= d)
            && self
                .contact
                .is_none_or(|c| deal.contacts.iter().any(|x| x.customer == c))
    }
}
