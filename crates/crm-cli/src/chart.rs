//! The reports' charts, as SVG text (plotters' SVG backend): each with a title, axis labels
//! with units and a legend or a note saying how to read it, so a file is readable without
//! the tool.

use crm::chrono::NaiveDate;
use crm::rust_decimal::prelude::ToPrimitive;
use crm::rust_decimal::Decimal;
use crm::Currency;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// The size of every chart, in pixels.
const SIZE: (u32, u32) = (900, 600);

/// A drawing error as text.
fn err<E: std::fmt::Display>(e: E) -> String {
    format!("drawing the chart: {e}")
}

/// A chart with two numeric axes, drawing into SVG text.
type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart as SVG text: a white page of [`SIZE`] with `title` on top and room for the axis
/// labels, axes over `x` and `y`, and `draw` for the rest.
fn page(
    title: impl AsRef<str>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    draw: impl FnOnce(&mut Chart<'_>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title.as_ref(), ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        draw(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The series' legend in a framed box at `position`.
fn legend(chart: &mut Chart<'_>, position: SeriesLabelPosition) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// The ABC Pareto curve: cumulative share of revenue against share of customers, largest
/// first, with the A/B and B/C cuts. `revenue` is sorted largest first; `cuts` are how many
/// customers are in A and in B.
pub fn pareto(
    revenue: &[Decimal],
    cuts: [usize; 2],
    as_of: NaiveDate,
    currency: Currency,
) -> Result<String, String> {
    let total: f64 = revenue.iter().filter_map(|r| r.to_f64()).sum();
    if revenue.is_empty() || total <= 0.0 {
        return Err(format!("no revenue in {currency} to draw"));
    }
    let n = revenue.len() as f64;
    let mut points = vec![(0.0, 0.0)];
    let mut running = 0.0;
    for (i, r) in revenue.iter().enumerate() {
        running += r.to_f64().unwrap_or(0.0);
        points.push(((i + 1) as f64 / n * 100.0, running / total * 100.0));
    }
    page(
        format!("ABC analysis: revenue ({currency}) by customer, up to {as_of}"),
        0f64..100f64,
        0f64..100f64,
        |chart| {
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc("customers, largest revenue first (% of customers)")
                .y_desc("cumulative revenue (% of total)")
                .draw()
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
                .map_err(err)?
                .label(format!("cumulative revenue of {} customers", revenue.len()))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            let a = cuts[0] as f64 / n * 100.0;
            let b = (cuts[0] + cuts[1]) as f64 / n * 100.0;
            for (x, label, color) in [(a, "A | B", RED), (b, "B | C", MAGENTA)] {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(x, 0.0), (x, 100.0)],
                        6,
                        4,
                        color.stroke_width(1),
                    ))
                    .map_err(err)?
                    .label(format!("{label} cut at {x:.1}% of customers"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            legend(chart, SeriesLabelPosition::LowerRight)?;
            Ok(())
        },
    )
}

/// The RFM grid: recency score by frequency score, each cell shaded by how many customers
/// it holds and labelled with their count and revenue. `cells` holds each customer's
/// (r, f, monetary).
pub fn rfm_grid(
    cells: &[(u8, u8, Decimal)],
    as_of: NaiveDate,
    currency: Currency,
) -> Result<String, String> {
    if cells.is_empty() {
        return Err(format!("no purchases in {currency} to draw"));
    }
    let mut grid = [[(0usize, Decimal::ZERO); 5]; 5];
    for (r, f, m) in cells {
        let (ri, fi) = (
            usize::from(r.clamp(&1, &5) - 1),
            usize::from(f.clamp(&1, &5) - 1),
        );
        grid[ri][fi].0 += 1;
        grid[ri][fi].1 = grid[ri][fi].1.saturating_add(*m);
    }
    let most = grid.iter().flatten().map(|c| c.0).max().unwrap_or(1).max(1);
    page(
        format!(
            "RFM grid, {} customers up to {as_of}: darker cells hold more customers",
            cells.len()
        ),
        0.5f64..5.5f64,
        0.5f64..5.5f64,
        |chart| {
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .disable_mesh()
                .x_labels(5)
                .y_labels(5)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .x_desc("frequency score (5 = most purchases)")
                .y_desc("recency score (5 = bought most recently)")
                .draw()
                .map_err(err)?;
            for (ri, row) in grid.iter().enumerate() {
                for (fi, (count, revenue)) in row.iter().enumerate() {
                    let (x, y) = (fi as f64 + 1.0, ri as f64 + 1.0);
                    let shade = *count as f64 / most as f64;
                    let level = (235.0 - 180.0 * shade) as u8;
                    let fill = RGBColor(level, level, 255);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x - 0.48, y - 0.48), (x + 0.48, y + 0.48)],
                            fill.filled(),
                        )))
                        .map_err(err)?;
                    let ink = if shade > 0.6 { WHITE } else { BLACK };
                    let style = ("sans-serif", 15).into_font().color(&ink);
                    chart
                        .draw_series([
                            Text::new(
                                format!("{count} customers"),
                                (x - 0.4, y + 0.2),
                                style.clone(),
                            ),
                            Text::new(
                                format!("{} {currency}", revenue.round()),
                                (x - 0.4, y - 0.05),
                                style,
                            ),
                        ])
                        .map_err(err)?;
                }
            }
            Ok(())
        },
    )
}

