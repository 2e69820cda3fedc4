//! A throwaway Postgres server for one test: `initdb` in a temp dir, listening on a free
//! loopback port, stopped (`pg_ctl stop -m immediate`) and removed on drop. The same recipe as
//! `crates/commerce/scripts/test-postgres.sh`: the Debian `postgresql` package's binaries under
//! `/usr/lib/postgresql/<version>/bin`, run as the `postgres` user (via `runuser`) when the
//! test runs as root, since Postgres refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The variable that turns a missing Postgres into a failure instead of a skip (`.ci/run`).
pub const REQUIRE_VAR: &str = "SEAWALL_REQUIRE_POSTGRES";

/// A running throwaway server.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    port: u16,
    as_root: bool,
    dir: tempfile::TempDir,
}

/// The newest installed server's `bin` directory (`/usr/lib/postgresql/<version>/bin`).
#[must_use]
pub fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl Postgres {
    /// Starts a server, or `None` (with `SKIPPED` on stderr) when no Postgres binaries are
    /// installed and `SEAWALL_REQUIRE_POSTGRES=1` is not set.
    ///
    /// # Panics
    ///
    /// Postgres is required but missing, or `initdb` / `pg_ctl start` failed (their output is
    /// in the message).
    #[must_use]
    pub fn start_or_skip() -> Option<Self> {
        let Some(bin) = find_bin() else {
            assert!(
                std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                "{REQUIRE_VAR}=1 but no Postgres server binaries are installed \
                 (/usr/lib/postgresql/*/bin; apt-get install postgresql)"
            );
            eprintln!("SKIPPED: no Postgres server binaries (apt-get install postgresql)");
            return None;
        };
        let as_root = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("system-tests-pg")
            .tempdir()
            .expect("a temp dir");
        if as_root {
            let chown = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .output()
                .expect("chown runs");
            assert!(chown.status.success(), "chown postgres: {}", text(&chown));
        }
        let mut server = Self {
            bin,
            port: 0,
            as_root,
            dir,
        };
        let data = server.data_dir();
        let init = server.run("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "--no-sync"]);
        });
        assert!(init.status.success(), "initdb failed: {}", text(&init));
        // A free port can be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            server.port = crate::free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.port,
                server.dir.path().display()
            );
            let log = server.dir.path().join("server.log");
            let start = server.run("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-o", &options, "start"]);
            });
            if start.status.success() {
                return Some(server);
            }
            eprintln!(
                "pg_ctl start on port {} failed: {}\n{}",
                server.port,
                text(&start),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("Postgres did not start (see above)");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs, as `postgres` when the test runs as root.
    fn run(&self, program: &str, args: impl FnOnce(&mut Command)) -> Output {
        let path = self.bin.join(program);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        args(&mut command);
        command
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The port it listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` (user `postgres`, trust authentication).
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates the empty database `name` and returns its URL.
    ///
    /// # Panics
    ///
    /// The server refused.
    pub async fn create_database(&self, name: &str) -> String {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("the postgres database");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await.expect("a clean close");
        self.url(name)
    }

    /// The server's own log (for failure messages).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The directory the server lives in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-m", "immediate", "stop"]);
        });
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
