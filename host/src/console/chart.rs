//! Line charts of the last hour as inline SVG, drawn by the host: no script, no library,
//! colours from the stylesheet (`.series-N`), so they render under a strict CSP.

use crate::history::{Series, MINUTES};
use maud::{html, Markup};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

pub struct Line<'a> {
    pub name: String,
    pub values: &'a Series,
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * base)
}

fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The SVG path of one series: gaps (minutes without a value) break the line.
fn path(values: &Series, top: f64) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w / (MINUTES - 1) as f64;
    let mut d = String::new();
    let mut pen_down = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let x = LEFT + i as f64 * step;
                let y = TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
                d.push_str(&format!(
                    "{}{x:.1},{y:.1} ",
                    if pen_down { "L" } else { "M" }
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

/// A chart titled `title` whose values are in `unit`, one line per series.
pub fn lines(id: &str, title: &str, unit: &str, series: &[Line<'_>]) -> Markup {
    let peak = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let top = nice_ceiling(peak);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let has_data = series.iter().any(|s| s.values.iter().any(Option::is_some));
    html! {
        figure.chart id=(id) {
            figcaption { (title) " " span.unit { "(" (unit) ")" } }
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                role="img" aria-label=(title) {
                @for k in 0..=4 {
                    @let y = TOP + plot_h * f64::from(k) / 4.0;
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y) y2=(y) {}
                    text.axis x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" {
                        (label(top * f64::from(4 - k) / 4.0))
                    }
                }
                text.axis x=(LEFT) y=(HEIGHT - 6.0) { "−60 min" }
                text.axis x=(LEFT + (WIDTH - LEFT - RIGHT) / 2.0) y=(HEIGHT - 6.0)
                    text-anchor="middle" { "−30 min" }
                text.axis x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) text-anchor="end" { "now" }
                @for (n, s) in series.iter().enumerate() {
                    path class=(format!("line series-{}", n % 6)) d=(path(s.values, top)) {}
                }
                @if !has_data {
                    text.axis x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" {
                        "no data in the last hour"
                    }
                }
            }
            ul.legend {
                @for (n, s) in series.iter().enumerate() {
                    li { span class=(format!("swatch series-{}", n % 6)) {} (s.name) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_and_paths() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        let mut v = vec![None; MINUTES];
        v[0] = Some(0.0);
        v[1] = Some(10.0);
        v[3] = Some(5.0);
        let d = path(&v, 10.0);
        // Two segments: the gap at minute 2 lifts the pen.
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
        assert!(
            d.contains(&format!("{:.1}", TOP)),
            "the peak touches the top: {d}"
        );
    }
}
