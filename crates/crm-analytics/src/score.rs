//! Scoring a tenant's customers from their purchase interactions: build the calibration
//! summary, fit both models, store each customer's value scores and the fitted model.

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::value_class::{abc, rfm, AbcLimits};
use crm_core::{
    Crm, Currency, CustomerId, CustomerQuery, InteractionKind, Money, PageRequest, PurchaseModel,
    SpendModel, TenantId, ValueClasses, ValueModel, ValueScores,
};

use rust_decimal::Decimal;

use crate::bgnbd::BgNbd;
use crate::clv::{as_f64, predicted_clv, to_money, ClvSettings};
use crate::gamma_gamma::GammaGamma;
use crate::summary::{calibration_summary, Purchase, TimeUnit};
use crate::{BgNbdFit, FitError, GammaGammaFit};

/// What to score and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreSettings {
    /// Last day (UTC) of the calibration period; later purchases are ignored.
    pub calibration_end: NaiveDate,
    /// The models' time unit.
    pub unit: TimeUnit,
    /// Only purchases in this currency count; predicted CLV is in it too.
    pub currency: Currency,
    /// Horizon, discounting and margin of the predicted CLV.
    pub clv: ClvSettings,
}

/// What [`score_tenant`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreReport {
    /// The fitted model, as stored.
    pub model: ValueModel,
    /// Customers scored (those with a purchase in the calibration period).
    pub scored: usize,
    /// Repeat customers left out of the spend fit because their repeat purchases total
    /// zero or less; they are scored with the population mean spend.
    pub spend_left_out: usize,
}

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// Reading or writing the tenant's data failed.
    #[error(transparent)]
    Storage(#[from] crm_core::Error),
    /// The data could not be fitted.
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// Every purchase of the tenant's customers in `currency` with an amount, as a purchase log
/// keyed by customer (days are UTC days).
pub async fn purchase_log(
    crm: &Crm,
    tenant: TenantId,
    currency: Currency,
) -> Result<Vec<Purchase<CustomerId>>, crm_core::Error> {
    let mut log = Vec::new();
    let mut customers = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let page = crm
            .tenant(tenant)
            .customers()
            .search(&CustomerQuery::all(), &customers)
            .await?;
        for c in &page.items {
            let mut events = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let timeline = crm
                    .tenant(tenant)
                    .interactions()
                    .timeline(c.id, &events)
                    .await?;
                log.extend(timeline.items.iter().filter_map(|i| {
                    let amount = i.amount.filter(|m| m.currency() == currency)?;
                    (i.kind == InteractionKind::Purchase).then(|| Purchase {
                        customer: c.id,
                        date: i.occurred_at.date_naive(),
                        amount: amount.amount(),
                    })
                }));
                match timeline.next {
                    Some(next) => events = PageRequest::after(next, PageRequest::MAX_LIMIT),
                    None => break,
                }
            }
        }
        match page.next {
            Some(next) => customers = PageRequest::after(next, PageRequest::MAX_LIMIT),
            None => break,
        }
    }
    Ok(log)
}

/// What fitting and scoring a purchase log gave.
struct Fitted {
    purchases: BgNbdFit,
    spend: GammaGammaFit,
    spend_left_out: usize,
    scores: Vec<(CustomerId, ValueScores)>,
}

/// Fits both models on `log` and scores every customer in it (CPU only, no I/O).
fn fit_and_score(
    log: Vec<Purchase<CustomerId>>,
    settings: &ScoreSettings,
    now: DateTime<Utc>,
) -> Result<Fitted, ScoreError> {
    let summary = calibration_summary(log, settings.calibration_end, settings.unit)?;
    let observations = BgNbdFit::observations(&summary);
    let spend_data = GammaGammaFit::observations(&summary);
    let spend_left_out = GammaGammaFit::left_out(&summary);
    let purchases = BgNbd::fit(&observations)?;
    let spend = GammaGamma::fit(&spend_data)?;
    let horizon_90d = 90.0 / settings.unit.days();
    let mut scores = Vec::with_capacity(summary.len());
    for (row, o) in summary.iter().zip(&observations) {
        let mean = row.mean_repeat_amount().map(as_f64).unwrap_or(0.0);
        let clv = predicted_clv(&purchases.params, &spend.params, o, mean, &settings.clv)?;
        scores.push((
            row.customer,
            ValueScores {
                p_alive: purchases.params.p_alive(o),
                expected_purchases_90d: purchases.params.expected_purchases(horizon_90d, o)?,
                predicted_clv: Money::from_parts(
                    to_money(clv, settings.currency)?,
                    settings.currency,
                )?,
                scored_at: now,
            },
        ));
    }
    Ok(Fitted {
        purchases,
        spend,
        spend_left_out,
        scores,
    })
}

