//! The models reproduce the published CDNOW figures.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use chrono::NaiveDate;
use crm_analytics::cdnow::read_cdnow;
use crm_analytics::{
    calibration_summary, BgNbd, BgNbdFit, GammaGamma, GammaGammaFit, Observation, TimeUnit,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cdnow")
        .join(name)
}

fn published_summary() -> Vec<Observation> {
    let text = std::fs::read_to_string(fixture("cdnow_customers_summary.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            Observation {
                x: v[1],
                t_x: v[2],
                t: v[3],
            }
        })
        .collect()
}

fn within(got: f64, want: f64, rel: f64) -> bool {
    ((got - want) / want).abs() <= rel
}

fn sample_summary() -> Vec<crm_analytics::CustomerSummary<u64>> {
    let log = read_cdnow(BufReader::new(
        File::open(fixture("CDNOW_sample.txt")).unwrap(),
    ))
    .unwrap();
    assert_eq!(log.len(), 6919);
    calibration_summary(
        log,
        NaiveDate::from_ymd_opt(1997, 9, 30).unwrap(),
        TimeUnit::Weeks,
    )
    .expect("totals fit")
}

#[test]
fn summary_from_the_raw_log_matches_the_published_summary() {
    let ours = BgNbdFit::observations(&sample_summary());
    let theirs = published_summary();
    assert_eq!(ours.len(), 2357);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.x, b.x, "customer {}", i + 1);
        assert!(
            (a.t_x - b.t_x).abs() < 0.006 && (a.t - b.t).abs() < 0.006,
            "customer {}: {a:?} vs {b:?}",
            i + 1
        );
    }
}

#[test]
fn bgnbd_reproduces_fader_hardie_lee_2005() {
    let fit = BgNbd::fit(&published_summary()).unwrap();
    let p = fit.params;
    assert!(within(p.r, 0.243, 0.01), "r = {}", p.r);
    assert!(within(p.alpha, 4.414, 0.01), "alpha = {}", p.alpha);
    assert!(within(p.a, 0.793, 0.01), "a = {}", p.a);
    assert!(within(p.b, 2.426, 0.01), "b = {}", p.b);
    assert!(
        (fit.log_likelihood - -9582.4).abs() <= 0.5,
        "LL = {}",
        fit.log_likelihood
    );
    let e = p
        .expected_purchases(
            39.0,
            &Observation {
                x: 2.0,
                t_x: 30.43,
                t: 38.86,
            },
        )
        .unwrap();
    assert!((e - 1.226).abs() <= 0.005, "E[Y(39)] = {e}");
    // The same fit from the raw log (the summary is rebuilt, not read).
    let raw = BgNbd::fit(&BgNbdFit::observations(&sample_summary())).unwrap();
    assert!(within(raw.params.r, 0.243, 0.01) && within(raw.params.b, 2.426, 0.01));
}

#[test]
fn gamma_gamma_reproduces_fader_hardie_lee_2005() {
    let spend = GammaGammaFit::observations(&sample_summary());
    assert_eq!(spend.len(), 946, "repeat customers");
    let fit = GammaGamma::fit(&spend).unwrap();
    let p = fit.params;
    assert!(within(p.p, 6.25, 0.01), "p = {}", p.p);
    assert!(within(p.q, 3.74, 0.01), "q = {}", p.q);
    assert!(within(p.gamma, 15.44, 0.01), "gamma = {}", p.gamma);
}

#[test]
fn the_full_data_set_layout_gives_the_same_fit() {
    // The sample rewritten in the full set's layout: header, then id (the full-set id),
    // date, CDs, dollars.
    let text = std::fs::read_to_string(fixture("CDNOW_sample.txt")).unwrap();
    let mut full = String::from("customer_id date number_of_cds dollar_value\n");
    for line in text.lines() {
        let c: Vec<&str> = line.split_whitespace().collect();
        full.push_str(&format!("{} {} {} {}\n", c[0], c[2], c[3], c[4]));
    }
    let log = read_cdnow(full.as_bytes()).unwrap();
    let summary = calibration_summary(
        log,
        NaiveDate::from_ymd_opt(1997, 9, 30).unwrap(),
        TimeUnit::Weeks,
    )
    .expect("totals fit");
    assert_eq!(summary.len(), 2357);
    assert_eq!(
        summary[0].customer, 4,
        "customers are keyed by the full-set id"
    );
    let fit = BgNbd::fit(&BgNbdFit::observations(&summary)).unwrap();
    let from_sample = BgNbd::fit(&BgNbdFit::observations(&sample_summary())).unwrap();
    assert!((fit.log_likelihood - from_sample.log_likelihood).abs() < 1e-6);
    assert!(within(fit.params.r, from_sample.params.r, 1e-6));
}

#[test]
fn free_or_refunded_repeats_are_left_out_of_the_spend_fit_only() {
    let mut text = std::fs::read_to_string(fixture("CDNOW_sample.txt")).unwrap();
    // Sample ids 2358 (free repeat items) and 2359 (a repeat order refunded the same day).
    text.push_str(" 99991 2358 19970110  1   12.00\n 99991 2358 19970301  1    0.00\n");
    text.push_str(" 99992 2359 19970115  1   20.00\n 99992 2359 19970220  1   15.00\n");
    text.push_str(" 99992 2359 19970220  1  -15.00\n");
    let log = read_cdnow(text.as_bytes()).unwrap();
    let summary = calibration_summary(
        log,
        NaiveDate::from_ymd_opt(1997, 9, 30).unwrap(),
        TimeUnit::Weeks,
    )
    .unwrap();
    assert_eq!(summary.len(), 2359);
    assert_eq!(GammaGammaFit::left_out(&summary), 2);
    let spend = GammaGammaFit::observations(&summary);
    assert_eq!(spend.len(), 946, "the published repeat customers");
    let fit = GammaGamma::fit(&spend).unwrap();
    assert!(within(fit.params.p, 6.25, 0.01) && within(fit.params.q, 3.74, 0.01));
    assert!(within(fit.params.gamma, 15.44, 0.01));
    let purchases = BgNbd::fit(&BgNbdFit::observations(&summary)).unwrap();
    let settings = crm_analytics::clv::ClvSettings {
        horizon: 52.0,
        period: 4.345,
        discount_rate: 0.01,
        margin_rate: 0.3,
    };
    // Their expected spend is the population mean: the value of a repeat customer with
    // their purchase pattern and no spend history.
    let free = summary.iter().find(|r| r.customer == 2358).unwrap();
    let o = BgNbdFit::observations(std::slice::from_ref(free))[0];
    let clv = crm_analytics::clv::predicted_clv(&purchases.params, &fit.params, &o, 0.0, &settings)
        .unwrap();
    // A customer whose own mean equals the population mean is expected to spend exactly
    // that (p(γ + x·m)/(px + q − 1) = m for m = pγ/(q − 1)): the same value.
    let population = fit.params.population_mean().unwrap();
    let same = crm_analytics::clv::predicted_clv(
        &purchases.params,
        &fit.params,
        &o,
        population,
        &settings,
    )
    .unwrap();
    assert!(clv > 0.0 && clv.is_finite());
    assert!((clv - same).abs() < 1e-9 * same, "{clv} vs {same}");
    // A negative mean (refunds) is treated alike.
    let refunded =
        crm_analytics::clv::predicted_clv(&purchases.params, &fit.params, &o, -7.5, &settings)
            .unwrap();
    assert_eq!(refunded, clv);
}
