//! The PG-outage experiment, end to end.
//!
//! Three PG conditions, each run twice against the real service (HTTP, SQLite, outbox,
//! callbacks, recovery) — once with the seawall-protected payment port (`pg-client`) and once
//! with the naive port (no timeouts, no breaker, blind retries without an idempotency key):
//!
//! 1. **healthy**: the canonical PG (100–500 ms, 40 % pre-create 500s, 70/20/10 outcomes) plus
//!    5 % realistic errors *after* create (F5);
//! 2. **PG down mid-run**: the same, and halfway through the PG starts swallowing every
//!    request without answering (a hung PG, the 3 a.m. incident; it "comes back" for
//!    reconciliation once the orders are in);
//! 3. **slow PG**: every charge takes 2–4 s;
//! 4. **PG A down mid-run, PG B beside it** (seawall port only): as 2, with a second PG
//!    configured; charges fail over to B once A's breaker opens (never after a timeout, which
//!    is uncertain), so the row against 2's seawall row is what the second PG buys.
//!
//! Orders arrive at a steady rate (one every 40 ms, each on its own connection, like `ab`),
//! while a reader polls `GET /api/v1/products`. A shopper gives up after 10 s. After the last
//! order, the PG finishes its work, the recovery job runs, and the table reports what each
//! shopper and the PG's ledger saw.
//!
//! Scaled to finish in about a minute on 2 cores: 150 orders per run instead of a long load
//! test, PG processing 0.1–0.5 s instead of 1–5 s, recovery grace 1 s instead of minutes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pg_simulator::{Fault, Latency, Simulator, SimulatorHandle};
use seawall::Clock;
use serde_json::json;

use commerce::domain::Source;
use commerce::persistence;
use commerce::{Application, Settings};

use crate::chart::{Bar, svg};
use crate::naive::NaiveGateway;

/// Which payment port a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GatewayMode {
    /// The service's own: pg-client behind seawall's policies.
    Protected,
    /// [`NaiveGateway`].
    Naive,
}

/// Arguments of the demo.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Card orders per run.
    #[arg(long, default_value_t = 150)]
    pub orders: usize,
    /// Milliseconds between two orders.
    #[arg(long, default_value_t = 40)]
    pub interval_ms: u64,
    /// Where to write the Markdown table; the SVG chart goes beside it (same name, `.svg`).
    #[arg(long, default_value = "docs/demo-results.md")]
    pub out: std::path::PathBuf,
    /// Run only these scenarios (both ports each); all three when absent.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,
}

const SECRET: &str = "demo-callback-secret";
/// How long a shopper waits for an answer.
const SHOPPER_TIMEOUT: Duration = Duration::from_secs(10);

/// A PG condition the demo runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// The canonical PG.
    Healthy,
    /// The PG hangs from the middle of the run.
    #[value(name = "down")]
    DownMidRun,
    /// Every charge takes 2-4 s.
    Slow,
    /// PG A hangs from the middle of the run, and a second PG (B) takes what A's breaker
    /// turns away (seawall port only).
    #[value(name = "down-b")]
    DownMidRunWithB,
}

impl Scenario {
    const fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy PG",
            Self::DownMidRun => "PG down mid-run",
            Self::Slow => "slow PG (2-4 s)",
            Self::DownMidRunWithB => "PG A down mid-run, PG B beside it",
        }
    }
}