/// Scores every customer of the tenant who bought in the calibration period: fits BG/NBD and
/// Gamma-Gamma on their purchase interactions, stores each one's `p_alive`, expected
/// purchases in the next 90 days and predicted CLV (in chunks of up to 100,000 customers,
/// each chunk one transaction), then stores the model with `fitted_at = now`.
pub async fn score_tenant(
    crm: &Crm,
    tenant: TenantId,
    settings: &ScoreSettings,
    now: DateTime<Utc>,
) -> Result<ScoreReport, ScoreError> {
    let log = purchase_log(crm, tenant, settings.currency).await?;
    // Fitting takes seconds of CPU on a large tenant: off the executor.
    let owned = settings.clone();
    let fitted = crm_core::blocking::run(move || fit_and_score(log, &owned, now)).await??;
    let Fitted {
        purchases,
        spend,
        spend_left_out,
        scores,
    } = fitted;
    let scored = scores.len();
    let mut rest = scores;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(crm_core::service::MAX_BATCH));
        crm.tenant(tenant).value().set_scores(rest).await?;
        rest = tail;
    }
    let model = ValueModel {
        fitted_at: now,
        calibration_end: settings.calibration_end,
        unit_days: settings.unit.days() as u32,
        customers: purchases.customers as u64,
        repeat_customers: spend.customers as u64,
        purchases: PurchaseModel {
            r: purchases.params.r,
            alpha: purchases.params.alpha,
            a: purchases.params.a,
            b: purchases.params.b,
            log_likelihood: purchases.log_likelihood,
        },
        spend: SpendModel {
            p: spend.params.p,
            q: spend.params.q,
            gamma: spend.params.gamma,
            log_likelihood: spend.log_likelihood,
        },
    };
    crm.tenant(tenant).value().save_model(&model).await?;
    Ok(ScoreReport {
        model,
        scored,
        spend_left_out,
    })
}

/// Computes every customer's RFM scores and segment and ABC class as of `as_of` from their
/// purchase interactions in `currency`, and stores them (in chunks of up to 100,000, each
/// chunk one transaction), so rules can use `rfm_segment`, `abc_class` and the scores.
/// Returns how many customers were classified (those with a purchase on or before `as_of`).
pub async fn classify_tenant(
    crm: &Crm,
    tenant: TenantId,
    as_of: NaiveDate,
    currency: Currency,
    limits: AbcLimits,
) -> Result<usize, crm_core::Error> {
    let log = purchase_log(crm, tenant, currency).await?;
    let rows = rfm(
        log.into_iter().map(|p| (p.customer, p.date, p.amount)),
        as_of,
    )?;
    let revenue: Vec<(CustomerId, Decimal)> =
        rows.iter().map(|r| (r.customer, r.monetary)).collect();
    let report = abc(&revenue, limits)?;
    let mut classes: Vec<(CustomerId, ValueClasses)> = rows
        .iter()
        .zip(report.classes)
        .map(|(r, (_, class))| {
            (
                r.customer,
                ValueClasses {
                    r: r.r,
                    f: r.f,
                    m: r.m,
                    segment: r.segment,
                    abc: class,
                    as_of,
                },
            )
        })
        .collect();
    let classified = classes.len();
    while !classes.is_empty() {
        let tail = classes.split_off(classes.len().min(crm_core::service::MAX_BATCH));
        crm.tenant(tenant).value().set_classes(classes).await?;
        classes = tail;
    }
    Ok(classified)
}

impl From<&PurchaseModel> for BgNbd {
    fn from(m: &PurchaseModel) -> Self {
        BgNbd {
            r: m.r,
            alpha: m.alpha,
            a: m.a,
            b: m.b,
        }
    }
}

impl From<&SpendModel> for GammaGamma {
    fn from(m: &SpendModel) -> Self {
        GammaGamma {
            p: m.p,
            q: m.q,
            gamma: m.gamma,
        }
    }
}
