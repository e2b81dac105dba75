//! Opportunities (deals), their lines, stage changes and the won deal's order snapshot.

// Money and counts here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::pipeline::{ForecastCategory, Outcome, Pipeline};
use crate::error::{Error, Result};
use crate::id::{CustomerId, OpportunityId, PipelineId, UserId};
use crate::value::{DisplayName, ExternalRef, Money, StageKey};

/// The part a contact plays in a deal (and, on an account, in the buying organisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    /// Makes the decision.
    DecisionMaker,
    /// Owns the budget.
    EconomicBuyer,
    /// Sways the decision.
    Influencer,
    /// Judges the technical fit.
    Technical,
    /// Receives the invoices.
    Billing,
    /// Anything else.
    Other,
}

impl ContactRole {
    /// The role's name as serialised (`decision_maker`, `economic_buyer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ContactRole::DecisionMaker => "decision_maker",
            ContactRole::EconomicBuyer => "economic_buyer",
            ContactRole::Influencer => "influencer",
            ContactRole::Technical => "technical",
            ContactRole::Billing => "billing",
            ContactRole::Other => "other",
        }
    }
}

/// A contact of a deal: a customer record (usually a person at the account) and its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DealContact {
    /// The contact's customer record.
    pub customer: CustomerId,
    /// Its role in the deal.
    pub role: ContactRole,
}

/// One line of a deal: a product of the host's catalogue by its external id, a quantity, a
/// unit price and a discount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LineItem {
    /// The product in the host's system (`erp` / `SKU-1001`).
    pub product: ExternalRef,
    /// How many: positive, at most [`LineItem::MAX_QUANTITY`], at most six decimals.
    pub quantity: Decimal,
    /// The price of one.
    pub unit_price: Money,
    /// The discount in percent (0 to 100, at most four decimals).
    pub discount: Decimal,
}

impl LineItem {
    /// The largest quantity of a line.
    pub const MAX_QUANTITY: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

    /// A line without discount. Errors: see [`LineItem::validate`].
    pub fn new(product: ExternalRef, quantity: Decimal, unit_price: Money) -> Result<Self> {
        let line = LineItem {
            product,
            quantity,
            unit_price,
            discount: Decimal::ZERO,
        };
        line.validate()?;
        Ok(line)
    }

    /// The line with a discount in percent. Errors: validation on `discount`.
    pub fn discount(mut self, percent: Decimal) -> Result<Self> {
        self.discount = percent;
        self.validate()?;
        Ok(self)
    }

    /// Checks quantity, unit price and discount; errors name `quantity`, `unit_price` or
    /// `discount`.
    pub fn validate(&self) -> Result<()> {
        if self.quantity <= Decimal::ZERO
            || self.quantity > Self::MAX_QUANTITY
            || self.quantity.normalize().scale() > 6
        {
            return Err(Error::validation(
                "quantity",
                format!(
                    "must be above 0 and at most {}, with at most six decimals",
                    Self::MAX_QUANTITY
                ),
            ));
        }
        if self.unit_price.amount() < Decimal::ZERO {
            return Err(Error::validation("unit_price", "must not be negative"));
        }
        if self.discount < Decimal::ZERO
            || self.discount > Decimal::ONE_HUNDRED
            || self.discount.normalize().scale() > 4
        {
            return Err(Error::validation(
                "discount",
                "must be 0 to 100 percent, with at most four decimals",
            ));
        }
        self.total().map(drop)
    }

    /// Quantity times unit price less the discount, rounded to the currency's decimals
    /// (half away from zero). Errors: validation on `amount` beyond [`Money::MAX_AMOUNT`].
    pub fn total(&self) -> Result<Money> {
        let overflow = || Error::validation("amount", "the line total is beyond any amount");
        let gross = self
            .quantity
            .checked_mul(self.unit_price.amount())
            .ok_or_else(overflow)?;
        let kept = Decimal::ONE_HUNDRED
            .checked_sub(self.discount)
            .ok_or_else(overflow)?;
        let net = gross
            .checked_mul(kept)
            .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
            .ok_or_else(overflow)?;
        Money::rounded(net, self.unit_price.currency())
    }
}

