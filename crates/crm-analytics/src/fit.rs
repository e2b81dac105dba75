//! Maximum-likelihood fitting shared by the models, over the logarithms of the parameters so
//! every parameter stays positive: L-BFGS with a Moré-Thuente line search (from `argmin`)
//! on the analytic gradient, and Nelder-Mead (also `argmin`) as the fallback should the
//! gradient method fail.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

use crate::FitError;

/// A log-likelihood with its gradient, both in the natural (positive) parameters.
pub(crate) trait LogLikelihood {
    /// The value and the gradient at `params`.
    fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>);

    /// How many observations the likelihood sums over. The optimiser works on the mean, so
    /// that step sizes do not grow with the data.
    fn weight(&self) -> f64;
}

/// The negative log-likelihood in log-parameters, caching the last point (argmin asks for
/// the cost and the gradient separately; one pass computes both).
struct LogSpace<'a, L> {
    model: &'a L,
    last: RefCell<Option<Evaluated>>,
}

/// A point in log-parameter space with its cost and gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

impl<L: LogLikelihood> LogSpace<'_, L> {
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        if let Some((at, cost, grad)) = self.last.borrow().as_ref() {
            if at.as_slice() == theta {
                return (*cost, grad.clone());
            }
        }
        let params: Vec<f64> = theta.iter().map(|v| v.exp()).collect();
        let (ll, g) = self.model.value_and_gradient(&params);
        let scale = 1.0 / self.model.weight().max(1.0);
        let (cost, grad) = if ll.is_finite() && g.iter().all(|v| v.is_finite()) {
            (
                -ll * scale,
                g.iter()
                    .zip(&params)
                    .map(|(gi, p)| -gi * p * scale)
                    .collect(),
            )
        } else {
            (f64::INFINITY, vec![0.0; theta.len()])
        };
        *self.last.borrow_mut() = Some((theta.to_vec(), cost, grad.clone()));
        (cost, grad)
    }
}

impl<L: LogLikelihood> CostFunction for LogSpace<'_, L> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.eval(theta).0)
    }
}

impl<L: LogLikelihood> Gradient for LogSpace<'_, L> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(theta).1)
    }
}

/// The best parameters found and their log-likelihood.
pub(crate) struct Optimum {
    pub params: Vec<f64>,
    pub log_likelihood: f64,
    pub iterations: u64,
}

fn space<L>(model: &L) -> LogSpace<'_, L> {
    LogSpace {
        model,
        last: RefCell::new(None),
    }
}

fn lbfgs<L: LogLikelihood>(model: &L, start: Vec<f64>) -> Option<(Vec<f64>, f64, u64)> {
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_grad(1e-8)
        .ok()?
        .with_tolerance_cost(1e-13)
        .ok()?;
    let result = Executor::new(space(model), solver)
        .configure(|s| s.param(start).max_iters(1000))
        .run()
        .ok()?;
    let state = result.state();
    Some((
        state.get_best_param()?.clone(),
        state.get_best_cost(),
        state.get_iter(),
    ))
}

fn nelder_mead<L: LogLikelihood>(model: &L, start: Vec<f64>) -> Option<(Vec<f64>, f64, u64)> {
    let (mut x, mut best, mut iterations) = (start, f64::INFINITY, 0);
    let mut step = 1.0;
    for _round in 0..8 {
        let mut simplex = vec![x.clone()];
        for i in 0..x.len() {
            let mut v = x.clone();
            v[i] += step;
            simplex.push(v);
        }
        let solver = NelderMead::new(simplex).with_sd_tolerance(1e-12).ok()?;
        let result = Executor::new(space(model), solver)
            .configure(|s| s.max_iters(4000))
            .run()
            .ok()?;
        let state = result.state();
        iterations += state.get_iter();
        let cost = state.get_best_cost();
        let gain = best - cost;
        if cost <= best {
            x = state.get_best_param()?.clone();
            best = cost;
        }
        if gain.abs() < 1e-9 {
            break;
        }
        step = 0.1;
    }
    Some((x, best, iterations))
}

/// Maximises the log-likelihood over positive parameters, starting at `start`.
pub(crate) fn maximise<L: LogLikelihood>(
    model: &L,
    start: &[f64],
    what: &'static str,
) -> Result<Optimum, FitError> {
    let theta: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let found = lbfgs(model, theta.clone())
        .filter(|(_, cost, _)| cost.is_finite())
        .or_else(|| nelder_mead(model, theta))
        .ok_or(FitError::Optimiser(what))?;
    let (x, cost, iterations) = found;
    let params: Vec<f64> = x.iter().map(|v| v.exp()).collect();
    if !cost.is_finite() || params.iter().any(|p| !p.is_finite() || *p <= 0.0) {
        return Err(FitError::NotFinite { what });
    }
    Ok(Optimum {
        params,
        log_likelihood: -cost * model.weight().max(1.0),
        iterations,
    })
}

/// Above this many observations a fit starts from the optimum of a systematic subsample of
/// about [`SUBSAMPLE`] of them: the full-data optimiser then needs only a few iterations.
pub(crate) const WARM_START_ABOVE: usize = 50_000;
/// Target size of the warm-start subsample.
pub(crate) const SUBSAMPLE: usize = 20_000;

/// Maximises the likelihood of `data` (prepared for evaluation by `prepare`), starting at
/// `start`; large data sets start from the optimum of a systematic subsample.
pub(crate) fn maximise_warm<T: Copy, L: LogLikelihood>(
    data: &[T],
    prepare: impl Fn(&[T]) -> L,
    start: &[f64],
    what: &'static str,
) -> Result<Optimum, FitError> {
    let mut start = start.to_vec();
    let mut warm_up = 0;
    if data.len() > WARM_START_ABOVE {
        let sub: Vec<T> = data
            .iter()
            .step_by(data.len() / SUBSAMPLE)
            .copied()
            .collect();
        let opt = maximise(&prepare(&sub), &start, what)?;
        (start, warm_up) = (opt.params, opt.iterations);
    }
    let mut opt = maximise(&prepare(data), &start, what)?;
    opt.iterations += warm_up;
    Ok(opt)
}
