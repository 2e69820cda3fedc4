//! Running cargo: where a package and the target directory are, and rustdoc's JSON output.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// A workspace package whose library can be listed.
#[derive(Debug)]
pub(crate) struct Package {
    /// The package name, as `cargo -p` takes it.
    pub(crate) name: String,
    /// The library's crate name: the stem of rustdoc's JSON file (`pg_client`).
    pub(crate) lib_name: String,
    /// The directory of the package's Cargo.toml; the listing goes there.
    pub(crate) dir: PathBuf,
    /// The workspace root, for showing paths relative to it.
    pub(crate) workspace_root: PathBuf,
    /// The target directory (it honours `CARGO_TARGET_DIR` and cargo's config).
    pub(crate) target_dir: PathBuf,
}

/// The cargo that ran this tool (`cargo run` sets `CARGO`), or the one on `PATH`.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// Finds workspace package `name` through `cargo metadata`.
pub(crate) fn package(name: &str) -> Result<Package, String> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("could not run `cargo metadata`: {err}"))?;
    if !output.status.success() {
        return Err(format!("`cargo metadata` failed ({})", output.status));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|err| format!("`cargo metadata` printed invalid JSON: {err}"))?;
    let path = |value: &Value| value.as_str().map(PathBuf::from);
    let workspace_root =
        path(&metadata["workspace_root"]).ok_or("`cargo metadata`: no workspace_root")?;
    let target_dir =
        path(&metadata["target_directory"]).ok_or("`cargo metadata`: no target_directory")?;
    let packages = metadata["packages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(package) = packages.iter().find(|package| package["name"] == name) else {
        let names: Vec<&str> = packages
            .iter()
            .filter_map(|package| package["name"].as_str())
            .collect();
        return Err(format!(
            "no package `{name}` in this workspace (there are: {})",
            names.join(", ")
        ));
    };
    let targets = package["targets"].as_array().map_or(&[][..], Vec::as_slice);
    let is_lib = |target: &&Value| {
        target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "lib"))
    };
    let lib = targets
        .iter()
        .find(is_lib)
        .ok_or_else(|| format!("package `{name}` has no library"))?;
    let lib_name = lib["name"].as_str().unwrap_or(name).replace('-', "_");
    let dir = path(&package["manifest_path"])
        .and_then(|manifest| manifest.parent().map(PathBuf::from))
        .ok_or("`cargo metadata`: no manifest_path")?;
    Ok(Package {
        name: name.to_owned(),
        lib_name,
        dir,
        workspace_root,
        target_dir,
    })
}

/// Runs rustdoc on the package's library with every feature and returns the path of the
/// JSON it wrote.
pub(crate) fn rustdoc_json(package: &Package) -> Result<PathBuf, String> {
    // rustdoc's JSON output is still unstable (`-Z unstable-options --output-format json`).
    // RUSTC_BOOTSTRAP=1 makes the stable toolchain accept unstable flags; it is the only way
    // to get the JSON without a nightly toolchain, and it is set for this one command only.
    // `--document-hidden-items` keeps `#[doc(hidden)]` items, which are still reachable and
    // so are listed (marked `#[doc(hidden)]`).
    let status = cargo()
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "rustdoc",
            "-p",
            &package.name,
            "--lib",
            "--all-features",
            "--",
        ])
        .args([
            "-Z",
            "unstable-options",
            "--output-format",
            "json",
            "--document-hidden-items",
        ])
        .status()
        .map_err(|err| format!("could not run `cargo rustdoc`: {err}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo rustdoc -p {}` failed ({status})",
            package.name
        ));
    }
    Ok(package
        .target_dir
        .join("doc")
        .join(format!("{}.json", package.lib_name)))
}