/// What one run measured.
#[derive(Debug)]
struct RunResult {
    scenario: Scenario,
    mode: GatewayMode,
    orders: usize,
    paid: usize,
    fast_503: usize,
    shopper_timeouts: usize,
    unresolved: usize,
    double_charged: usize,
    extra_cancelled: usize,
    charged_not_paid: usize,
    latencies: Vec<Duration>,
    total: Duration,
    reads_p99: Duration,
    /// Card payments charged at B (runs with a second PG only).
    routed_to_b: Option<usize>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[allow(clippy::cast_precision_loss)]
fn share(part: usize, of: usize) -> f64 {
    part as f64 / of.max(1) as f64
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl RunResult {
    fn port(&self) -> &'static str {
        match self.mode {
            GatewayMode::Protected if self.routed_to_b.is_some() => "seawall, PGs A and B",
            GatewayMode::Protected => "seawall (pg-client)",
            GatewayMode::Naive => "naive",
        }
    }

    /// This run's bars in the chart.
    fn bar(&self) -> Bar {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        #[allow(clippy::cast_precision_loss)]
        let success_percent = 100.0 * self.paid as f64 / self.orders.max(1) as f64;
        Bar {
            scenario: self.scenario.label().to_owned(),
            port: self.port().to_owned(),
            success_percent,
            p99_seconds: percentile(&sorted, 0.99).as_secs_f64(),
        }
    }

    fn row(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let mean = if sorted.is_empty() {
            Duration::ZERO
        } else {
            sorted.iter().sum::<Duration>() / u32::try_from(sorted.len()).unwrap_or(u32::MAX)
        };
        #[allow(clippy::cast_precision_loss)]
        let rate = 100.0 * self.paid as f64 / self.orders.max(1) as f64;
        format!(
            "| {} | {} | {:.0} % ({}/{}) | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.scenario.label(),
            self.port(),
            rate,
            self.paid,
            self.orders,
            ms(mean),
            ms(percentile(&sorted, 0.99)),
            ms(self.total),
            ms(self.reads_p99),
            self.fast_503,
            self.shopper_timeouts,
            self.unresolved,
            self.extra_cancelled,
            self.double_charged,
            self.charged_not_paid,
            self.routed_to_b.map_or_else(
                || "-".to_owned(),
                |b| format!("{:.0} % ({b})", 100.0 * share(b, self.orders))
            ),
        )
    }
}

const HEADER: &str = "| scenario | payment port | success rate (orders PAID) | order latency mean / p99 | total time | GET /products p99 during the fault | answered 503 (fail fast) | shopper gave up (10 s) | unresolved at the end | second charges (caught, cancelled) | double-charged orders left | charged but order not PAID | charged at PG B |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Runs the demo: six runs, a table on stdout and in `args.out`.
///
/// # Errors
///
/// A run could not start (port, database, simulator) or the file could not be written.
pub(crate) async fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Clock::default();
    let started = clock.now();
    println!(
        "seawall demo: {} card orders per run, one every {} ms, against an in-process pg-simulator\n",
        args.orders, args.interval_ms
    );
    let mut results = Vec::new();
    let runs = [
        (Scenario::Healthy, GatewayMode::Protected),
        (Scenario::Healthy, GatewayMode::Naive),
        (Scenario::DownMidRun, GatewayMode::Protected),
        (Scenario::DownMidRun, GatewayMode::Naive),
        (Scenario::DownMidRunWithB, GatewayMode::Protected),
        (Scenario::Slow, GatewayMode::Protected),
        (Scenario::Slow, GatewayMode::Naive),
    ];
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|(scenario, _)| args.only.is_empty() || args.only.contains(scenario))
        .collect();
    for (i, &(scenario, mode)) in runs.iter().enumerate() {
        let label = format!(
            "[{}/{}] {} · {}",
            i + 1,
            runs.len(),
            scenario.label(),
            match mode {
                GatewayMode::Protected => "seawall",
                GatewayMode::Naive => "naive",
            }
        );
        let result = run_one(scenario, mode, &args, &label).await?;
        results.push(result);
    }
    let elapsed = clock.now().saturating_duration_since(started);
    let mut table = String::new();
    let _ = writeln!(table, "{HEADER}");
    for result in &results {
        let _ = writeln!(table, "{}", result.row());
    }
    println!("\n{table}");
    println!("all {} runs took {}", runs.len(), ms(elapsed));
    let chart_path = args.out.with_extension("svg");
    let chart_name = chart_path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let doc = format!(
        "# seawall demo results\n\nProduced by `cargo run --release -p commerce-demo` ({} orders per run, one every {} ms; \
         all {} runs took {}).\n\n{table}\n{}\n\n![success rate and p99 order latency per scenario]({chart_name})\n",
        args.orders,
        args.interval_ms,
        runs.len(),
        ms(elapsed),
        LEGEND
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, doc)?;
    let bars: Vec<Bar> = results.iter().map(RunResult::bar).collect();
    let title = format!(
        "seawall vs a naive PG client: {} card orders per run, one every {} ms",
        args.orders, args.interval_ms
    );
    std::fs::write(&chart_path, svg(&title, &bars))?;
    println!(
        "written to {} and {}",
        args.out.display(),
        chart_path.display()
    );
    Ok(())
}

const LEGEND: &str = "How to read it: *success rate* counts orders PAID at the end (the PG declines 30 % of \
charges by design, so about 65 % is the ceiling); *order latency* is what the shopper waited (10 s when they gave up); \
*unresolved* are orders still waiting for the PG after the run and recovery; *second charges* are extra SUCCESS \
transactions for an already paid order that the service detected and cancelled at the PG (a naive retry without an \
idempotency key after an error-after-create makes them); *double-charged orders left* still have two SUCCESS transactions; *charged but order not PAID* are orders the PG charged while the service failed or \
never finished them. The PG: canonical simulator (100-500 ms, 40 % 500s before create, 70/20/10 outcomes) plus 5 % \
errors after create, processing scaled to 0.1-0.5 s; \"down\" makes it swallow requests without answering from the \
middle of the run; \"slow\" makes every charge take 2-4 s; with PG B beside it, a second simulator like the first \
takes the charges A's breaker turns away (*charged at PG B* counts card payments held by B).";

