//! `kill -9` of the service (the built binary, a child process) in the middle of a stream of
//! CARD and POINT orders with charge-but-timeout faults, then a restart on the same database.
//! Nothing a client was told is lost, stock and points add up, the PG's ledger (the witness)
//! holds no second charge, and every order is final before the recovery deadline. Once with
//! the default run's in-process simulator (its ledger in the file next to the database), once
//! with a standalone simulator that outlives the service.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pg_simulator::{SimConfig, Simulator, SimulatorHandle};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use crate::helpers::{card, eventually, order_body, points};

/// The simulator both runs use: quick answers, some canonical failures, results after the
/// service's 1.5 s charge timeout (so a timed-out charge is not settled by its callback
/// first), the control plane on.
const SIMULATOR_TOML: &str = r#"
[control]
enabled = true
port = 0
[request]
latency = { kind = "uniform", min = "10ms", max = "50ms" }
fail_rate = 0.1
[processing]
delay = { kind = "uniform", min = "1600ms", max = "2500ms" }
concurrency = 64
[faults]
charge_but_timeout_delay = "3s"
"#;
/// Share of charges the PG creates and then answers only after the service's 1.5 s read
/// timeout (the service records them UNKNOWN and recovery finds them by order id).
const CHARGE_BUT_TIMEOUT: f64 = 0.3;
/// Recovery settles nothing later than this after a payment's creation (NEEDS_REVIEW past it).
const DEADLINE_MS: u64 = 30_000;
const ADMIN_TOKEN: &str = "crash-test-admin-token";
const CALLBACK_SECRET: &str = "crash-test-callback-secret";
/// Orders accepted before the kill, and after the restart.
const BEFORE_KILL: usize = 30;
const AFTER_RESTART: usize = 10;
const WORKERS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_of_the_default_run_no_order_is_lost_charged_twice_or_left_for_review() {
    let dir = tempfile::tempdir().unwrap();
    let sim_file = dir.path().join("sim.toml");
    std::fs::write(&sim_file, SIMULATOR_TOML).unwrap();
    let env = [(
        "APP_GATEWAY__SIMULATOR_CONFIG",
        sim_file.display().to_string(),
    )];
    crash_and_restart(dir, &env, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_in_front_of_a_standalone_pg_no_order_is_lost_charged_twice_or_left_for_review()
 {
    let config = SimConfig::from_toml_str(SIMULATOR_TOML).unwrap();
    let pg = Simulator::builder()
        .config(config)
        .port(0)
        .allow_any_loopback_callback()
        .idempotency(true)
        .cancel_endpoint(true)
        .callback_secret(CALLBACK_SECRET)
        .spawn()
        .await
        .unwrap();
    let env = [
        ("APP_GATEWAY__BASE_URL", pg.base_url()),
        ("APP_CALLBACK__SECRET", CALLBACK_SECRET.to_owned()),
    ];
    crash_and_restart(tempfile::tempdir().unwrap(), &env, Some(pg)).await;
}

/// The whole scenario; `standalone` is the simulator outside the service, if any.
async fn crash_and_restart(
    dir: tempfile::TempDir,
    env: &[(&str, String)],
    standalone: Option<SimulatorHandle>,
) {
    let clock = seawall::Clock::default();
    let db_file = dir.path().join("commerce.db");
    // Arrange: the service, the starting stock and points, the fault at the PG.
    let mut service = Service::start(dir.path(), &db_file, env, 1).await;
    let db = read_only(&db_file).await;
    let before = Holdings::read(&db).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let control = service.control_url(standalone.as_ref());
    inject_charge_but_timeout(&client, &control).await;

    // Act: orders stream in; the service is killed while they do, with charges held at the
    // PG; it restarts on the same database and the stream goes on.
    let stream = Stream::start(&client, &service.base);
    stream.wait_for_accepted(BEFORE_KILL).await;
    let held = eventually(Duration::from_secs(30), || async {
        let n = charges_held(&client, &control).await;
        (n > 0).then_some(n)
    })
    .await;
    let held_before_kill = held.expect("no charge-but-timeout before the kill");
    service.kill_9();
    let mut accepted = stream.stop().await;
    let mut service = Service::start(dir.path(), &db_file, env, 2).await;
    let restarted = clock.now();
    let control = service.control_url(standalone.as_ref());
    inject_charge_but_timeout(&client, &control).await;
    let stream = Stream::start(&client, &service.base);
    stream.wait_for_accepted(AFTER_RESTART).await;
    accepted.extend(stream.stop().await);

    // Assert: every 2xx order is there.
    for order in &accepted {
        let got = client
            .get(format!("{}/api/v1/orders/{}", service.base, order.id))
            .header("X-USER-ID", order.user.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.status(),
            200,
            "order {} answered 2xx and is gone",
            order.id
        );
    }
    // Every order final, and the PG done processing, before the deadline; none for review.
    let settled = eventually(Duration::from_millis(DEADLINE_MS), || async {
        let pending_at_pg = pg_ledger(&client, &control)
            .await
            .iter()
            .filter(|t| t["status"] == "PENDING")
            .count();
        (orders_in(&db, "PAYMENT_PENDING").await.is_empty() && pending_at_pg == 0).then_some(())
    })
    .await;
    let log = service.log();
    assert!(
        settled.is_some(),
        "not final {DEADLINE_MS} ms after the restart: {:?}; log: {log}",
        orders_in(&db, "PAYMENT_PENDING").await
    );
    let final_after = clock.now() - restarted;
    let review = orders_in(&db, "NEEDS_REVIEW").await;
    assert!(
        review.is_empty(),
        "orders left for review: {review:?}; log: {log}"
    );
    // Stock and points: what is gone is exactly what PAID orders took.
    Holdings::read(&db)
        .await
        .assert_only_paid_orders_took_from(&before, &db)
        .await;
    // The PG's ledger: no order charged twice, no charge without a PAID order, every PAID
    // card order charged once.
    let ledger = pg_ledger(&client, &control).await;
    let paid_by_card = assert_one_charge_per_paid_card_order(&ledger, &db).await;
    assert!(
        paid_by_card > 0,
        "no card order was paid: the run proves little"
    );
    let held = match standalone {
        Some(_) => charges_held(&client, &control).await,
        None => held_before_kill + charges_held(&client, &control).await,
    };
    if standalone.is_none() {
        let ledger_file = format!("{}-pg-ledger.jsonl", db_file.display());
        assert!(
            Path::new(&ledger_file).exists(),
            "the in-process PG's ledger is not next to the database"
        );
    }
    println!(
        "{} orders accepted, {paid_by_card} card orders paid, {held} charges held past the \
         timeout; final {final_after:?} after the restart",
        accepted.len(),
    );
    service.kill_9();
}

/// Stock per product and points per user.
struct Holdings {
    stock: BTreeMap<i64, i64>,
    points: BTreeMap<i64, i64>,
}

impl Holdings {
    async fn read(db: &SqlitePool) -> Self {
        let pairs = |sql: &'static str| async move {
            sqlx::query(sql)
                .fetch_all(db)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect::<BTreeMap<i64, i64>>()
        };
        Self {
            stock: pairs("SELECT id, stock FROM products").await,
            points: pairs("SELECT id, points FROM users").await,
        }
    }

    /// Compares with the holdings `before`: the difference is what PAID orders took.
    async fn assert_only_paid_orders_took_from(&self, before: &Self, db: &SqlitePool) {
        let taken: BTreeMap<i64, i64> = sqlx::query_as(
            "SELECT i.product_id, SUM(i.quantity) FROM order_items i \
             JOIN orders o ON o.id = i.order_id WHERE o.status = 'PAID' GROUP BY i.product_id",
        )
        .fetch_all(db)
        .await
        .unwrap()
        .into_iter()
        .collect();
        for (product, stock) in &before.stock {
            let expected = stock - taken.get(product).copied().unwrap_or(0);
            assert_eq!(self.stock[product], expected, "stock of product {product}");
        }
        let spent: BTreeMap<i64, i64> = sqlx::query_as(
            "SELECT user_id, SUM(total_amount) FROM orders \
             WHERE status = 'PAID' AND method = 'POINT' GROUP BY user_id",
        )
        .fetch_all(db)
        .await
        .unwrap()
        .into_iter()
        .collect();
        for (user, points) in &before.points {
            let expected = points - spent.get(user).copied().unwrap_or(0);
            assert_eq!(self.points[user], expected, "points of user {user}");
        }
    }
}

/// Checks the PG's SUCCESS transactions against the card orders; returns how many are PAID.
async fn assert_one_charge_per_paid_card_order(ledger: &[Value], db: &SqlitePool) -> usize {
    let mut charges: HashMap<(String, String), usize> = HashMap::new();
    for t in ledger.iter().filter(|t| t["status"] == "SUCCESS") {
        *charges
            .entry((text(&t["userId"]), text(&t["orderId"])))
            .or_default() += 1;
    }
    let card_orders: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT user_id, order_ref, status FROM orders WHERE method = 'CARD'")
            .fetch_all(db)
            .await
            .unwrap();
    let mut paid = 0;
    for (user, order_ref, status) in &card_orders {
        let n = charges
            .remove(&(user.to_string(), order_ref.clone()))
            .unwrap_or(0);
        let expected = usize::from(status == "PAID");
        assert_eq!(
            n, expected,
            "{order_ref} is {status} with {n} SUCCESS at the PG"
        );
        paid += expected;
    }
    assert!(charges.is_empty(), "charges for no card order: {charges:?}");
    paid
}

// ===== the service as a child process =====

/// A running `commerce serve`, its output in files in the temp dir.
struct Service {
    child: Child,
    base: String,
    control: Option<String>,
    out: PathBuf,
}

impl Service {
    /// Starts the binary on port 0 with short recovery settings and waits until it is up.
    async fn start(dir: &Path, db: &Path, env: &[(&str, String)], run: u32) -> Self {
        let out = dir.join(format!("run-{run}.out"));
        let err = dir.join(format!("run-{run}.err"));
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
            .env("APP_DATABASE__URL", format!("sqlite://{}", db.display()))
            .env("APP_ADMIN__TOKEN", ADMIN_TOKEN)
            .env("APP_RECOVERY__INTERVAL_MS", "200")
            .env("APP_RECOVERY__OLDER_THAN_MS", "300")
            .env("APP_RECOVERY__NOT_FOUND_GRACE_MS", "2000")
            .env("APP_RECOVERY__DEADLINE_MS", DEADLINE_MS.to_string())
            // The killed process cannot release its lease: a short one lets the restart
            // take it soon.
            .env("APP_RECOVERY__LEASE_TTL_MS", "1000")
            .env("APP_OUTBOX__INTERVAL_MS", "100")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = command.spawn().expect("the commerce binary starts");
        let read = || std::fs::read_to_string(&out).unwrap_or_default();
        let up = eventually(Duration::from_secs(30), || async {
            read().contains("ctrl-c stops it").then_some(())
        })
        .await;
        if up.is_none() {
            let _ = child.kill();
            panic!(
                "run {run} did not start: {}{}",
                read(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        let text = read();
        let after = |prefix: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        };
        Self {
            child,
            base: after("commerce is up at").expect("the service prints its URL"),
            control: after("PG control plane:"),
            out,
        }
    }

    /// The control plane of the PG in use: the standalone one, else the in-process one.
    fn control_url(&self, standalone: Option<&SimulatorHandle>) -> String {
        match standalone {
            Some(pg) => pg.control_url().expect("the control plane is on"),
            None => self
                .control
                .clone()
                .expect("the in-process PG prints its control plane"),
        }
    }

    /// SIGKILL: no shutdown, no flush, no lease released.
    fn kill_9(&mut self) {
        self.child.kill().expect("the service can be killed");
        self.child.wait().expect("the killed service is reaped");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn inject_charge_but_timeout(client: &reqwest::Client, control: &str) {
    let answer = client
        .post(format!("{control}/__sim/faults/rates"))
        .json(&json!({ "charge-but-timeout": CHARGE_BUT_TIMEOUT }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

async fn pg_ledger(client: &reqwest::Client, control: &str) -> Vec<Value> {
    let body: Value = client
        .get(format!("{control}/__sim/transactions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["transactions"].as_array().cloned().unwrap_or_default()
}

/// Charges the PG created and answered late, from its fault log.
async fn charges_held(client: &reqwest::Client, control: &str) -> usize {
    let log: Value = client
        .get(format!("{control}/__sim/fault-log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log.as_array().map_or(0, |l| {
        l.iter()
            .filter(|r| r["fault"] == "charge-but-timeout")
            .count()
    })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

// ===== the order stream =====

/// An order the service answered 2xx to.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    id: i64,
    user: i64,
}

/// Workers placing orders until stopped: CARD and POINT, two users, five products.
struct Stream {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Stream {
    fn start(client: &reqwest::Client, base: &str) -> Self {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let port = base.rsplit(':').next().unwrap_or_default().to_owned();
        let workers = (0..WORKERS)
            .map(|worker| {
                let (client, base, port) = (client.clone(), base.to_owned(), port.clone());
                let (accepted, count, stop) =
                    (Arc::clone(&accepted), Arc::clone(&count), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut n = 0_usize;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let user = i64::try_from(1 + (worker + n) % 2).unwrap();
                        let product = i64::try_from(1 + (worker * 3 + n) % 5).unwrap();
                        let payment = if (worker + n) % 5 < 3 {
                            card("1234-5678-9012-3456")
                        } else {
                            points()
                        };
                        let sent = client
                            .post(format!("{base}/api/v1/orders"))
                            .header("X-USER-ID", user.to_string())
                            .header("Idempotency-Key", format!("crash-{port}-{worker}-{n}"))
                            .json(&order_body(product, 1, payment))
                            .send()
                            .await;
                        // After the kill, requests fail: the stream is over for this worker.
                        let Ok(response) = sent else { break };
                        if !response.status().is_success() {
                            continue;
                        }
                        let Ok(body) = response.json::<Value>().await else {
                            break;
                        };
                        if let Some(id) = body["orderId"].as_i64() {
                            accepted.lock().unwrap().push(Accepted { id, user });
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        Self {
            accepted,
            count,
            stop,
            workers,
        }
    }

    async fn wait_for_accepted(&self, n: usize) {
        let reached = eventually(Duration::from_secs(30), || async {
            (self.count.load(Ordering::SeqCst) >= n).then_some(())
        })
        .await;
        assert!(reached.is_some(), "fewer than {n} orders accepted in 30 s");
    }

    async fn stop(self) -> Vec<Accepted> {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            worker.await.unwrap();
        }
        self.accepted.lock().unwrap().clone()
    }
}

// ===== the database, read-only =====

async fn read_only(db: &Path) -> SqlitePool {
    SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap()
}

/// Orders in `status`, with their id.
async fn orders_in(db: &SqlitePool, status: &str) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, status FROM orders WHERE status = $1")
        .bind(status)
        .fetch_all(db)
        .await
        .unwrap()
}
