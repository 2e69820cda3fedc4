//! seawall-lab: see what a policy will do before production.
//!
//! A scenario file describes the load, a dependency per phase (latency, errors, capacity,
//! outages) and the policy as the registry's own configuration document. The lab drives the
//! **real seawall decorators**, built by the registry from that document, against a simulated
//! dependency in tokio's paused time: an hour of traffic runs in seconds, and the same file
//! and seed give byte-identical reports.
//!
//! It is not a load generator for a running service (nothing leaves the process), and the
//! dependency is a model (`model`): a FIFO queue in front of N workers, with the latency,
//! errors and outages the scenario describes. The command line (`seawall-lab run`, `sweep`,
//! `docs`) is in [`cli`]; the scenario format in [`scenario`] and the crate's README.
//!
//! # Examples
//!
//! ```no_run
//! let output = seawall_lab::run_file("crates/seawall-lab/scenarios/3am-outage-breaker.toml".as_ref(), None)?;
//! println!("{}", output.markdown);
//! std::fs::write("timeline.svg", &output.svg)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![doc(test(attr(deny(warnings, rust_2018_idioms))))]

pub mod cli;
pub mod docs;
pub mod model;
pub mod policy;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod svg;
pub mod sweep;

use std::path::Path;

use seawall::ConfigError;

use crate::report::Summary;
use crate::scenario::{Loaded, Origin, Scenario};

/// What one run produces.
#[derive(Clone, Debug)]
pub struct Output {
    /// The numbers.
    pub summary: Summary,
    /// The report as Markdown.
    pub markdown: String,
    /// The timeline.
    pub svg: String,
    /// A self-contained HTML page with the report and the timeline.
    pub html: String,
}

/// Reads and checks a scenario file; `seed` overrides the file's.
///
/// # Errors
///
/// An unreadable file (key `scenario`) or a broken rule, named by its key.
pub fn load_file(path: &Path, seed: Option<u64>) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| ConfigError::new("scenario", format!("{}: {err}", path.display())))?;
    let mut scenario = Scenario::parse(&text)?;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    scenario.load(Origin { dir })
}

/// Runs a loaded scenario and renders its report.
///
/// # Errors
///
/// A policy value the registries refuse.
pub fn run(loaded: &Loaded) -> Result<Output, ConfigError> {
    let result = sim::run(loaded)?;
    let summary = Summary::new(loaded, &result);
    let markdown = report::markdown(&summary, loaded);
    let svg = svg::timeline(&summary);
    let html = svg::html(&summary, &markdown, &svg);
    Ok(Output {
        summary,
        markdown,
        svg,
        html,
    })
}

/// Reads, runs and reports a scenario file.
///
/// # Errors
///
/// As [`load_file`] and [`run`].
pub fn run_file(path: &Path, seed: Option<u64>) -> Result<Output, ConfigError> {
    run(&load_file(path, seed)?)
}

/// Shrinks (or stretches) every phase's duration by `factor`, e.g. to run a shipped scenario
/// briefly in a test.
pub fn scale_durations(loaded: &mut Loaded, factor: f64) {
    for phase in &mut loaded.phases {
        phase.duration.0 = phase.duration.0.mul_f64(factor);
    }
}
