//! Fits BG/NBD and Gamma-Gamma to a CDNOW purchase log and prints one JSON object.
//!
//! `cargo run --release --example clv -- --cdnow FILE --calibration-end 1997-09-30 --unit weeks`
//!
//! Reads either CDNOW layout (the 5-column sample or the 4-column full set with its header).
//! Stdout gets exactly one JSON object with the keys `customers`, `repeat_customers`, `r`,
//! `alpha`, `a`, `b`, `log_likelihood`, `p`, `q`, `gamma`, `fit_ms`; diagnostics go to stderr.

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDate;
use crm_analytics::cdnow::read_cdnow;
use crm_analytics::{calibration_summary, BgNbd, BgNbdFit, GammaGamma, GammaGammaFit, TimeUnit};

struct Args {
    cdnow: String,
    calibration_end: NaiveDate,
    unit: TimeUnit,
}

const USAGE: &str = "\
usage: clv --cdnow FILE --calibration-end YYYY-MM-DD [--unit weeks|days]

Fits the BG/NBD and Gamma-Gamma models to a CDNOW purchase log.

  --cdnow FILE              a CDNOW purchase log (the 5-column sample or the 4-column full set)
  --calibration-end DATE    the last day of the calibration period
  --unit weeks|days         the time unit of the BG/NBD parameters (default: weeks)

Stdout: exactly one JSON object with the keys customers, repeat_customers, r, alpha, a,
b, log_likelihood, p, q, gamma, fit_ms. Stderr: what was fitted, and the parameters as a
table for a person.";

/// Asked for usage instead of a fit.
const HELP: &str = "help";

fn parse_args() -> Result<Args, String> {
    let mut cdnow = None;
    let mut end = None;
    let mut unit = TimeUnit::Weeks;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Err(HELP.into()),
            "--cdnow" => cdnow = Some(value()?),
            "--calibration-end" => {
                let v = value()?;
                end =
                    Some(v.parse().map_err(|_| {
                        format!("--calibration-end: bad date {v:?} (want YYYY-MM-DD)")
                    })?);
            }
            "--unit" => {
                let v = value()?;
                unit = TimeUnit::parse(&v).ok_or(format!("--unit: {v:?} is not days or weeks"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        cdnow: cdnow.ok_or("--cdnow FILE is required")?,
        calibration_end: end.ok_or("--calibration-end YYYY-MM-DD is required")?,
        unit,
    })
}

fn run() -> Result<String, String> {
    let args = parse_args()?;
    let file = File::open(&args.cdnow).map_err(|e| format!("{}: {e}", args.cdnow))?;
    let log = read_cdnow(BufReader::new(file)).map_err(|e| format!("{}: {e}", args.cdnow))?;
    let summary =
        calibration_summary(log, args.calibration_end, args.unit).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let purchases =
        BgNbd::fit(&BgNbdFit::observations(&summary)).map_err(|e| format!("BG/NBD: {e}"))?;
    let spend_data = GammaGammaFit::observations(&summary);
    let left_out = GammaGammaFit::left_out(&summary);
    let spend = GammaGamma::fit(&spend_data).map_err(|e| format!("Gamma-Gamma: {e}"))?;
    let fit_ms = started.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "fitted {} customers ({} repeat with positive spend) in {fit_ms:.1} ms ({} + {} optimiser iterations)",
        summary.len(),
        spend_data.len(),
        purchases.iterations,
        spend.iterations
    );
    if left_out > 0 {
        eprintln!(
            "left out of the spend fit: {left_out} repeat customer(s) whose repeat purchases total zero or less"
        );
    }
    let (bg, gg) = (purchases.params, spend.params);
    eprintln!("{:<12} {:<9} {:>9}", "model", "parameter", "value");
    for (model, name, value) in [
        ("BG/NBD", "r", bg.r),
        ("BG/NBD", "alpha", bg.alpha),
        ("BG/NBD", "a", bg.a),
        ("BG/NBD", "b", bg.b),
        ("Gamma-Gamma", "p", gg.p),
        ("Gamma-Gamma", "q", gg.q),
        ("Gamma-Gamma", "gamma", gg.gamma),
    ] {
        eprintln!("{model:<12} {name:<9} {value:>9.4}");
    }
    eprintln!("BG/NBD log-likelihood {:.2}", purchases.log_likelihood);
    Ok(format!(
        "{{\"customers\":{},\"repeat_customers\":{},\"r\":{},\"alpha\":{},\"a\":{},\"b\":{},\"log_likelihood\":{},\"p\":{},\"q\":{},\"gamma\":{},\"fit_ms\":{}}}",
        summary.len(),
        spend_data.len(),
        bg.r,
        bg.alpha,
        bg.a,
        bg.b,
        purchases.log_likelihood,
        gg.p,
        gg.q,
        gg.gamma,
        fit_ms
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) if e == HELP => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clv: {e} (--help for usage)");
            ExitCode::FAILURE
        }
    }
}
