//! `public-api <package> [--check]`: writes, or checks, the listing of a workspace package's
//! public API in `<package dir>/public-api.txt` (`crates/seawall/public-api.txt`).
//!
//! Run it as `cargo run -p public-api-listing -- seawall` after changing the API, and commit
//! the listing with the change; CI runs it with `--check`, which fails with a diff when the
//! checked-in listing is stale.

mod cargo;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

const USAGE: &str = "\
usage: cargo run -p public-api-listing -- <package> [--check]

Writes <package dir>/public-api.txt, the listing of the package's public API (one item per
line, sorted), from rustdoc's JSON output with every feature enabled.

  --check    compare instead of writing; exit 1 with a diff when the listing is stale
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    package: String,
    check: bool,
}

/// Parses the arguments after the program name; `Ok(None)` asks for the usage text.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut package, mut check) = (None, false);
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--check" => check = true,
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option `{flag}`\n\n{USAGE}"));
            }
            _ if package.is_some() => {
                return Err(format!("more than one package given\n\n{USAGE}"));
            }
            _ => package = Some(arg),
        }
    }
    let package = package.ok_or_else(|| format!("no package given\n\n{USAGE}"))?;
    Ok(Some(Args { package, check }))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    let package = cargo::package(&args.package)?;
    let json_path = cargo::rustdoc_json(&package)?;
    let json = fs::read_to_string(&json_path)
        .map_err(|err| format!("could not read {}: {err}", json_path.display()))?;
    let doc: Value = serde_json::from_str(&json)
        .map_err(|err| format!("{} is not JSON: {err}", json_path.display()))?;
    let lines = public_api_listing::listing(&doc).map_err(|err| err.to_string())?;

    let output = package.dir.join("public-api.txt");
    let shown = output
        .strip_prefix(&package.workspace_root)
        .unwrap_or(&output)
        .display()
        .to_string();
    let regenerate = format!("cargo run -p public-api-listing -- {}", args.package);
    if args.check {
        check(&output, &shown, &lines, &regenerate)
    } else {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        fs::write(&output, text).map_err(|err| format!("could not write {shown}: {err}"))?;
        println!("wrote {shown} ({} lines)", lines.len());
        Ok(ExitCode::SUCCESS)
    }
}

/// Compares the checked-in listing with `lines`; a stale one fails with a diff.
fn check(
    output: &Path,
    shown: &str,
    lines: &[String],
    regenerate: &str,
) -> Result<ExitCode, String> {
    let checked_in: Vec<String> = match fs::read_to_string(output) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(err) if err.kind() == ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(format!("could not read {shown}: {err}")),
    };
    let diff = public_api_listing::unified_diff(
        &checked_in,
        lines,
        &format!("{shown} (checked in)"),
        &format!("{shown} (from the code)"),
    );
    if diff.is_empty() {
        println!("{shown} is current ({} lines)", lines.len());
        return Ok(ExitCode::SUCCESS);
    }
    print!("{diff}");
    eprintln!(
        "\n{shown} is stale: the public API changed. Regenerate it with\n\n    {regenerate}\n\nreview the diff above and commit the listing with the change."
    );
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::{Args, parse_args};

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn a_package_and_check_flag_parse_in_either_order() {
        let expected = Some(Args {
            package: "seawall".to_owned(),
            check: true,
        });
        assert_eq!(parse(&["seawall", "--check"]), Ok(expected));
        let expected = Some(Args {
            package: "seawall".to_owned(),
            check: true,
        });
        assert_eq!(parse(&["--check", "seawall"]), Ok(expected));
    }

    #[test]
    fn a_package_alone_writes_the_listing() {
        let expected = Some(Args {
            package: "pg-client".to_owned(),
            check: false,
        });
        assert_eq!(parse(&["pg-client"]), Ok(expected));
    }

    #[test]
    fn missing_or_extra_packages_and_unknown_flags_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["seawall", "pg-client"]).is_err());
        assert!(parse(&["seawall", "--chek"]).is_err());
    }

    #[test]
    fn help_asks_for_the_usage_text() {
        assert_eq!(parse(&["--help"]), Ok(None));
    }
}