/// The ERP order a won deal became: its reference in the host's system and when it was
/// linked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderLink {
    /// The order in the host's system (`erp` / `SO-2026-0042`).
    pub reference: ExternalRef,
    /// When the link was written.
    pub linked_at: DateTime<Utc>,
}

/// What a won deal asks the ERP to make into an order: taken when the deal is won, carried
/// by the `opportunity.won` event, and never changed afterwards (a deal with an order
/// cannot be reopened).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderSnapshot {
    /// The deal.
    pub opportunity: OpportunityId,
    /// The deal's name.
    pub name: DisplayName,
    /// The buying account.
    pub account: CustomerId,
    /// The deal's contacts.
    pub contacts: Vec<DealContact>,
    /// The owner who won it.
    pub owner: UserId,
    /// The amount (the sum of the lines when there are lines).
    pub amount: Money,
    /// The lines.
    pub lines: Vec<LineItem>,
    /// When it was won.
    pub won_at: DateTime<Utc>,
}

/// One entry of a deal's stage history (append-only): who moved it when, from where to
/// where, and its amount and probability at the time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StageChange {
    /// The deal.
    pub opportunity: OpportunityId,
    /// The deal's version after the change (history is ordered by it).
    pub version: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`None`: the system, or a host without a principal).
    pub by: Option<UserId>,
    /// The stage left (`None` when the deal was created).
    pub from: Option<StageKey>,
    /// The stage entered.
    pub to: StageKey,
    /// The outcome of the stage entered.
    pub outcome: Outcome,
    /// The deal's amount then.
    pub amount: Money,
    /// The deal's probability then.
    pub probability: u8,
}

