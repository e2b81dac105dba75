//! # crm-analytics
//!
//! Customer-value analytics over `crm-core` data:
//!
//! - [`summary`]: from a purchase log to each customer's calibration summary
//!   (repeat purchases `x`, recency `t_x`, age `T`, first and repeat spend);
//! - [`bgnbd`]: the BG/NBD purchase model (Fader, Hardie and Lee 2005, "Counting your
//!   customers the easy way"): maximum-likelihood fit, expected purchases, probability alive;
//! - [`gamma_gamma`]: the Gamma-Gamma spend model (Fader, Hardie and Lee 2005, "RFM and CLV:
//!   using iso-value curves"): fit and expected spend per purchase;
//! - [`clv`]: predicted CLV over a horizon with discounting, and the five-part breakdown of
//!   realised value (base, growth, referral, cost saving, premium);
//! - [`score`]: scoring a tenant: purchase interactions → summary → fits → each customer's
//!   `p_alive`, expected purchases in 90 days and predicted CLV, stored with the model;
//! - [`cdnow`]: a reader for the CDNOW purchase log in both of its layouts.
//!
//! Data that cannot be fitted is a [`FitError`], never a panic or a NaN in the output.
//!
//! ## Why these dependencies
//!
//! - `argmin`: maintained numerical optimisation; its Nelder-Mead solver maximises the
//!   likelihoods over log-parameters. Kept out of `crm-core`, which stays free of numerics.
//! - `libm`: log-gamma (a port of musl's implementation), small and dependency-free.
//! - `rust_decimal`, `chrono`, `serde`, `thiserror`: money, dates, serde forms of fitted
//!   models, and the error type.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bgnbd;
pub mod cdnow;
pub mod clv;
mod fit;
pub mod gamma_gamma;
pub mod score;
mod special;
pub mod summary;

pub use bgnbd::{BgNbd, BgNbdFit, Observation};
pub use clv::{ClvSettings, FivePartSettings, ValueBreakdown, ValueInput};
pub use gamma_gamma::{GammaGamma, GammaGammaFit, SpendObservation};
pub use score::{classify_tenant, score_tenant, ScoreError, ScoreReport, ScoreSettings};
pub use summary::{calibration_summary, CustomerSummary, Purchase, TimeUnit};

/// Why data could not be read or fitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// Fewer customers than the model needs.
    #[error("too few customers to fit: {got}, need at least {need}")]
    TooFewCustomers {
        /// Customers given.
        got: usize,
        /// Customers needed.
        need: usize,
    },
    /// Nobody bought twice: the purchase model cannot tell buying from dropping out.
    #[error("no customer has a repeat purchase")]
    NoRepeatPurchases,
    /// An observation is impossible (negative, non-finite, last purchase after the end...).
    #[error("observation {index} is invalid: {reason}")]
    BadObservation {
        /// Its position in the input.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A result was not a finite number.
    #[error("non-finite result: {what}")]
    NotFinite {
        /// Which result.
        what: &'static str,
    },
    /// Forecast settings out of range.
    #[error("bad settings: {0}")]
    BadSettings(&'static str),
    /// The optimiser found no finite optimum.
    #[error("optimiser failed on the {0}")]
    Optimiser(&'static str),
    /// An input file could not be read.
    #[error("line {line}: {reason}")]
    Input {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl BgNbdFit {
    /// The summary rows as model observations.
    pub fn observations<K>(rows: &[CustomerSummary<K>]) -> Vec<Observation> {
        rows.iter()
            .map(|r| Observation {
                x: f64::from(r.frequency),
                t_x: r.recency,
                t: r.age,
            })
            .collect()
    }
}

impl GammaGammaFit {
    /// The repeat customers of the summary with a positive mean repeat spend, as spend
    /// observations: the customers the Gamma-Gamma model is fitted on.
    ///
    /// Repeat customers whose repeat purchases total zero or less (free items, refunded
    /// orders) are left out, as is the published practice: the model's spend is positive
    /// by definition. [`GammaGammaFit::left_out`] counts them; they are still scored, with
    /// the model's population mean as their expected spend
    /// ([`predicted_clv`](crate::clv::predicted_clv)).
    pub fn observations<K>(rows: &[CustomerSummary<K>]) -> Vec<SpendObservation> {
        rows.iter()
            .filter_map(|r| {
                let m = r
                    .mean_repeat_amount()
                    .filter(|m| m.is_sign_positive() && !m.is_zero())?;
                Some(SpendObservation {
                    x: f64::from(r.frequency),
                    mean: clv::as_f64(m),
                })
            })
            .collect()
    }

    /// Repeat customers of the summary left out of the spend fit: those whose repeat
    /// purchases total zero or less.
    pub fn left_out<K>(rows: &[CustomerSummary<K>]) -> usize {
        rows.iter()
            .filter(|r| {
                r.mean_repeat_amount()
                    .is_some_and(|m| m.is_zero() || m.is_sign_negative())
            })
            .count()
    }
}
