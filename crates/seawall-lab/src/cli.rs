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
