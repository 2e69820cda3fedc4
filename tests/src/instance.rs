//! A commerce instance run as a child process (the `commerce-instance` binary of this
//! package): its settings written to a TOML file, its output appended to a log file that
//! survives restarts, `kill -9` and restart under the same instance id and port, and the
//! log's tail printed when the test fails.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use commerce::Settings;
use tokio::process::{Child, Command};

/// One instance: a config file, a log file, and the running process (if any).
#[derive(Debug)]
pub struct Instance {
    name: String,
    program: PathBuf,
    config: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Instance {
    /// Writes `settings` to `<dir>/<name>.toml`; the process is started by
    /// [`start`](Self::start). `program` is the `commerce-instance` binary.
    ///
    /// # Panics
    ///
    /// The settings cannot be written as TOML, or the file cannot be written.
    #[must_use]
    pub fn new(program: &Path, dir: &Path, name: &str, settings: &Settings) -> Self {
        let config = dir.join(format!("{name}.toml"));
        let text = toml::to_string(settings).expect("the settings as TOML");
        std::fs::write(&config, text).expect("the config file");
        Self {
            name: name.to_owned(),
            program: program.to_owned(),
            config,
            log: dir.join(format!("{name}.log")),
            port: settings.application.port,
            child: None,
            starts: 0,
        }
    }

    /// The instance's name (also its log's and config's).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process (its output appended to the log file).
    ///
    /// # Panics
    ///
    /// The log file cannot be opened or the binary cannot be started.
    pub fn start(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file");
        let err = log.try_clone().expect("the log file again");
        self.starts += 1;
        let child = Command::new(&self.program)
            .arg(&self.config)
            .env("RUST_LOG", "commerce=info,seawall=warn,tower_http=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("the commerce-instance binary starts");
        self.child = Some(child);
    }

    /// `kill -9` (SIGKILL), and waits for the process to be gone.
    ///
    /// # Panics
    ///
    /// The process cannot be signalled or waited for.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL is sent");
            child.wait().await.expect("the killed process is reaped");
        }
    }

    /// Waits until `GET /health` answers 2xx, for at most `timeout`.
    ///
    /// # Errors
    ///
    /// The process exited (its status), or did not answer in time.
    pub async fn wait_healthy(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(), String> {
        let clock = seawall::Clock::default();
        let deadline = clock.now() + timeout;
        let url = format!("{}/health", self.base_url());
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("{} exited while starting: {status}", self.name));
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if clock.now() >= deadline {
                return Err(format!("{} did not answer {url} in {timeout:?}", self.name));
            }
            crate::pause(50).await;
        }
    }

    /// Whether the process has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `lines` lines of the log (all starts of the instance).
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} (started {} times), last lines of {} ----\n{}",
                self.name,
                self.starts,
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}

/// The secret the PG signs callbacks with (the same on every instance).
pub const CALLBACK_SECRET: &str = "system-tests-callback-secret-0123456789";
/// The admin API's bearer token (the same on every instance).
pub const ADMIN_TOKEN: &str = "system-tests-admin-token";

/// Settings for instance `id` on `port` over database `database_url` and the PG at
/// `gateway_url`: what every instance of one deployment shares (callback secret, admin
/// token, idempotency fingerprint key, card key) and its own stable id and port.
#[must_use]
pub fn settings(database_url: &str, gateway_url: &str, port: u16, id: &str) -> Settings {
    let mut settings = Settings::default();
    settings.application.host = "127.0.0.1".to_owned();
    settings.application.port = port;
    settings.application.instance_id = Some(id.to_owned());
    settings.database.url = database_url.to_owned();
    settings.gateway.base_url = Some(gateway_url.to_owned());
    settings.callback.secret = Some(CALLBACK_SECRET.to_owned());
    settings.admin.token = Some(ADMIN_TOKEN.to_owned());
    settings.idempotency.fingerprint_key =
        Some("system-tests-fingerprint-key-0123456789".to_owned());
    settings.recovery.card_key = Some("system-tests-card-key-0123456789".to_owned());
    settings
}
