//! The demo's results as an SVG chart, written by hand (no plotting dependency): two panels,
//! success rate and p99 order latency, with one group of bars per scenario and one bar per
//! payment port in each group.

use std::fmt::Write as _;

/// One bar pair's data: a run of one scenario with one port.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bar {
    /// The scenario, e.g. `healthy PG` (the group).
    pub(crate) scenario: String,
    /// The payment port, e.g. `naive` (the colour).
    pub(crate) port: String,
    /// Orders PAID, in percent of orders placed.
    pub(crate) success_percent: f64,
    /// The 99th percentile of what shoppers waited, in seconds.
    pub(crate) p99_seconds: f64,
}

const WIDTH: f64 = 920.0;
const HEIGHT: f64 = 380.0;
const PANEL_WIDTH: f64 = 400.0;
const PANEL_HEIGHT: f64 = 240.0;
const TOP: f64 = 60.0;
const COLOURS: [&str; 4] = ["#2b6cb0", "#a0aec0", "#dd6b20", "#38a169"];

/// The chart of `bars` (in the order given; scenarios and ports in order of first
/// appearance), `title` on top.
pub(crate) fn svg(title: &str, bars: &[Bar]) -> String {
    let scenarios = distinct(bars.iter().map(|b| b.scenario.as_str()));
    let ports = distinct(bars.iter().map(|b| b.port.as_str()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let latency_max = bars
        .iter()
        .map(|b| b.p99_seconds)
        .fold(1.0_f64, f64::max)
        .ceil();
    let panels = [
        ("success rate (orders PAID, %)", 100.0, 60.0),
        (
            "order latency p99 (s)",
            latency_max,
            60.0 + PANEL_WIDTH + 60.0,
        ),
    ];
    for (i, (label, max, left)) in panels.into_iter().enumerate() {
        axes(&mut out, label, max, left);
        let group_width = PANEL_WIDTH / scenarios.len().max(1) as f64;
        let bar_width = (group_width * 0.7) / ports.len().max(1) as f64;
        for (g, scenario) in scenarios.iter().enumerate() {
            let group_left = left + g as f64 * group_width + group_width * 0.15;
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                group_left + group_width * 0.35,
                TOP + PANEL_HEIGHT + 16.0,
                escape(scenario)
            );
            for (p, port) in ports.iter().enumerate() {
                let Some(bar) = bars
                    .iter()
                    .find(|b| &b.scenario == scenario && &b.port == port)
                else {
                    continue;
                };
                let value = if i == 0 {
                    bar.success_percent
                } else {
                    bar.p99_seconds
                };
                let height = (value / max).clamp(0.0, 1.0) * PANEL_HEIGHT;
                let x = group_left + p as f64 * bar_width;
                let shown = if i == 0 {
                    format!("{value:.0} %")
                } else {
                    format!("{value:.2} s")
                };
                let _ = writeln!(
                    out,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="{}"><title>{} · {}: {shown}</title></rect>"#,
                    TOP + PANEL_HEIGHT - height,
                    bar_width - 2.0,
                    COLOURS[p % COLOURS.len()],
                    escape(scenario),
                    escape(port),
                );
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{shown}</text>"#,
                    x + (bar_width - 2.0) / 2.0,
                    TOP + PANEL_HEIGHT - height - 3.0
                );
            }
        }
    }
    legend(&mut out, &ports);
    out.push_str("</svg>\n");
    out
}

/// A panel's frame: its title, the baseline, and ticks at 0, ½ and the maximum.
fn axes(out: &mut String, label: &str, max: f64, left: f64) {
    let bottom = TOP + PANEL_HEIGHT;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text>"#,
        left + PANEL_WIDTH / 2.0,
        TOP - 12.0,
        escape(label)
    );
    let _ = writeln!(
        out,
        r##"<line x1="{left:.1}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#333333"/>"##,
        left + PANEL_WIDTH
    );
    for fraction in [0.0, 0.5, 1.0] {
        let y = bottom - fraction * PANEL_HEIGHT;
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"##,
            left + PANEL_WIDTH,
            left - 4.0,
            y + 4.0,
            trim(fraction * max)
        );
    }
}

fn legend(out: &mut String, ports: &[&str]) {
    for (p, port) in ports.iter().enumerate() {
        let x = 60.0 + p as f64 * 200.0;
        let y = HEIGHT - 24.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
            y - 10.0,
            COLOURS[p % COLOURS.len()],
            x + 18.0,
            escape(port)
        );
    }
}

/// A tick value without a needless fraction.
fn trim(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The values in order of first appearance, each once.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// Escapes text for an SVG (XML) text node or attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(scenario: &str, port: &str, success_percent: f64, p99_seconds: f64) -> Bar {
        Bar {
            scenario: scenario.to_owned(),
            port: port.to_owned(),
            success_percent,
            p99_seconds,
        }
    }

    fn heights(svg: &str, colour: &str) -> Vec<f64> {
        svg.lines()
            .filter(|l| l.starts_with("<rect x=") && l.contains(&format!("fill=\"{colour}\">")))
            .map(|l| {
                let start = l.find("height=\"").unwrap() + 8;
                let end = start + l[start..].find('"').unwrap();
                l[start..end].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn every_run_gets_one_bar_per_panel_with_heights_proportional_to_its_values() {
        let bars = [
            bar("healthy PG", "seawall", 70.0, 1.5),
            bar("healthy PG", "naive", 35.0, 3.0),
            bar("PG down", "seawall", 30.0, 2.0),
            bar("PG down", "naive", 30.0, 6.0),
        ];
        let chart = svg("demo", &bars);
        assert!(chart.starts_with("<svg "));
        assert!(chart.trim_end().ends_with("</svg>"));
        let seawall = heights(&chart, COLOURS[0]);
        let naive = heights(&chart, COLOURS[1]);
        // Success panel first (of 100 %), then latency (of the 6 s maximum).
        assert_eq!(seawall, [168.0, 72.0, 60.0, 80.0]);
        assert_eq!(naive, [84.0, 72.0, 120.0, 240.0]);
    }

    #[test]
    fn labels_are_escaped_so_the_chart_stays_well_formed() {
        let chart = svg(
            "a <b> & \"c\"",
            &[bar("slow PG (2-4 s) <x>", "naive", 50.0, 1.0)],
        );
        assert!(chart.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(chart.contains("slow PG (2-4 s) &lt;x&gt;"));
        assert!(!chart.contains("<x>"));
    }

    #[test]
    fn tick_labels_drop_a_needless_fraction() {
        assert_eq!(trim(50.0), "50");
        assert_eq!(trim(2.5), "2.5");
    }
}
