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

/// A started binary: its base URL, the lines it printed, and the process (killed on drop).
struct Running {
    child: std::process::Child,
    base: String,
    printed: Vec<String>,
    /// Keeps the reader of its output alive, so the pipe stays open while it runs.
    _output: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` and waits (at most 60 s) for "commerce is up at URL"; `Err` carries what
/// it printed when it stopped or never came up.
fn start(mut command: Command) -> Result<Running, String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    let errors = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if errors.send(format!("stderr: {line}")).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        match received.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let base = line.strip_prefix("commerce is up at ").map(str::to_owned);
                printed.push(line);
                if let Some(base) = base {
                    return Ok(Running {
                        child,
                        base,
                        printed,
                        _output: received,
                    });
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("it printed: {printed:?}"));
            }
        }
    }
}

#[test]
fn an_external_pg_without_a_callback_secret_needs_the_named_unsigned_setting_and_warns() {
    // The mistake: pointing the service at a real PG and forgetting the secret, so forged
    // callbacks are accepted and nothing says so.
    let dir = tempfile::tempdir().unwrap();
    let mut command = commerce(&dir);
    command.env("APP_GATEWAY__BASE_URL", "http://127.0.0.1:9");
    let Some(output) = exit_within(command, Duration::from_secs(30)) else {
        panic!("the service started with an external PG and no callback secret");
    };
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("callback.secret"), "{stderr}");
    assert!(stderr.contains("callback.allow_unsigned"), "{stderr}");

    // Chosen explicitly: it starts, with a WARN that names the setting.
    let dir = tempfile::tempdir().unwrap();
    let mut command = commerce(&dir);
    command
        .env("APP_GATEWAY__BASE_URL", "http://127.0.0.1:9")
        .env("APP_CALLBACK__ALLOW_UNSIGNED", "true");
    let running = start(command).unwrap();
    assert!(
        running
            .printed
            .iter()
            .any(|line| line.contains("WARN") && line.contains("callback.allow_unsigned")),
        "{:?}",
        running.printed
    );
}

#[tokio::test]
async fn the_default_run_refuses_callbacks_signed_with_the_secret_compiled_into_the_binary() {
    // The attack: the default run's simulator and service shared a constant from the source
    // code, so anyone could sign a callback.
    let dir = tempfile::tempdir().unwrap();
    let running = start(commerce(&dir)).unwrap();
    let client = reqwest::Client::new();
    // The in-process PG fails 40 % of requests before creating anything (three attempts
    // each): place orders until one is accepted.
    let mut accepted = None;
    for attempt in 0..20 {
        let response = client
            .post(format!("{}/api/v1/orders", running.base))
            .header("X-USER-ID", "1")
            .json(&serde_json::json!({"items": [{"productId": 1, "quantity": 1}],
                "payment": {"method": "CARD", "cardType": "SAMSUNG", "cardNo": "1234-5678-9012-3456"}}))
            .send()
            .await
            .unwrap();
        if response.status() == reqwest::StatusCode::ACCEPTED {
            let order: serde_json::Value = response.json().await.unwrap();
            if order["payments"][0]["transactionKey"].is_string() {
                accepted = Some(order);
                break;
            }
        }
        assert!(attempt < 19, "no card order was accepted");
    }
    let order = accepted.unwrap();
    let body = serde_json::json!({
        "transactionKey": order["payments"][0]["transactionKey"],
        "orderId": order["orderRef"], "amount": order["totalAmount"],
        "cardType": "SAMSUNG", "cardNo": "1234-5678-9012-3456", "status": "SUCCESS",
    })
    .to_string();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let signature = pg_simulator::signature::sign(
        &["local-dev-callback-secret".to_owned()],
        now,
        body.as_bytes(),
    );

    let response = client
        .post(format!("{}/api/v1/payments/callback", running.base))
        .header("Content-Type", "application/json")
        .header("X-PG-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();

    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(status.is_client_error(), "{status} {answer}");
    assert_eq!(answer["code"], "CALLBACK_REJECTED", "{answer}");
}
