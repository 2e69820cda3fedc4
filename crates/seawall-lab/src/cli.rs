//! The command line: `seawall-lab run`, `sweep` and `docs`.

#![allow(clippy::print_stdout)] // a command-line report

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// Simulate seawall policies against described outages, in virtual time.
#[derive(Debug, Parser)]
#[command(name = "seawall-lab", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: print the report, write `<stem>.svg` and `<stem>.html`.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// The directory the SVG and HTML are written to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Run a grid over named parameters; print a table, the best point and the 1.3×P95 check.
    Sweep {
        /// The scenario file (TOML, with the policy document embedded).
        scenario: PathBuf,
        /// `section.instance.key=v1,v2,…`, e.g. `circuitbreaker.pg.failureRateThreshold=30,50,70`
        /// (added to the scenario's `[sweep.params]`).
        #[arg(long = "param")]
        params: Vec<String>,
        /// The objective's bound on the caller's P99 latency (e.g. `2s`).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_p99: Option<std::time::Duration>,
        /// The objective's bound on amplification (e.g. `1.1`).
        #[arg(long)]
        max_amplification: Option<f64>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Regenerate `docs/lab/`: every shipped scenario's report, its sweep if it has one, and
    /// the comparison with the commerce demo.
    Docs {
        /// The scenarios to run.
        #[arg(long, default_value = "crates/seawall-lab/scenarios")]
        scenarios: PathBuf,
        /// Where the reports go.
        #[arg(long, default_value = "docs/lab")]
        out: PathBuf,
    },
}

/// Runs a parsed command line.
///
/// # Errors
///
/// A message for the user: a bad scenario (naming the key) or a file that cannot be written.
pub fn dispatch(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Run {
            scenario,
            seed,
            out,
        } => run(&scenario, seed, &out),
        Command::Sweep {
            scenario,
            params,
            max_p99,
            max_amplification,
            seed,
        } => {
            let loaded = crate::load_file(&scenario, seed).map_err(|e| e.to_string())?;
            let extra = params
                .iter()
                .map(|p| crate::sweep::parse_param(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let markdown = sweep_markdown(&loaded, extra, max_p99, max_amplification)?;
            print!("{markdown}");
            Ok(())
        }
        Command::Docs { scenarios, out } => crate::docs::generate(&scenarios, &out),
    }
}

fn run(scenario: &Path, seed: Option<u64>, out: &Path) -> Result<(), String> {
    let output = crate::run_file(scenario, seed).map_err(|err| err.to_string())?;
    print!("{}", output.markdown);
    let stem = stem(scenario);
    let written = write_outputs(out, &stem, &output)?;
    println!("\nWrote {written}.");
    Ok(())
}

/// The file name of a scenario without its extension.
pub fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || "scenario".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// Writes `<stem>.svg` and `<stem>.html` into `dir`; returns what was written.
///
/// # Errors
///
/// A directory or file that cannot be written.
pub fn write_outputs(dir: &Path, stem: &str, output: &crate::Output) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let svg = dir.join(format!("{stem}.svg"));
    let html = dir.join(format!("{stem}.html"));
    std::fs::write(&svg, &output.svg).map_err(|err| format!("{}: {err}", svg.display()))?;
    std::fs::write(&html, &output.html).map_err(|err| format!("{}: {err}", html.display()))?;
    Ok(format!("{} and {}", svg.display(), html.display()))
}

/// Runs a scenario's sweep (its `[sweep]` table plus `extra`), bounds from the command line
/// overriding the table's, and renders it.
///
/// # Errors
///
/// A malformed parameter or a value the document refuses.
pub fn sweep_markdown(
    loaded: &crate::scenario::Loaded,
    extra: Vec<crate::sweep::Param>,
    max_p99: Option<std::time::Duration>,
    max_amplification: Option<f64>,
) -> Result<String, String> {
    let params = crate::sweep::params_of(loaded, extra).map_err(|e| e.to_string())?;
    if params.is_empty() {
        return Err("nothing to sweep: give --param or a [sweep.params] table".to_owned());
    }
    let table = loaded.scenario.sweep.clone().unwrap_or_default();
    let objective = crate::sweep::Objective {
        max_p99: max_p99.or(table.max_p99.map(|d| d.0)),
        max_amplification: max_amplification.or(table.max_amplification),
    };
    let report = crate::sweep::sweep(loaded, params, objective).map_err(|e| e.to_string())?;
    let title = loaded
        .scenario
        .name
        .clone()
        .unwrap_or_else(|| "scenario".to_owned());
    Ok(crate::sweep::markdown(&report, &title))
}
