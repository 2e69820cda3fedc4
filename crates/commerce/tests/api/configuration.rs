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

/// Runs `command` to its end, or kills it after `timeout` (a service that started when it
/// should have refused to): `None` then.
fn exit_within(mut command: Command, timeout: Duration) -> Option<std::process::Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let poll = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < timeout {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        block_for(poll);
        waited += poll;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A blocking wait between polls of a child process (a synchronous test, no runtime).
#[allow(clippy::disallowed_methods)]
fn block_for(duration: Duration) {
    std::thread::sleep(duration);
}

#[test]
fn the_binary_refuses_an_empty_or_short_admin_token_or_callback_secret_naming_the_setting() {
    // The attack: an operator leaves the token empty (or types a short one), and anyone
    // without a token, or who guesses a few characters, is let into the admin API.
    for (variable, value, key) in [
        ("APP_ADMIN__TOKEN", "", "admin.token"),
        ("APP_ADMIN__TOKEN", "hunter2", "admin.token"),
        ("APP_ADMIN__TOKEN", "fifteen-bytes!!", "admin.token"),
        ("APP_CALLBACK__SECRET", "s3cret", "callback.secret"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = commerce(&dir);
        command.env(variable, value);
        let Some(output) = exit_within(command, Duration::from_secs(30)) else {
            panic!("{variable}={value:?}: the service started instead of refusing");
        };
        assert!(!output.status.success(), "{variable}={value:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{variable}={value:?}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value:?}: {stderr}");
        if !value.is_empty() {
            assert!(!stderr.contains(value), "the secret is echoed: {stderr}");
        }
    }
}
