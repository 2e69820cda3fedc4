//! The SVG timeline and the HTML page holding it, written by hand as strings.
//!
//! Three panels share the time axis: throughput (caller calls/s and dependency requests/s),
//! error rate, and latency percentiles (p50, p99); the breaker's OPEN and HALF_OPEN periods
//! are coloured bands behind all three, and phase boundaries dashed lines.

use std::fmt::Write as _;

use seawall::circuit_breaker::State;

use crate::model::Nanos;
use crate::report::{Summary, human};

/// A line: its legend, its colour, a value per bucket.
type Series<'a> = (&'a str, &'a str, Vec<f64>);

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL: f64 = 140.0;
const GAP: f64 = 40.0;
const TOP: f64 = 50.0;

#[allow(clippy::cast_precision_loss)]
fn x_of(at: Nanos, duration: Nanos) -> f64 {
    LEFT + (WIDTH - LEFT - RIGHT) * (at as f64 / duration.max(1) as f64)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline as an SVG document.
pub fn timeline(s: &Summary) -> String {
    let height = TOP + 3.0 * (PANEL + GAP) - 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{} (seed {})</text>"#,
        escape(&s.title),
        s.seed
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="36" fill="#555">success {:.2} %, p99 {}, amplification {:.3}; bands: breaker OPEN (red), HALF_OPEN (amber)</text>"##,
        s.success_rate(),
        human(s.latency[1]),
        s.amplification
    );
    bands(&mut out, s, height);
    phases(&mut out, s, height);
    #[allow(clippy::cast_precision_loss)]
    let per_sec = 1e9 / s.bucket as f64;
    #[allow(clippy::cast_precision_loss)]
    let series = |f: &dyn Fn(&crate::report::Bucket) -> f64| -> Vec<f64> {
        s.buckets.iter().map(f).collect()
    };
    #[allow(clippy::cast_precision_loss)]
    let panels: [(&str, Vec<Series<'_>>); 3] = [
        (
            "throughput (per second)",
            vec![
                ("calls", "#1f77b4", series(&|b| b.calls as f64 * per_sec)),
                (
                    "dependency requests",
                    "#9467bd",
                    series(&|b| b.requests as f64 * per_sec),
                ),
            ],
        ),
        (
            "error rate (%)",
            vec![(
                "failed calls",
                "#d62728",
                series(&|b| {
                    if b.calls == 0 {
                        0.0
                    } else {
                        100.0 * (b.calls - b.ok) as f64 / b.calls as f64
                    }
                }),
            )],
        ),
        (
            "latency (ms)",
            vec![
                ("p50", "#2ca02c", series(&|b| b.p50 as f64 / 1e6)),
                ("p99", "#ff7f0e", series(&|b| b.p99 as f64 / 1e6)),
            ],
        ),
    ];
    for (index, (title, lines)) in panels.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let top = TOP + index as f64 * (PANEL + GAP);
        panel(&mut out, s, top, title, lines);
    }
    out.push_str("</svg>\n");
    out
}

fn bands(out: &mut String, s: &Summary, height: f64) {
    let mut open: Option<(Nanos, State)> = None;
    let mut spans = Vec::new();
    for &(at, _, to) in &s.transitions {
        if let Some((since, state)) = open.take() {
            spans.push((since, at, state));
        }
        if matches!(to, State::Open | State::HalfOpen | State::ForcedOpen) {
            open = Some((at, to));
        }
    }
    if let Some((since, state)) = open {
        spans.push((since, s.duration.max(since), state));
    }
    for (from, to, state) in spans {
        let (x0, x1) = (x_of(from, s.duration), x_of(to, s.duration));
        let colour = if state == State::HalfOpen {
            "#ffbf00"
        } else {
            "#d62728"
        };
        let _ = writeln!(
            out,
            r#"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="{colour}" fill-opacity="0.18"/>"#,
            (x1 - x0).max(0.5),
            height - TOP - GAP + 10.0
        );
    }
}

fn phases(out: &mut String, s: &Summary, height: f64) {
    for (name, start, _) in &s.phases {
        let x = x_of(*start, s.duration);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
            height - GAP + 10.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#555">{}</text>"##,
            x + 3.0,
            TOP + 12.0,
            escape(name)
        );
    }
}

fn panel(out: &mut String, s: &Summary, top: f64, title: &str, lines: &[Series<'_>]) {
    let max = lines
        .iter()
        .flat_map(|(_, _, values)| values.iter().copied())
        .fold(0.0_f64, f64::max);
    let max = nice_max(max);
    let bottom = top + PANEL;
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{PANEL}" fill="none" stroke="#ccc"/>"##,
        WIDTH - LEFT - RIGHT
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{title}</text>"#,
        top - 6.0
    );
    for tick in 0..=5 {
        let value = max * f64::from(tick) / 5.0;
        let y = bottom - PANEL * f64::from(tick) / 5.0;
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 4.0,
            y + 4.0,
            short(value)
        );
    }
    let mut legend_x = WIDTH - RIGHT - 10.0;
    for (name, colour, values) in lines.iter().rev() {
        let _ = writeln!(
            out,
            r#"<text x="{legend_x:.1}" y="{:.1}" text-anchor="end" fill="{colour}">{name}</text>"#,
            top - 6.0
        );
        #[allow(clippy::cast_precision_loss)]
        let skip = 8.0 * name.chars().count() as f64 + 16.0;
        legend_x -= skip;
        let mut path = String::new();
        for (i, value) in values.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let x = x_of((i as u64 * s.bucket) + s.bucket / 2, s.duration);
            let y = bottom - PANEL * (value / max).min(1.0);
            let _ = write!(path, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
        }
        let _ = writeln!(
            out,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#555">0</text><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
        bottom + 14.0,
        WIDTH - RIGHT,
        bottom + 14.0,
        human(s.duration)
    );
}

fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if max <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn short(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// A self-contained HTML page: the report (as preformatted Markdown) and the SVG inline.
pub fn html(s: &Summary, markdown: &str, svg: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}}</style>\n</head>\n<body>\n\
<h1>{title}</h1>\n{svg}<pre>{report}</pre>\n</body>\n</html>\n",
        title = escape(&s.title),
        report = escape(markdown),
    )
}
