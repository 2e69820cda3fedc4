//! The live dashboard at `/admin/dashboard`: mounted, fed, and watched in a real browser.
//!
//! The browser test drives Debian's `chromium` headless over the DevTools protocol: it opens
//! the page, trips `pg-charge` through the admin API, waits for the tile to turn OPEN in the
//! same page (pushed over Server-Sent Events, no reload), and saves a screenshot at
//! `<target>/dashboard-screenshot.png`. Without chromium it is skipped, unless
//! `SEAWALL_REQUIRE_CHROMIUM` is set (CI sets it), then it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, pause, spawn_app};

#[tokio::test]
async fn the_dashboard_is_mounted_with_a_tile_per_breaker() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!(
            "{}/admin/dashboard/registries/commerce",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("data-registry=\"commerce\""));
    assert!(
        page.contains("data-actions=\"on\""),
        "the admin token turns actions on"
    );
    let snapshot = app
        .get_json("/admin/dashboard/registries/commerce/snapshot")
        .await;
    let names: Vec<&str> = snapshot["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tile| tile["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"pg-charge") && names.contains(&"pg-query"),
        "{names:?}"
    );
}

#[tokio::test]
async fn dashboard_actions_take_the_admin_token() {
    let app = spawn_app().await;
    let url = format!(
        "{}/admin/dashboard/registries/commerce/circuit-breakers/pg-query",
        app.address
    );
    let refused = app
        .client
        .post(&url)
        .bearer_auth("wrong-token")
        .json(&json!({"state": "FORCED_OPEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let done = app
        .admin(app.client.post(&url))
        .json(&json!({"state": "FORCED_OPEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let tile: Value = done.json().await.unwrap();
    assert_eq!(tile["breaker"]["state"], "FORCED_OPEN");
}

/// The chromium binary, if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Where the screenshot goes: the cargo target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// A headless chromium we started, killed when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromium on `url`; returns it and its DevTools port.
async fn launch(binary: &PathBuf, url: &str, profile: &tempfile::TempDir) -> (Browser, u16) {
    let child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut browser = Browser(child);
    // With port 0, chromium writes the port it chose on the first line of this file.
    let file = profile.path().join("DevToolsActivePort");
    let port = eventually(Duration::from_secs(30), || async {
        std::fs::read_to_string(&file)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse::<u16>()
            .ok()
    })
    .await;
    let Some(port) = port else {
        let _ = browser.0.kill();
        panic!(
            "chromium opened no DevTools port in 30 s: {:?}",
            browser.0.wait()
        );
    };
    (browser, port)
}

/// A DevTools protocol connection to one page.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn attach(port: u16, url: &str) -> Self {
        let client = reqwest::Client::new();
        let targets = eventually(Duration::from_secs(20), || async {
            let targets: Value = client
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            targets
                .as_array()?
                .iter()
                .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
        })
        .await
        .expect("chromium lists the dashboard page");
        let (socket, _) = tokio_tungstenite::connect_async(targets.as_str())
            .await
            .expect("the page's DevTools socket opens");
        Self { socket, next_id: 0 }
    }

    /// Sends a command and waits for its answer (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        while let Some(message) = self.socket.next().await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
        panic!("the DevTools socket closed during {method}");
    }

    /// Evaluates `expression` in the page; its value as JSON.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Waits up to `timeout` for `expression` to evaluate to `expected`; the last value seen.
    async fn wait_for(&mut self, expression: &str, expected: &Value, timeout: Duration) -> Value {
        let clock = seawall::Clock::default();
        let deadline = clock.now() + timeout;
        loop {
            let value = self.eval(expression).await;
            if &value == expected || clock.now() >= deadline {
                return value;
            }
            pause(100).await;
        }
    }
}

const TILE_STATE: &str = r#"(() => {
    const tile = document.querySelector('.tile[data-name="pg-charge"]');
    return tile ? tile.dataset.state + ' ' + tile.querySelector('.state').textContent : null;
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_tripped_through_the_admin_api_shows_open_in_a_real_browser() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var_os("SEAWALL_REQUIRE_CHROMIUM").is_none(),
            "SEAWALL_REQUIRE_CHROMIUM is set but chromium is not installed (apt-get install chromium)"
        );
        eprintln!(
            "skipped: chromium is not installed (apt-get install chromium; CI sets SEAWALL_REQUIRE_CHROMIUM)"
        );
        return;
    };
    let app = spawn_app().await;
    let url = format!("{}/admin/dashboard/registries/commerce", app.address);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, port) = launch(&binary, &url, &profile).await;
    let mut page = Page::attach(port, &url).await;

    let before = page
        .wait_for(TILE_STATE, &json!("CLOSED CLOSED"), Duration::from_secs(20))
        .await;
    assert_eq!(before, json!("CLOSED CLOSED"), "the tile appears, closed");
    let connection = page
        .wait_for(
            "document.getElementById('connection').dataset.connection",
            &json!("live"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(connection, json!("live"));

    let tripped = app
        .admin(app.client.put(format!(
            "{}/api/v1/admin/circuit-breakers/pg-charge",
            app.address
        )))
        .json(&json!({"state": "OPEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(tripped.status(), StatusCode::OK);

    // The same page, not reloaded: the change came over the event stream.
    let after = page
        .wait_for(TILE_STATE, &json!("OPEN OPEN"), Duration::from_secs(10))
        .await;
    assert_eq!(after, json!("OPEN OPEN"), "the tile shows OPEN");

    let shot = page
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let dir = target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dashboard-screenshot.png");
    std::fs::write(&file, png).unwrap();
    eprintln!("screenshot: {}", file.display());
}
