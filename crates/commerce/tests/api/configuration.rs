//! The binary's start-up with careless environments: the variables are set on the child
//! process only, so tests never race on the test process's environment.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `commerce serve` with none of this process's `APP_` variables, logs at `commerce=warn`.
fn commerce(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_commerce"));
    command.arg("serve");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().to_uppercase().starts_with("APP_") {
            command.env_remove(name);
        }
    }
    command
        .env("RUST_LOG", "commerce=warn")
        .env("NO_COLOR", "1")
        .env("APP_APPLICATION__PORT", "0")
        .env(
            "APP_DATABASE__URL",
            format!("sqlite://{}", dir.path().join("commerce.db").display()),
        );
    command
}

#[test]
fn the_binary_refuses_an_out_of_range_port_naming_the_key_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = commerce(&dir)
        .env("APP_APPLICATION__PORT", "70000")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("application.port"), "{stderr}");
    assert!(stderr.contains("APP_APPLICATION__PORT"), "{stderr}");
}

#[test]
fn the_binary_starts_despite_an_unrelated_app_variable_and_warns_about_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = commerce(&dir)
        .env("APP_ENV", "production")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let up = loop {
        match received.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("commerce is up") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        up,
        "did not start; stdout: {seen:?}; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        seen.iter()
            .any(|line| line.contains("WARN") && line.contains("APP_ENV")),
        "no WARN naming APP_ENV before start-up: {seen:?}"
    );
}