/// A sales opportunity: a deal with an account, moving through a pipeline's stages.
///
/// Build one with [`Opportunity::new`] (at the pipeline's first open stage), set the public
/// fields or use the helpers, and open it through
/// [`Sales::open`](crate::service::Sales::open). Stages change through the service
/// (`move_to`, `win`, `lose`, `reopen`), which records each change in the stage history; a
/// closed deal cannot change until it is reopened.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use crm_core::sales::{ContactRole, ForecastCategory, LineItem, Opportunity, Pipeline, Stage};
/// use crm_core::{CustomerId, ExternalRef, Money, UserId};
/// use rust_decimal::Decimal;
///
/// let pipeline = Pipeline::new("New business", vec![
///     Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline)?,
///     Stage::won("won", "Won")?,
///     Stage::lost("lost", "Lost")?,
/// ])?;
/// let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
/// let close = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
/// let deal = Opportunity::new("Forklifts", CustomerId::new(), UserId::new(), &pipeline,
///         Money::parse("0", "EUR")?, close, at)?
///     .with_contact(CustomerId::new(), ContactRole::DecisionMaker)
///     .with_lines(vec![
///         LineItem::new(ExternalRef::new("erp", "FL-20")?, Decimal::from(3), Money::parse("18500", "EUR")?)?
///             .discount(Decimal::from(5))?,
///     ])?;
/// assert_eq!(deal.amount, Money::parse("52725", "EUR")?); // 3 × 18,500 less 5 %
/// assert_eq!(deal.probability, 10);
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Opportunity {
    /// Its id.
    pub id: OpportunityId,
    /// What is being sold (`Forklifts for the Leipzig plant`).
    pub name: DisplayName,
    /// The buying account (an organisation's customer record, or a person's).
    pub account: CustomerId,
    /// Contacts with their roles (at most [`MAX_CONTACTS`], each customer once).
    pub contacts: Vec<DealContact>,
    /// The salesperson who owns it.
    pub owner: UserId,
    /// Others working on it (at most [`MAX_TEAM`], each once).
    pub team: Vec<UserId>,
    /// Its pipeline.
    pub pipeline: PipelineId,
    /// Its current stage (changed only through stage moves).
    pub stage: StageKey,
    /// The current stage's outcome.
    pub outcome: Outcome,
    /// The current stage's forecast category.
    pub category: ForecastCategory,
    /// Percent, 0 to 100: the stage's default on entering it, which the owner may override
    /// while the deal is open; 100 when won, 0 when lost.
    pub probability: u8,
    /// The amount, in the deal's one currency; the sum of the lines when it has lines.
    pub amount: Money,
    /// Product lines (at most [`MAX_LINES`]), all in the amount's currency.
    pub lines: Vec<LineItem>,
    /// Expected close date while open; the date it closed once closed.
    pub close_date: NaiveDate,
    /// Where it came from (a campaign, a lead source).
    pub source: Option<String>,
    /// The competitor in the deal.
    pub competitor: Option<String>,
    /// Why it was lost (required when lost, cleared when reopened).
    pub lost_reason: Option<String>,
    /// When it closed (won or lost); `None` while open.
    pub closed_at: Option<DateTime<Utc>>,
    /// When it entered its current stage.
    pub stage_entered_at: DateTime<Utc>,
    /// The order taken when it was won.
    pub won: Option<OrderSnapshot>,
    /// The ERP order it became, once the ERP wrote it back.
    pub order: Option<OrderLink>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Keys of the KPI alerts raised on it in its current measured periods (recorded by
    /// [`Kpis::evaluate`](crate::service::Kpis::evaluate), so each is raised once; at most
    /// [`MAX_ALERTS`]).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub alerts: BTreeSet<String>,
    /// When its current owner got it, if that was after its creation (set by the service
    /// when the owner changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_since: Option<DateTime<Utc>>,
}

/// The most KPI alert keys a deal records.
pub const MAX_ALERTS: usize = 256;

/// The most contacts a deal has.
pub const MAX_CONTACTS: usize = 50;
/// The most team members a deal has.
pub const MAX_TEAM: usize = 50;
/// The most lines a deal has.
pub const MAX_LINES: usize = 500;
/// The longest source, competitor or lost reason, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// Trims `text` and checks its length and characters; the error names `field`.
pub(crate) fn note(field: &str, text: &str) -> Result<String> {
    let trimmed = text.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_NOTE_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(Error::validation(
            field,
            format!("must be 1 to {MAX_NOTE_CHARS} characters, no control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

impl Opportunity {
    /// A new open deal at `pipeline`'s first open stage with its default probability
    /// (version 1, created at `at`). Errors: validation on `name`, `amount` or
    /// `close_date` (see [`Opportunity::validate`]).
    pub fn new(
        name: &str,
        account: CustomerId,
        owner: UserId,
        pipeline: &Pipeline,
        amount: Money,
        close_date: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        let stage = pipeline.first_open()?;
        let deal = Opportunity {
            id: OpportunityId::new(),
            name: DisplayName::parse(name)?,
            account,
            contacts: Vec::new(),
            owner,
            team: Vec::new(),
            pipeline: pipeline.id,
            stage: stage.key.clone(),
            outcome: Outcome::Open,
            category: stage.category,
            probability: stage.probability,
            amount,
            lines: Vec::new(),
            close_date,
            source: None,
            competitor: None,
            lost_reason: None,
            closed_at: None,
            stage_entered_at: at,
            won: None,
            order: None,
            created_at: at,
            updated_at: at,
            version: 1,
            alerts: BTreeSet::new(),
            owned_since: None,
        };
        deal.validate(pipeline)?;
        Ok(deal)
    }

    /// The deal with one more contact (a contact already there gets the new role).
    pub fn with_contact(mut self, customer: CustomerId, role: ContactRole) -> Self {
        match self.contacts.iter_mut().find(|c| c.customer == customer) {
            Some(c) => c.role = role,
            None => self.contacts.push(DealContact { customer, role }),
        }
        self
    }

    /// The deal with these lines, its amount their sum. Errors: validation on
    /// `lines[i].<field>`, or on `lines` when a line's currency is not the amount's.
    pub fn with_lines(mut self, lines: Vec<LineItem>) -> Result<Self> {
        self.amount = lines_total(&lines, self.amount.currency())?;
        self.lines = lines;
        Ok(self)
    }

    /// Whether the deal is won or lost.
    pub fn is_closed(&self) -> bool {
        self.outcome.is_closed()
    }

    /// The amount times the probability: what the deal weighs in a forecast (exact).
    pub fn weighted_amount(&self) -> Decimal {
        // An amount is at most 10^15 and a probability at most 100: the product fits.
        self.amount
            .amount()
            .checked_mul(Decimal::from(self.probability))
            .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
            .unwrap_or(Decimal::ZERO)
    }

    /// The amount in the currency's smallest unit at the scale adapters index it by
    /// ([`Money::decimals_of`]), when it fits an `i64` (always, for currencies with at most
    /// three decimals).
    pub fn amount_minor(&self) -> Option<i64> {
        let scale = Money::decimals_of(self.amount.currency());
        let factor = Decimal::from(10_i64.checked_pow(scale)?);
        let minor = self.amount.amount().checked_mul(factor)?;
        i64::try_from(minor.trunc()).ok()
    }

    /// Checks the deal against its pipeline. Errors (validation) name the field: `pipeline`,
    /// `stage`, `outcome`, `category`, `probability`, `amount`, `lines...`, `contacts`,
    /// `team`, `close_date`, `source`, `competitor`, `lost_reason`, `closed_at`.
    pub fn validate(&self, pipeline: &Pipeline) -> Result<()> {
        if self.pipeline != pipeline.id {
            return Err(Error::validation("pipeline", "is not the deal's pipeline"));
        }
        let stage = pipeline.require_stage(self.stage.as_str(), "stage")?;
        if self.outcome != stage.outcome {
            return Err(Error::validation(
                "outcome",
                format!("the stage {} is {}", stage.key, stage.outcome.as_str()),
            ));
        }
        if self.category != stage.category {
            return Err(Error::validation(
                "category",
                format!(
                    "the stage {} counts as {}",
                    stage.key,
                    stage.category.as_str()
                ),
            ));
        }
        let probability_ok = match self.outcome {
            Outcome::Open => self.probability <= 100,
            Outcome::Won => self.probability == 100,
            Outcome::Lost => self.probability == 0,
        };
        if !probability_ok {
            return Err(Error::validation(
                "probability",
                "must be 0 to 100; 100 when won, 0 when lost",
            ));
        }
        if self.amount.amount() < Decimal::ZERO {
            return Err(Error::validation("amount", "must not be negative"));
        }
        if self.amount_minor().is_none() {
            return Err(Error::validation(
                "amount",
                "is beyond the largest deal amount (2^63 of the currency's smallest unit)",
            ));
        }
        if self.lines.len() > MAX_LINES {
            return Err(Error::validation(
                "lines",
                format!("a deal has at most {MAX_LINES} lines"),
            ));
        }
        if !self.lines.is_empty() {
            let sum = lines_total(&self.lines, self.amount.currency())?;
            if sum != self.amount {
                return Err(Error::validation(
                    "amount",
                    format!("must equal the sum of the lines, {sum}"),
                ));
            }
        }
        if self.contacts.len() > MAX_CONTACTS {
            return Err(Error::validation(
                "contacts",
                format!("a deal has at most {MAX_CONTACTS} contacts"),
            ));
        }
        for (i, c) in self.contacts.iter().enumerate() {
            if self.contacts[..i].iter().any(|o| o.customer == c.customer) {
                return Err(Error::validation(
                    format!("contacts[{i}]"),
                    "the contact is listed twice",
                ));
            }
        }
        if self.team.len() > MAX_TEAM {
            return Err(Error::validation(
                "team",
                format!("a deal has at most {MAX_TEAM} team members"),
            ));
        }
        for (i, u) in self.team.iter().enumerate() {
            if self.team[..i].contains(u) {
                return Err(Error::validation(
                    format!("team[{i}]"),
                    "the member is listed twice",
                ));
            }
        }
        check_date("close_date", self.close_date)?;
        for (field, text) in [
            ("source", &self.source),
            ("competitor", &self.competitor),
            ("lost_reason", &self.lost_reason),
        ] {
            if let Some(text) = text {
                if note(field, text)? != *text {
                    return Err(Error::validation(
                        field,
                        "must not start or end with white space",
                    ));
                }
            }
        }
        match (self.outcome, &self.lost_reason) {
            (Outcome::Lost, None) => {
                return Err(Error::validation(
                    "lost_reason",
                    "a lost deal needs a reason",
                ))
            }
            (Outcome::Open | Outcome::Won, Some(_)) => {
                return Err(Error::validation(
                    "lost_reason",
                    "only a lost deal has a reason",
                ))
            }
            _ => {}
        }
        if self.closed_at.is_some() != self.is_closed() {
            return Err(Error::validation(
                "closed_at",
                "is set exactly when the deal is won or lost",
            ));
        }
        if self.won.is_some() != (self.outcome == Outcome::Won) {
            return Err(Error::validation(
                "won",
                "is set exactly when the deal is won",
            ));
        }
        if self.order.is_some() && self.outcome != Outcome::Won {
            return Err(Error::validation("order", "only a won deal has an order"));
        }
        if self.alerts.len() > MAX_ALERTS || self.alerts.iter().any(|k| k.len() > 512) {
            return Err(Error::validation(
                "alerts",
                format!("at most {MAX_ALERTS} keys of at most 512 bytes"),
            ));
        }
        Ok(())
    }

    /// Moves the deal to the stage `key` of `pipeline` at `at`: its outcome, category and
    /// probability become the stage's; a won stage takes the [`OrderSnapshot`] and sets the
    /// close date to the day it was won; a lost stage needs `lost_reason` set first. The
    /// version is left to the caller. Returns the stage left.
    ///
    /// Errors: validation on `stage` when the deal is closed (reopen it first), the key is
    /// not a stage of the pipeline or is the current stage; on `lost_reason` for a lost
    /// stage without a reason.
    pub fn enter(
        &mut self,
        pipeline: &Pipeline,
        key: &StageKey,
        at: DateTime<Utc>,
    ) -> Result<StageKey> {
        if self.is_closed() {
            return Err(Error::validation(
                "stage",
                format!(
                    "the deal is {}; reopen it before changing it",
                    self.outcome.as_str()
                ),
            ));
        }
        self.step(pipeline, key, at)
    }

    /// Reopens a closed deal at the open stage `key`: the close time, lost reason and
    /// order snapshot go, the probability is the stage's. Returns the stage left.
    ///
    /// Errors: validation on `stage` when the deal is open or `key` is not an open stage,
    /// on `order` when the ERP already made it into an order.
    pub fn reopen(
        &mut self,
        pipeline: &Pipeline,
        key: &StageKey,
        at: DateTime<Utc>,
    ) -> Result<StageKey> {
        if !self.is_closed() {
            return Err(Error::validation("stage", "the deal is open"));
        }
        if let Some(order) = &self.order {
            return Err(Error::validation(
                "order",
                format!(
                    "the deal became the order {}; it cannot be reopened",
                    order.reference
                ),
            ));
        }
        if pipeline.require_stage(key.as_str(), "stage")?.outcome != Outcome::Open {
            return Err(Error::validation(
                "stage",
                "a deal reopens at an open stage",
            ));
        }
        self.closed_at = None;
        self.lost_reason = None;
        self.won = None;
        self.step(pipeline, key, at)
    }

    fn step(&mut self, pipeline: &Pipeline, key: &StageKey, at: DateTime<Utc>) -> Result<StageKey> {
        let stage = pipeline.require_stage(key.as_str(), "stage")?;
        if *key == self.stage {
            return Err(Error::validation(
                "stage",
                format!("the deal is already in {key}"),
            ));
        }
        if stage.outcome == Outcome::Lost && self.lost_reason.is_none() {
            return Err(Error::validation(
                "lost_reason",
                "a lost deal needs a reason",
            ));
        }
        if stage.outcome != Outcome::Lost {
            self.lost_reason = None;
        }
        let from = std::mem::replace(&mut self.stage, key.clone());
        self.outcome = stage.outcome;
        self.category = stage.category;
        self.probability = stage.probability;
        self.stage_entered_at = at;
        self.updated_at = at;
        self.closed_at = stage.outcome.is_closed().then_some(at);
        if stage.outcome.is_closed() {
            self.close_date = at.date_naive();
        }
        self.won = (stage.outcome == Outcome::Won).then(|| OrderSnapshot {
            opportunity: self.id,
            name: self.name.clone(),
            account: self.account,
            contacts: self.contacts.clone(),
            owner: self.owner,
            amount: self.amount,
            lines: self.lines.clone(),
            won_at: at,
        });
        Ok(from)
    }

    /// Names `survivor` wherever the deal names one of the `merged` customers: as its
    /// account, and as a contact (where the survivor is a contact already, its own entry
    /// stays), and moves it to its next version, so a change made on the version before is
    /// refused as stale. The won snapshot stays as it was sent. Whether anything changed.
    pub fn merge_parties(&mut self, merged: &[CustomerId], survivor: CustomerId) -> bool {
        let mut changed = false;
        if merged.contains(&self.account) {
            self.account = survivor;
            changed = true;
        }
        if self.contacts.iter().any(|c| merged.contains(&c.customer)) {
            // The survivor's own entry wins; else the first merged contact's role.
            let mut named = self.contacts.iter().any(|c| c.customer == survivor);
            self.contacts.retain_mut(|c| {
                if !merged.contains(&c.customer) {
                    return true;
                }
                if named {
                    return false;
                }
                c.customer = survivor;
                named = true;
                true
            });
            changed = true;
        }
        if changed {
            self.version = self.version.saturating_add(1);
        }
        changed
    }

    /// The history entry of the deal's current state: entered from `from` by `by`.
    pub fn stage_change(&self, from: Option<StageKey>, by: Option<UserId>) -> StageChange {
        StageChange {
            opportunity: self.id,
            version: self.version,
            at: self.stage_entered_at,
            by,
            from,
            to: self.stage.clone(),
            outcome: self.outcome,
            amount: self.amount,
            probability: self.probability,
        }
    }
}

/// The sum of `lines`' totals, all in `currency`.
fn lines_total(lines: &[LineItem], currency: crate::Currency) -> Result<Money> {
    let mut sum = Money::from_parts(Decimal::ZERO, currency)?;
    for (i, line) in lines.iter().enumerate() {
        line.validate()
            .map_err(|e| e.in_field(&format!("lines[{i}]")))?;
        if line.unit_price.currency() != currency {
            return Err(Error::validation(
                format!("lines[{i}].unit_price"),
                format!("a deal has one currency, {currency}"),
            ));
        }
        sum = sum
            .checked_add(line.total()?)
            .map_err(|e| e.in_field("lines"))?;
    }
    Ok(sum)
}

/// A date within the supported range (years 1900 to 9999).
fn check_date(field: &str, date: NaiveDate) -> Result<()> {
    crate::clock::check_instant(field, date.and_time(chrono::NaiveTime::MIN).and_utc()).map(drop)
}

#[cfg(test)]
mod tests;
