//! Model-fitting benchmark: BG/NBD and Gamma-Gamma on the CDNOW sample and on a generated
//! base of customers, beside the Python package `lifetimes` fitting the same data in the
//! same run (when it is installed).
//!
//! `cargo bench -p crm-analytics --bench fit [-- --customers N]` (default 1,000,000).
//! The Python side runs `benches/lifetimes_fit.py` with the interpreter named by
//! `CRM_LIFETIMES_PYTHON` (default `python3`); if `import lifetimes` fails there, only the
//! Rust figures are printed. Install it with `pip install lifetimes==0.11.3`.

use crm_testkit::bench_arg as arg;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::NaiveDate;
use crm_analytics::cdnow::read_cdnow;
use crm_analytics::{
    calibration_summary, BgNbd, BgNbdFit, GammaGamma, GammaGammaFit, Observation, SpendObservation,
    TimeUnit,
};

/// Median wall time in milliseconds of `runs` calls of `f`.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Gamma(shape, rate) draw (Marsaglia and Tsang 2000).
fn gamma(rng: &mut fastrand::Rng, shape: f64, rate: f64) -> f64 {
    if shape < 1.0 {
        let u = rng.f64().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0, rate) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = normal(rng);
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.f64().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v / rate;
        }
    }
}

/// Customers drawn from the BG/NBD and Gamma-Gamma processes with CDNOW-like parameters:
/// first purchases on the first 84 days of a 273-day calibration period, times in weeks
/// at day precision.
fn generate(n: usize, seed: u64) -> (Vec<Observation>, Vec<SpendObservation>) {
    let (r, alpha, a, b) = (0.243, 4.414, 0.793, 2.426);
    let (p, q, g) = (6.25, 3.74, 15.44);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut obs = Vec::with_capacity(n);
    let mut spend = Vec::new();
    for _ in 0..n {
        let big_t = f64::from(273 - rng.u32(0..84)) / 7.0;
        let lambda = gamma(&mut rng, r, alpha);
        let (g1, g2) = (gamma(&mut rng, a, 1.0), gamma(&mut rng, b, 1.0));
        let drop = g1 / (g1 + g2);
        let (mut t, mut x, mut t_x) = (0.0, 0u32, 0.0);
        loop {
            t += -rng.f64().max(f64::MIN_POSITIVE).ln() / lambda;
            if t > big_t {
                break;
            }
            x += 1;
            t_x = (t * 7.0).floor() / 7.0;
            if rng.f64() < drop {
                break;
            }
        }
        obs.push(Observation {
            x: f64::from(x),
            t_x,
            t: big_t,
        });
        if x > 0 {
            let nu = gamma(&mut rng, q, g);
            let total = gamma(&mut rng, p * f64::from(x), nu);
            spend.push(SpendObservation {
                x: f64::from(x),
                mean: total / f64::from(x),
            });
        }
    }
    (obs, spend)
}

fn write_generated(path: &Path, obs: &[Observation], spend: &[SpendObservation]) {
    let mut w = BufWriter::new(File::create(path).expect("create csv"));
    writeln!(w, "x,t_x,T,mean").expect("write");
    let mut s = spend.iter();
    for o in obs {
        let mean = if o.x > 0.0 {
            s.next().map(|v| v.mean).unwrap_or(0.0)
        } else {
            0.0
        };
        writeln!(w, "{},{},{},{}", o.x, o.t_x, o.t, mean).expect("write");
    }
}

fn lifetimes(args: &[&str]) -> Option<(f64, f64)> {
    let python = std::env::var("CRM_LIFETIMES_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/lifetimes_fit.py");
    let out = Command::new(&python).arg(script).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "lifetimes not run: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> Option<f64> {
        let at = text.find(&format!("\"{k}\": "))? + k.len() + 4;
        text[at..].split([',', '}']).next()?.trim().parse().ok()
    };
    Some((field("bgnbd_ms")?, field("gamma_gamma_ms")?))
}

fn report(name: &str, rust: (f64, f64), python: Option<(f64, f64)>) {
    println!("{name}");
    println!("  BG/NBD fit      : {:>10.2} ms (Rust)", rust.0);
    println!("  Gamma-Gamma fit : {:>10.2} ms (Rust)", rust.1);
    match python {
        Some((pb, pg)) => {
            println!("  lifetimes 0.11.3: {pb:>10.2} ms BG/NBD, {pg:.2} ms Gamma-Gamma");
            println!(
                "  speed-up        : {:.1}x BG/NBD, {:.1}x Gamma-Gamma, {:.1}x both (goal >= 20)",
                pb / rust.0,
                pg / rust.1,
                (pb + pg) / (rust.0 + rust.1)
            );
        }
        None => println!("  lifetimes       : not available (set CRM_LIFETIMES_PYTHON)"),
    }
}

fn main() {
    let n = arg("--customers", 1_000_000);
    let sample =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow/CDNOW_sample.txt");
    let log = read_cdnow(BufReader::new(File::open(&sample).expect("sample"))).expect("read");
    let summary = calibration_summary(
        log,
        NaiveDate::from_ymd_opt(1997, 9, 30).expect("date"),
        TimeUnit::Weeks,
    )
    .expect("totals fit");
    let (obs, spend) = (
        BgNbdFit::observations(&summary),
        GammaGammaFit::observations(&summary),
    );
    let fit = BgNbd::fit(&obs).expect("fit");
    println!(
        "CDNOW sample: r {:.4} alpha {:.4} a {:.4} b {:.4} LL {:.2}",
        fit.params.r, fit.params.alpha, fit.params.a, fit.params.b, fit.log_likelihood
    );
    let rust = (
        median_ms(21, || {
            std::hint::black_box(BgNbd::fit(&obs).expect("fit"));
        }),
        median_ms(21, || {
            std::hint::black_box(GammaGamma::fit(&spend).expect("fit"));
        }),
    );
    report(
        "CDNOW sample (2,357 customers, median of 21 runs)",
        rust,
        lifetimes(&[sample.to_str().expect("path")]),
    );

    let t = Instant::now();
    let (obs, spend) = generate(n, 7);
    eprintln!(
        "generated {n} customers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let fit = BgNbd::fit(&obs).expect("fit");
    let gg = GammaGamma::fit(&spend).expect("fit");
    println!(
        "generated: r {:.3} alpha {:.3} a {:.3} b {:.3} | p {:.2} q {:.2} gamma {:.2} (drawn with 0.243 4.414 0.793 2.426 | 6.25 3.74 15.44)",
        fit.params.r, fit.params.alpha, fit.params.a, fit.params.b, gg.params.p, gg.params.q, gg.params.gamma
    );
    let rust = (
        median_ms(3, || {
            std::hint::black_box(BgNbd::fit(&obs).expect("fit"));
        }),
        median_ms(3, || {
            std::hint::black_box(GammaGamma::fit(&spend).expect("fit"));
        }),
    );
    let dir = std::env::temp_dir().join(format!("crm-fit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = dir.join("generated.csv");
    write_generated(&csv, &obs, &spend);
    let python = lifetimes(&["--generated", csv.to_str().expect("path")]);
    let _ = std::fs::remove_dir_all(&dir);
    report(
        &format!(
            "generated base ({n} customers, {} repeat, median of 3 runs)",
            spend.len()
        ),
        rust,
        python,
    );
}
