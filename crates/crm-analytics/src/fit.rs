//! Maximum-likelihood fitting shared by the models: Nelder-Mead (from `argmin`) over the
//! logarithms of the parameters, so every parameter stays positive, restarted from its own
//! best point until it stops improving.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;

use crate::FitError;

struct NegLogLik<F>(F);

impl<F: Fn(&[f64]) -> f64> CostFunction for NegLogLik<F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, log_params: &Self::Param) -> Result<f64, argmin::core::Error> {
        let params: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
        let ll = (self.0)(&params);
        // Outside the region where the likelihood is defined: worse than anything finite.
        Ok(if ll.is_finite() { -ll } else { f64::INFINITY })
    }
}

/// The best parameters found and their log-likelihood.
pub(crate) struct Optimum {
    pub params: Vec<f64>,
    pub log_likelihood: f64,
    pub iterations: u64,
}

/// Maximises `log_lik` over positive parameters, starting at `start`.
pub(crate) fn maximise<F>(
    log_lik: F,
    start: &[f64],
    what: &'static str,
) -> Result<Optimum, FitError>
where
    F: Fn(&[f64]) -> f64,
{
    let problem = NegLogLik(log_lik);
    let mut x: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let mut best = problem
        .cost(&x)
        .map_err(|e| FitError::Optimiser(e.to_string()))?;
    let mut iterations = 0;
    let mut step = 1.0;
    for _round in 0..8 {
        let mut simplex = vec![x.clone()];
        for i in 0..x.len() {
            let mut v = x.clone();
            v[i] += step;
            simplex.push(v);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-12)
            .map_err(|e| FitError::Optimiser(e.to_string()))?;
        let result = Executor::new(NegLogLik(&problem.0), solver)
            .configure(|s| s.max_iters(4000))
            .run()
            .map_err(|e| FitError::Optimiser(e.to_string()))?;
        let state = result.state();
        iterations += state.get_iter();
        let cost = state.get_best_cost();
        let improved = best - cost;
        if let Some(p) = state.get_best_param() {
            if cost <= best {
                x = p.clone();
                best = cost;
            }
        }
        if improved.abs() < 1e-9 {
            break;
        }
        step = 0.1;
    }
    if !best.is_finite() || x.iter().any(|v| !v.exp().is_finite() || v.exp() <= 0.0) {
        return Err(FitError::NotFinite { what });
    }
    Ok(Optimum {
        params: x.iter().map(|v| v.exp()).collect(),
        log_likelihood: -best,
        iterations,
    })
}
