//! Customer value from Python: RFM and ABC classes, and the CLV models' scores.

use std::str::FromStr;

use crm::analytics::{
    classify_tenant, score_tenant, ClvSettings, ScoreError, ScoreSettings, TimeUnit,
};
use crm::chrono::{DateTime, NaiveDate, Utc};
use crm::rust_decimal::Decimal;
use crm::value_class::AbcLimits;
use crm::{Currency, CustomerId};
use pyo3::prelude::*;
use uuid::Uuid;

use crate::errors::{invalid, to_py};
use crate::tenant::Tenant;

/// A customer's RFM scores (1 to 5, 5 best), RFM segment and ABC class.
#[pyclass(module = "crm_core", frozen, get_all)]
pub struct ValueClasses {
    /// Recency score.
    pub r: u8,
    /// Frequency score.
    pub f: u8,
    /// Monetary score.
    pub m: u8,
    /// The RFM segment (`champions`, `loyal`, `at_risk`, ...).
    pub segment: String,
    /// `A`, `B` or `C`.
    pub abc: String,
    /// The day the classes are for.
    pub as_of: NaiveDate,
}

#[pymethods]
impl ValueClasses {
    fn __repr__(&self) -> String {
        format!(
            "ValueClasses(r={}, f={}, m={}, segment={:?}, abc={:?}, as_of={})",
            self.r, self.f, self.m, self.segment, self.abc, self.as_of
        )
    }
}

/// A customer's scores from the fitted BG/NBD and Gamma-Gamma models.
#[pyclass(module = "crm_core", frozen, get_all)]
pub struct ValueScores {
    /// The chance the customer is still active.
    pub p_alive: f64,
    /// Expected purchases in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Predicted customer lifetime value (margin, discounted).
    pub predicted_clv: Decimal,
    /// Its currency.
    pub currency: String,
    /// When the scores were computed (UTC).
    pub scored_at: DateTime<Utc>,
}

#[pymethods]
impl ValueScores {
    fn __repr__(&self) -> String {
        format!(
            "ValueScores(p_alive={:.3}, expected_purchases_90d={:.3}, predicted_clv={} {})",
            self.p_alive, self.expected_purchases_90d, self.predicted_clv, self.currency
        )
    }
}

fn currency(code: &str) -> PyResult<Currency> {
    Currency::from_str(code)
        .map_err(|_| invalid("currency", format!("{code:?} is not an ISO 4217 code")))
}

#[pymethods]
impl Tenant {
    /// Computes and stores every customer's RFM scores, segment and ABC class as of
    /// `as_of` from their purchases in `currency`; how many customers were classified.
    #[pyo3(signature = (as_of, *, currency="EUR"))]
    fn classify(&self, py: Python<'_>, as_of: NaiveDate, currency: &str) -> PyResult<usize> {
        let code = self::currency(currency)?;
        self.run_crm(py, move |crm, tenant| async move {
            classify_tenant(&crm, tenant, as_of, code, AbcLimits::default()).await
        })
    }

    /// A customer's stored value classes (`None` before `classify`).
    fn value_classes(&self, py: Python<'_>, customer: Uuid) -> PyResult<Option<ValueClasses>> {
        let id = CustomerId::from_uuid(customer);
        let found = self.run(py, |t| async move { t.value().classes(id).await })?;
        Ok(found.map(|c| ValueClasses {
            r: c.r,
            f: c.f,
            m: c.m,
            segment: c.segment.as_str().to_string(),
            abc: c.abc.as_str().to_string(),
            as_of: c.as_of,
        }))
    }

    /// Fits BG/NBD and Gamma-Gamma on the purchases in `currency` up to
    /// `calibration_end` (weeks as the unit) and stores every buyer's P(alive), expected
    /// purchases in 90 days and predicted CLV: margin at `margin` over `horizon_weeks`,
    /// discounted at `monthly_discount` a month. Returns the number scored.
    #[pyo3(signature = (calibration_end, *, currency="EUR", horizon_weeks=52.0, monthly_discount=0.01, margin=0.3))]
    fn score(
        &self,
        py: Python<'_>,
        calibration_end: NaiveDate,
        currency: &str,
        horizon_weeks: f64,
        monthly_discount: f64,
        margin: f64,
    ) -> PyResult<usize> {
        let settings = ScoreSettings {
            calibration_end,
            unit: TimeUnit::Weeks,
            currency: self::currency(currency)?,
            clv: ClvSettings {
                horizon: horizon_weeks,
                period: 4.345,
                discount_rate: monthly_discount,
                margin_rate: margin,
            },
        };
        let (t, runtime) = self.parts();
        let crm = t.crm().clone();
        let tenant = t.id();
        py.detach(move || {
            runtime.block_on(async move {
                score_tenant(&crm, tenant, &settings, crm.now())
                    .await
                    .map(|r| r.scored)
            })
        })
        .map_err(|e| match e {
            ScoreError::Storage(e) => to_py(e),
            other => invalid(
                "purchases",
                format!("the models could not be fitted: {other}"),
            ),
        })
    }

    /// A customer's stored value scores (`None` before `score`, or for a customer without
    /// a purchase up to the calibration end).
    fn value_scores(&self, py: Python<'_>, customer: Uuid) -> PyResult<Option<ValueScores>> {
        let id = CustomerId::from_uuid(customer);
        let found = self.run(py, |t| async move { t.value().scores(id).await })?;
        Ok(found.map(|s| ValueScores {
            p_alive: s.p_alive,
            expected_purchases_90d: s.expected_purchases_90d,
            predicted_clv: s.predicted_clv.amount(),
            currency: s.predicted_clv.currency().to_string(),
            scored_at: s.scored_at,
        }))
    }
}