async fn start_simulator(
    scenario: Scenario,
    seed: u64,
) -> Result<SimulatorHandle, Box<dyn std::error::Error>> {
    let latency = match scenario {
        Scenario::Slow => Latency::uniform(Duration::from_secs(2)..=Duration::from_secs(4)),
        Scenario::Healthy | Scenario::DownMidRun | Scenario::DownMidRunWithB => {
            Latency::uniform(Duration::from_millis(100)..=Duration::from_millis(500))
        }
    };
    Ok(Simulator::builder()
        .seed(seed)
        .latency(latency)
        .request_fail_rate(0.4)
        .processing_delay(Duration::from_millis(100)..=Duration::from_millis(500))
        .fault_rate(Fault::ErrorAfterCreate, 0.05)
        .allow_any_loopback_callback()
        .callback_timeout(Duration::from_secs(5))
        .idempotency(true)
        .cancel_endpoint(true)
        .callback_secret(SECRET)
        .spawn()
        .await?)
}

#[allow(clippy::too_many_lines)]
async fn run_one(
    scenario: Scenario,
    mode: GatewayMode,
    args: &DemoArgs,
    label: &str,
) -> Result<RunResult, Box<dyn std::error::Error>> {
    let clock = Clock::default();
    let pg = start_simulator(scenario, 42).await?;
    let dir = tempfile_dir()?;
    let mut settings = Settings::default();
    settings.application.port = 0;
    settings.database.url = format!("sqlite://{}", dir.join("demo.db").display());
    settings.gateway.base_url = Some(pg.base_url());
    settings.callback.secret = Some(SECRET.to_owned());
    settings.recovery.enabled = false;
    settings.recovery.older_than_ms = 0;
    settings.recovery.not_found_grace_ms = 1_000;
    settings.outbox.interval_ms = 200;
    let second = if scenario == Scenario::DownMidRunWithB {
        let b = start_simulator(scenario, 43).await?;
        settings
            .gateway
            .others
            .push(commerce::configuration::PgRouteSettings {
                name: "B".to_owned(),
                base_url: Some(b.base_url()),
                callback_secret: Some(SECRET.to_owned()),
                priority: 1,
                ..Default::default()
            });
        Some(b)
    } else {
        None
    };
    let app = match mode {
        GatewayMode::Protected => Application::build(settings).await?,
        GatewayMode::Naive => {
            let naive = NaiveGateway::new(&pg.base_url())?;
            Application::builder(settings)
                .gateway(Arc::new(naive))
                .build()
                .await?
        }
    };
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());

    // The reader: GET /products all along; only the fault window counts.
    let down_mid_run = matches!(scenario, Scenario::DownMidRun | Scenario::DownMidRunWithB);
    let in_fault = Arc::new(AtomicBool::new(!down_mid_run));
    let stop_reader = Arc::new(AtomicBool::new(false));
    let reader = {
        let url = format!("{base}/api/v1/products");
        let in_fault = in_fault.clone();
        let stop = stop_reader.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let clock = Clock::default();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = clock.now();
                let ok = client
                    .get(&url)
                    .timeout(SHOPPER_TIMEOUT)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let took = clock.now().saturating_duration_since(start);
                if in_fault.load(Ordering::Relaxed) {
                    samples.push(if ok { took } else { SHOPPER_TIMEOUT });
                }
                clock.sleep(Duration::from_millis(25)).await;
            }
            samples
        })
    };

    // The shoppers.
    let started = clock.now();
    let done = Arc::new(AtomicUsize::new(0));
    let mut shoppers = Vec::with_capacity(args.orders);
    for i in 0..args.orders {
        if down_mid_run && i == args.orders / 2 {
            pg.set_black_hole(true);
            in_fault.store(true, Ordering::Relaxed);
        }
        let url = format!("{base}/api/v1/orders");
        let finished = done.clone();
        let user = 1 + (i % 2);
        let product = 1 + (i % 5);
        shoppers.push(tokio::spawn(async move {
            let clock = Clock::default();
            let body = json!({"items": [{"productId": product, "quantity": 1}],
                              "payment": {"method": "CARD", "cardType": "SAMSUNG", "cardNo": "1234-5678-9012-3456"}});
            let start = clock.now();
            // A fresh connection per order, like `ab`.
            let client = reqwest::Client::new();
            let status = client
                .post(url)
                .header("X-USER-ID", user.to_string())
                .timeout(SHOPPER_TIMEOUT)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok();
            let took = clock.now().saturating_duration_since(start);
            finished.fetch_add(1, Ordering::Relaxed);
            (status, took.min(SHOPPER_TIMEOUT))
        }));
        clock.sleep(Duration::from_millis(args.interval_ms)).await;
        if i % 10 == 9 {
            progress(label, done.load(Ordering::Relaxed), args.orders);
        }
    }
    let mut latencies = Vec::with_capacity(args.orders);
    let mut fast_503 = 0;
    let mut shopper_timeouts = 0;
    let mut shown = 0;
    for shopper in shoppers {
        let (status, took) = shopper.await?;
        latencies.push(took);
        let now_done = done.load(Ordering::Relaxed);
        if now_done >= shown + args.orders / 20 {
            shown = now_done;
            progress(label, now_done, args.orders);
        }
        match status {
            Some(503) => fast_503 += 1,
            None => shopper_timeouts += 1,
            Some(_) => {}
        }
    }
    let total = clock.now().saturating_duration_since(started);
    stop_reader.store(true, Ordering::Relaxed);
    let mut reads = reader.await?;
    reads.sort();
    let reads_p99 = percentile(&reads, 0.99);

    // The PG comes back and finishes its work; recovery settles what callbacks did not (it
    // skips rounds while the query breaker is open, as in production).
    pg.set_black_hole(false);
    pg.wait_until(Duration::from_secs(8), |pg| {
        pg.ledger()
            .transactions()
            .iter()
            .all(|t| t.status.is_terminal())
    })
    .await;
    clock.sleep(Duration::from_millis(300)).await; // last callbacks in flight
    let settle_until = clock.now() + Duration::from_secs(20);
    while clock.now() < settle_until {
        let open = persistence::all_payments(&mut *handle.state.db.reader().await?)
            .await?
            .iter()
            .filter(|p| p.status.is_open())
            .count();
        if open == 0 {
            break;
        }
        let _ = handle.state.recovery.run_once(Source::Recovery).await;
        clock.sleep(Duration::from_millis(250)).await;
    }
    let extra_cancelled = ledger_cancelled(&pg) + second.as_ref().map_or(0, ledger_cancelled);
    let routed_to_b = match &second {
        Some(_) => {
            let mut at_b = 0;
            let payments = persistence::all_payments(&mut *handle.state.db.reader().await?).await?;
            for payment in payments {
                if payment.method == "CARD"
                    && persistence::payment_pg(&mut *handle.state.db.writer().await?, payment.id)
                        .await?
                        .as_deref()
                        == Some("B")
                {
                    at_b += 1;
                }
            }
            Some(at_b)
        }
        None => None,
    };

    let orders = persistence::all_orders(&mut *handle.state.db.reader().await?).await?;
    let ledger = pg.ledger();
    let paid = orders
        .iter()
        .filter(|o| o.status.as_str() == "PAID")
        .count();
    let unresolved = orders
        .iter()
        .filter(|o| o.status.as_str() == "PAYMENT_PENDING")
        .count();
    let ledger_b = second.as_ref().map(SimulatorHandle::ledger);
    let successes = |order_ref: &str| {
        ledger.successes_for_order(order_ref)
            + ledger_b
                .as_ref()
                .map_or(0, |b| b.successes_for_order(order_ref))
    };
    let double_charged = orders
        .iter()
        .filter(|o| successes(&o.order_ref) > 1)
        .count();
    let charged_not_paid = orders
        .iter()
        .filter(|o| o.status.as_str() != "PAID" && successes(&o.order_ref) > 0)
        .count();
    eprintln!(
        "\r{label}: {paid}/{} paid, {fast_503} fast 503s, {shopper_timeouts} gave up, in {}          ",
        args.orders,
        ms(total)
    );

    // Stop: the PG first (it cuts requests still hanging), then the service.
    pg.shutdown().await;
    if let Some(b) = second {
        b.shutdown().await;
    }
    handle.shutdown();
    tokio::select! {
        _ = server => {}
        () = clock.sleep(Duration::from_secs(10)) => {}
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(RunResult {
        scenario,
        mode,
        orders: args.orders,
        paid,
        fast_503,
        shopper_timeouts,
        unresolved,
        double_charged,
        extra_cancelled,
        charged_not_paid,
        latencies,
        total,
        reads_p99,
        routed_to_b,
    })
}

fn ledger_cancelled(pg: &SimulatorHandle) -> usize {
    pg.ledger()
        .transactions()
        .iter()
        .filter(|t| t.status == pg_simulator::TransactionStatus::Canceled)
        .count()
}

fn progress(label: &str, done: usize, of: usize) {
    let width = 30;
    let filled = done * width / of.max(1);
    eprint!(
        "\r{label} [{}{}] {done}/{of}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    let _ = std::io::stderr().flush();
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "seawall-demo-{}-{}",
        std::process::id(),
        commerce::persistence::now_ms()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
