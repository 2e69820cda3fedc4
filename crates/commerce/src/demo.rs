//! The `demo` command (filled in below).

/// Arguments of the demo.
#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    /// Card orders per run.
    #[arg(long, default_value_t = 100)]
    pub orders: usize,
    /// Where to write the Markdown table.
    #[arg(long, default_value = "demo-results.md")]
    pub out: std::path::PathBuf,
}

/// Runs the demo.
///
/// # Errors
///
/// Any failure to start a run.
pub async fn run(_args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