/// The purchase model's calibration plot: per number of repeat purchases in the
/// calibration period (7 stands for 7 or more), the mean actual and the mean expected
/// repeat purchases after it. `points` holds (repeat purchases, customers, actual,
/// expected).
pub fn calibration(
    points: &[(u32, u32, f64, f64)],
    end: NaiveDate,
    holdout_end: NaiveDate,
) -> Result<String, String> {
    if points.is_empty() {
        return Err("no customers to draw".into());
    }
    let top = points
        .iter()
        .flat_map(|p| [p.2, p.3])
        .fold(1.0f64, f64::max)
        * 1.15;
    page(
        format!("BG/NBD fit to {end}, checked on purchases to {holdout_end}"),
        -0.5f64..7.5f64,
        0f64..top,
        |chart| {
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_labels(8)
                .x_label_formatter(&|x| {
                    let k = x.round();
                    let n = points
                        .iter()
                        .find(|p| f64::from(p.0) == k)
                        .map_or(0, |p| p.1);
                    let plus = if k >= 7.0 { "+" } else { "" };
                    format!("{k:.0}{plus} (n={n})")
                })
                .x_desc("repeat purchases in the calibration period (count; n: customers)")
                .y_desc("mean repeat purchases after it (count per customer)")
                .draw()
                .map_err(err)?;
            let series = [
                (
                    "actual",
                    BLUE,
                    points
                        .iter()
                        .map(|p| (f64::from(p.0), p.2))
                        .collect::<Vec<_>>(),
                ),
                (
                    "expected by the model",
                    RED,
                    points.iter().map(|p| (f64::from(p.0), p.3)).collect(),
                ),
            ];
            for (label, color, line) in series {
                chart
                    .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                chart
                    .draw_series(line.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                    .map_err(err)?;
            }
            legend(chart, SeriesLabelPosition::UpperLeft)?;
            Ok(())
        },
    )
}

/// One bar of the scorecard chart.
pub struct Bar {
    /// The KPI rule's key.
    pub rule: String,
    /// The person, as shown.
    pub person: String,
    /// Share of measured cases within the target, 0 to 1.
    pub compliance: f64,
    /// The rule's compliance goal, 0 to 1.
    pub goal: f64,
}

/// Staff scorecards: compliance per person, one colour per rule, with each rule's goal as
/// a dashed line over its bars.
pub fn scorecard(bars: &[Bar]) -> Result<String, String> {
    if bars.is_empty() {
        return Err("no measured cases in the last 90 days to draw".into());
    }
    let palette = [
        RGBColor(60, 100, 180),
        RGBColor(235, 140, 40),
        RGBColor(80, 160, 90),
        RGBColor(150, 90, 170),
        RGBColor(200, 70, 70),
        RGBColor(90, 170, 190),
    ];
    let mut rules: Vec<&str> = bars.iter().map(|b| b.rule.as_str()).collect();
    rules.dedup();
    let labels: Vec<String> = bars.iter().map(|b| b.person.clone()).collect();
    // Room above 100% for the legend.
    page(
        "Service levels per person, cases opened in the last 90 days",
        -0.5f64..(bars.len() as f64 - 0.5),
        0f64..125f64,
        |chart| {
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .disable_x_mesh()
                .x_labels(bars.len())
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        labels.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .x_desc("person")
                .y_desc("compliance (% of measured cases within the target)")
                .draw()
                .map_err(err)?;
            for (k, rule) in rules.iter().enumerate() {
                let color = palette[k % palette.len()];
                let mine: Vec<(usize, &Bar)> = bars
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.rule == *rule)
                    .collect();
                chart
                    .draw_series(mine.iter().map(|(i, b)| {
                        let x = *i as f64;
                        Rectangle::new(
                            [(x - 0.35, 0.0), (x + 0.35, b.compliance * 100.0)],
                            color.filled(),
                        )
                    }))
                    .map_err(err)?
                    .label(format!("{rule} (dashed: its goal)"))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                    });
                for (i, b) in &mine {
                    let x = *i as f64;
                    chart
                        .draw_series(DashedLineSeries::new(
                            vec![(x - 0.5, b.goal * 100.0), (x + 0.5, b.goal * 100.0)],
                            5,
                            3,
                            BLACK.stroke_width(2),
                        ))
                        .map_err(err)?;
                }
            }
            legend(chart, SeriesLabelPosition::UpperRight)?;
            Ok(())
        },
    )
}

/// P(alive) against weeks since the last purchase, one point per customer, coloured by
/// how many repeat purchases they made. `points` holds (repeat purchases, weeks since the
/// last purchase, P(alive)).
pub fn alive(points: &[(u32, f64, f64)], as_of: NaiveDate) -> Result<String, String> {
    if points.is_empty() {
        return Err("no customers to draw".into());
    }
    let right = points.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.05;
    let groups: [(&str, u32, u32, RGBColor); 4] = [
        ("no repeat purchase", 0, 0, RGBColor(150, 150, 150)),
        ("1-2 repeat purchases", 1, 2, RGBColor(90, 170, 190)),
        ("3-5 repeat purchases", 3, 5, RGBColor(60, 100, 180)),
        ("6 or more", 6, u32::MAX, RGBColor(200, 70, 70)),
    ];
    page(
        format!("P(alive) by weeks since the last purchase, as of {as_of} (BG/NBD)"),
        0f64..right,
        0f64..1.05f64,
        |chart| {
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc("weeks since the last purchase")
                .y_desc("probability the customer is still active")
                .draw()
                .map_err(err)?;
            for (label, low, high, color) in groups {
                let mine: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.0 >= low && p.0 <= high)
                    .map(|p| (p.1, p.2))
                    .collect();
                let n = mine.len();
                chart
                    .draw_series(mine.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                    .map_err(err)?
                    .label(format!("{label} ({n})"))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            }
            legend(chart, SeriesLabelPosition::MiddleRight)?;
            Ok(())
        },
    )
}
