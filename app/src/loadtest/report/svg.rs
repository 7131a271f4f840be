//! Minimal inline-SVG line charts: axes, grid, legend, one polyline per series. No scripts, no
//! external assets, so the report opens anywhere.
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;

/// One line on a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub dashed: bool,
    /// `(x, y)`: x in seconds from the start.
    pub points: Vec<(f64, f64)>,
}

/// A chart with the given element `id`, title and y-axis unit.
pub fn line_chart(id: &str, title: &str, unit: &str, series: &[Series<'_>]) -> String {
    let x_max = max_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.0))).max(1.0);
    let y_max = nice_ceiling(max_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.1))));
    let sx = |x: f64| LEFT + x / x_max * (WIDTH - LEFT - RIGHT);
    let sy = |y: f64| HEIGHT - BOTTOM - y / y_max * (HEIGHT - TOP - BOTTOM);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">"##
    );
    let _ = write!(out, r##"<text x="{LEFT}" y="20" class="title">{title}</text>"##);
    for i in 0..=4 {
        let y = y_max * f64::from(i) / 4.0;
        let py = sy(y);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{} {unit}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            format_tick(y)
        );
    }
    let x_step = nice_ceiling(x_max / 6.0);
    let mut x = 0.0;
    while x <= x_max + f64::EPSILON {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}s</text>"##,
            sx(x),
            HEIGHT - BOTTOM + 16.0,
            format_tick(x)
        );
        x += x_step;
    }
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<polyline class="series" data-series="{name}" fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"##,
            points.join(" "),
            name = s.name,
            color = s.color,
        );
        let lx = LEFT + 140.0 * i as f64;
        let ly = HEIGHT - 8.0;
        let _ = write!(
            out,
            r##"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"{dash}/><text x="{}" y="{}" class="legend">{}</text>"##,
            lx + 18.0,
            s.color,
            lx + 24.0,
            ly + 4.0,
            s.name
        );
    }
    out.push_str("</svg>");
    out
}

fn max_of(values: impl Iterator<Item = f64>) -> f64 {
    values.filter(|v| v.is_finite()).fold(0.0, f64::max)
}

/// The smallest 1/2/5 x 10^n at or above `v` (at least 1), so grid lines fall on round numbers.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn format_tick(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_lands_on_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
    }

    #[test]
    fn chart_draws_one_polyline_per_series() {
        let svg = line_chart(
            "c",
            "Latency",
            "ms",
            &[
                Series {
                    name: "p50",
                    color: "#111",
                    dashed: false,
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                },
                Series {
                    name: "p99",
                    color: "#222",
                    dashed: true,
                    points: vec![(0.0, 3.0), (1.0, 9.0)],
                },
            ],
        );
        assert!(svg.starts_with(r#"<svg id="c""#));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(r#"data-series="p99""#));
        // y axis tops out at 10 ms: the p99 point (1 s, 9 ms) sits just under the top.
        assert!(svg.contains("10 ms"));
    }
}
